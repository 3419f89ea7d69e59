"""The label stage: land-cover and crop label rasters aligned to the release's patches."""
