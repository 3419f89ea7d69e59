"""The Dagster code location of SpectralForge (``dagster dev -m pipelines.definitions``)."""
