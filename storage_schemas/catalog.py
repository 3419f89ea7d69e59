"""The tile catalog contract: ``catalog/tiles.parquet`` and ``catalog/quarantine.parquet``.

``tiles.parquet`` is GeoParquet (geometry = footprint in EPSG:4326, WKB, GeoParquet 1.1 metadata)
with one row per accepted product. Later stages (overlap graph, patch plan, patch store) read it
and nothing else of the archive, so the columns they need are here: the pixel grid origin, the
band table and the member names of the files to read.

Rows are never deleted: a product that leaves the archive keeps its row with
``status = "missing"`` and the time it was first found missing, so that derived datasets can
still name their source. A product that is still there but can no longer be used (truncated,
unreadable, or its bytes changed under the same name) keeps its last good row with
``status = "broken"`` and ``status_reason`` saying what is wrong (its quarantine row has the
details): broken is not missing, and its already released patches stay in releases unless the
release is told otherwise.

``quarantine.parquet`` holds the products that were refused, with the path, the file at fault
and a reason a person can act on. Both tables carry the fingerprint (size, mtime, checksum) that
lets a re-scan skip unchanged products.
"""

from __future__ import annotations

import pyarrow as pa

CATALOG_VERSION = "1"

TS = pa.timestamp("us", tz="UTC")
_FLOATS = pa.list_(pa.float32())

FINGERPRINT_FIELDS = [
    pa.field("source_size", pa.int64(), nullable=False),
    pa.field("source_mtime_ns", pa.int64(), nullable=False),
    pa.field("checksum", pa.string(), nullable=False),
]

COVER_COLUMNS = ("cloud_cover", "haze_cover", "cirrus_cover", "snow_cover", "cloud_shadow_cover")
"""Cover percentages from METADATA.XML ``specific/qualityFlag``; null where DLR wrote -999."""

TILE_FIELDS = [
    pa.field("tile_id", pa.string(), nullable=False),
    pa.field("product_name", pa.string(), nullable=False),
    pa.field("datatake", pa.int64(), nullable=False),
    pa.field("tile_number", pa.int16(), nullable=False),
    pa.field("processor_version", pa.string(), nullable=False),
    pa.field("processed", TS, nullable=False),
    pa.field("acquired", TS, nullable=False),
    pa.field("stop_time", TS, nullable=False),
    pa.field("level", pa.string(), nullable=False),
    pa.field("cloud_cover", pa.float32()),
    pa.field("haze_cover", pa.float32()),
    pa.field("cirrus_cover", pa.float32()),
    pa.field("snow_cover", pa.float32()),
    pa.field("cloud_shadow_cover", pa.float32()),
    pa.field("epsg", pa.int32(), nullable=False),
    pa.field("width", pa.int32(), nullable=False),
    pa.field("height", pa.int32(), nullable=False),
    pa.field("n_bands", pa.int16(), nullable=False),
    pa.field("dtype", pa.string(), nullable=False),
    pa.field("pixel_size", pa.float64(), nullable=False),
    pa.field("grid_x0", pa.float64(), nullable=False),
    pa.field("grid_y0", pa.float64(), nullable=False),
    pa.field("center_lon", pa.float64(), nullable=False),
    pa.field("center_lat", pa.float64(), nullable=False),
    pa.field("crosses_antimeridian", pa.bool_(), nullable=False),
    pa.field("wavelength_nm", _FLOATS, nullable=False),
    pa.field("fwhm_nm", _FLOATS, nullable=False),
    pa.field("gain", _FLOATS, nullable=False),
    pa.field("offset", _FLOATS, nullable=False),
    pa.field("product_path", pa.string(), nullable=False),
    pa.field("files", pa.string(), nullable=False),
    pa.field("simulated", pa.bool_(), nullable=False),
    pa.field("status", pa.string(), nullable=False),
    pa.field("missing_since", TS),
    pa.field("status_reason", pa.string()),
    *FINGERPRINT_FIELDS,
]
TILE_COLUMNS = [f.name for f in TILE_FIELDS] + ["geometry"]
"""Column order of tiles.parquet; ``geometry`` (WKB) is added by GeoParquet."""

STATUS_PRESENT = "present"
STATUS_MISSING = "missing"
"""The product left the archive."""
STATUS_BROKEN = "broken"
"""The product is in the archive but cannot be used now (``status_reason`` says why)."""
IN_ARCHIVE = (STATUS_PRESENT, STATUS_BROKEN)
"""Statuses of products the archive still holds: the plan keeps their locations."""

QUARANTINE_SCHEMA = pa.schema(
    [
        pa.field("product_path", pa.string(), nullable=False),
        pa.field("product_name", pa.string()),
        pa.field("file", pa.string()),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("stage", pa.string(), nullable=False),
        pa.field("detected_at", TS, nullable=False),
        *FINGERPRINT_FIELDS,
    ]
)

STAGE_READ = "read"
"""Refused while reading (a fault in the files): cached by fingerprint like accepted rows."""
STAGE_POLICY = "policy"
"""Readable but not accepted (cloud cover, duplicate, superseded): decided anew on every scan."""

FOOTPRINT_CRS = "EPSG:4326"

ZIP_SEPARATOR = "!/"
"""``product_path`` of a product inside a ZIP: ``delivery.zip!/ENMAP01-...ZIP`` (archive-relative)."""
