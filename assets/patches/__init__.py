"""The patch stage: the Zarr patch store, per-tile patchifying, and the SpectralEarth release."""
