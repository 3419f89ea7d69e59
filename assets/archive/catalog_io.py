"""Product records <-> the GeoParquet catalog tables, written atomically.

The frames here are the catalog's working form: the scan merges previous rows with newly read
ones as frames, so an unchanged product is never turned back into a record.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from assets.archive.record import ProductRecord, Refusal
from assets.atomic_files import write_geoparquet, write_parquet
from storage_schemas.catalog import (
    COVER_COLUMNS,
    FOOTPRINT_CRS,
    QUARANTINE_SCHEMA,
    STAGE_READ,
    STATUS_PRESENT,
    TILE_COLUMNS,
    TILE_FIELDS,
)
from storage_schemas.paths import readable

_TILE_SCHEMA = pa.schema(TILE_FIELDS)


def record_row(r: ProductRecord) -> dict:
    """One catalog row (without geometry) of a record."""
    return {
        "tile_id": r.tile_id,
        "product_name": r.product_name,
        "datatake": r.datatake,
        "tile_number": r.tile_number,
        "processor_version": r.processor_version,
        "processed": r.processed,
        "acquired": r.acquired,
        "stop_time": r.stop_time,
        "level": r.level,
        **{k: r.covers.get(k) for k in COVER_COLUMNS},
        "epsg": r.epsg,
        "width": r.width,
        "height": r.height,
        "n_bands": r.n_bands,
        "dtype": r.dtype,
        "pixel_size": r.pixel_size,
        "grid_x0": r.grid_x0,
        "grid_y0": r.grid_y0,
        "center_lon": r.center_lon,
        "center_lat": r.center_lat,
        "crosses_antimeridian": r.crosses_antimeridian,
        "wavelength_nm": r.bands.wavelength_nm.astype(np.float32),
        "fwhm_nm": r.bands.fwhm_nm.astype(np.float32),
        "gain": r.bands.gain.astype(np.float32),
        "offset": r.bands.offset.astype(np.float32),
        "product_path": r.product_path,
        "files": json.dumps(r.files, sort_keys=True),
        "simulated": r.simulated,
        "status": STATUS_PRESENT,
        "missing_since": None,
        "status_reason": None,
        "source_size": r.fingerprint.size,
        "source_mtime_ns": r.fingerprint.mtime_ns,
        "checksum": r.fingerprint.checksum,
    }


def records_frame(records: Sequence[ProductRecord]) -> gpd.GeoDataFrame:
    """A catalog frame of records, in catalog column order and types."""
    table = pa.Table.from_pylist([record_row(r) for r in records], schema=_TILE_SCHEMA)
    frame = table.to_pandas()
    return gpd.GeoDataFrame(frame, geometry=[r.footprint for r in records], crs=FOOTPRINT_CRS)[TILE_COLUMNS]


def empty_tiles() -> gpd.GeoDataFrame:
    return records_frame([])


def refusals_frame(refusals: Iterable[Refusal], detected_at: pd.Timestamp, stage: str) -> pd.DataFrame:
    rows = [
        {
            "product_path": q.product_path,
            "product_name": q.product_name,
            "file": q.file,
            "reason": q.reason,
            "stage": stage,
            "detected_at": detected_at,
            "source_size": q.fingerprint.size if q.fingerprint else -1,
            "source_mtime_ns": q.fingerprint.mtime_ns if q.fingerprint else -1,
            "checksum": q.fingerprint.checksum if q.fingerprint else "",
        }
        for q in refusals
    ]
    return pa.Table.from_pylist(rows, schema=QUARANTINE_SCHEMA).to_pandas()


def write_tiles(frame: gpd.GeoDataFrame, path: Path) -> None:
    """Write a catalog frame as GeoParquet 1.1 with a bbox covering column; readers never see
    a half-written file (temp file + rename)."""
    frame = gpd.GeoDataFrame(frame[TILE_COLUMNS], geometry="geometry", crs=FOOTPRINT_CRS)
    frame = frame.sort_values(["acquired", "tile_id"], kind="stable").reset_index(drop=True)
    write_geoparquet(frame, path)


def read_tiles(path: Path) -> gpd.GeoDataFrame:
    """Read a catalog written by :func:`write_tiles` (an empty frame if there is none)."""
    if not path.exists():
        return empty_tiles()
    frame = gpd.read_parquet(readable(path))
    for column in set(TILE_COLUMNS) - set(frame.columns):
        frame[column] = None  # a catalog written before the column (columns added since are nullable)
    return frame[TILE_COLUMNS]


def write_quarantine(frame: pd.DataFrame, path: Path) -> None:
    table = pa.Table.from_pandas(
        frame.sort_values("product_path", kind="stable"), schema=QUARANTINE_SCHEMA, preserve_index=False
    )
    write_parquet(table, path)


def read_quarantine(path: Path) -> pd.DataFrame:
    if not path.exists():
        return refusals_frame([], pd.Timestamp.now(tz="UTC"), STAGE_READ)
    return pq.read_table(readable(path)).to_pandas()
