"""The SpectralEarth release contract: ``releases/spectral_earth/<version>/``.

A release is an immutable, self-describing snapshot of the committed patches of the store:

- ``manifest.json``: version, counts, the store it reads (path relative to the data root, layout
  version), the band filter, the statistics, and the list of files below.
- ``patches.parquet``: one row per patch (``PATCH_INDEX_SCHEMA``); ``slot`` is the index on the
  store's ``patch`` axis.
- ``locations.parquet``: GeoParquet, one row per location with at least one patch; outlines in
  EPSG:4326.
- ``statistics.csv``: exact per-band mean and standard deviation over every valid pixel of the
  release (reflectance x 10000), with ``wavelength_nm`` and ``fwhm_nm``.
- ``collection.json`` (STAC Collection) and ``items.parquet`` (its items, one per location, as
  stac-geoparquet).
- ``figures/*.png``: coverage map, timestamps per location, acquisitions per month, PCA mosaic.

The version is a hash of the content (which pixels, from which tiles, at which slots, under which
layout and band filter), so the same archive gives the same version whatever ran it. ``LATEST``
beside the versions names the newest one.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from storage_schemas.plan import TS

RELEASE_NAME = "spectral_earth"
LATEST = "LATEST"
MANIFEST = "manifest.json"
PATCH_INDEX = "patches.parquet"
LOCATIONS = "locations.parquet"
STATISTICS = "statistics.csv"
COLLECTION = "collection.json"
ITEMS = "items.parquet"
FIGURES = "figures"

PATCH_INDEX_SCHEMA = pa.schema(
    [
        pa.field("slot", pa.int64(), nullable=False),
        pa.field("location_id", pa.string(), nullable=False),
        pa.field("tile_id", pa.string(), nullable=False),
        pa.field("time", TS, nullable=False),
        pa.field("epsg", pa.int32(), nullable=False),
        pa.field("x0", pa.float64(), nullable=False),
        pa.field("y0", pa.float64(), nullable=False),
        pa.field("same_grid", pa.bool_(), nullable=False),
        pa.field("masked_fraction", pa.float32(), nullable=False),
        pa.field("patch_hash", pa.string(), nullable=False),
    ]
)
"""``x0, y0``: upper-left corner of the patch in ``epsg`` (metres), 30 m pixels, 128 x 128 px."""

STATISTICS_COLUMNS = ["band", "wavelength_nm", "fwhm_nm", "mean", "std", "valid_pixels"]


class ReleaseNotFoundError(LookupError):
    """No release of that version (or none at all) under a releases folder."""


def resolve_release(releases: Path, version: str) -> Path:
    """The folder of a release under ``releases``, ``latest`` meaning the one ``LATEST`` names."""
    if version == "latest":
        pointer = releases / LATEST
        if not pointer.is_file():
            raise ReleaseNotFoundError(f"{pointer}: no release yet (materialise the release asset first)")
        version = pointer.read_text().strip()
    folder = releases / version
    if not (folder / MANIFEST).is_file():
        known = sorted(p.name for p in releases.glob("*") if (p / MANIFEST).is_file())
        raise ReleaseNotFoundError(f"{folder}: no such release; known: {', '.join(known) or 'none'}")
    return folder
