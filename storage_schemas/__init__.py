"""Data contracts: product format, table schemas, paths. Imports nothing of ours."""
