"""Command-line entry points that need no Dagster instance (``spectralforge --help``)."""
