"""Pipeline stages: one subpackage each, plain computation modules plus one defs.py."""
