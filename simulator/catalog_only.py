"""``--catalog-only``: the tile catalog an archive of the plan would give, without the archive.

Later stages (overlap graph, temporal intersections, patch plan) read only
``catalog/tiles.parquet``; benchmarking them at 11,636 or 116,360 tiles needs the catalog, not
terabytes of pixels. The frame is built column by column from the plan (no per-tile Python
objects except the footprint polygons, made in one vectorised shapely call), so 116,360 tiles
take seconds. Rows are what a scan of pixel mode would record for the same seed and tile size:
the same names, footprints (the same doubles through ``footprint_from_corners``), grids and band
table, the product path of a product folder, and as mtime the processing time that pixel mode
stamps on its files. Two fingerprint fields cannot be the scan's, as there are no files: the size
is estimated to within a few kilobytes and the checksum is a hash of the product name. Covers
are those of the catalog *after* acceptance: all below 10%.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import shapely

from assets.archive.catalog_io import write_tiles
from assets.archive.footprint import footprint_from_corners
from simulator.acquisitions import PIXEL_SIZE_M, AcquisitionPlan
from simulator.covers import COVER_KEYS
from simulator.product_writer import file_names
from storage_schemas.catalog import FOOTPRINT_CRS, STATUS_PRESENT, TILE_COLUMNS, TILE_FIELDS
from storage_schemas.paths import DataLayout
from storage_schemas.sensors import Sensor

_NAME = "@PRODUCT_NAME@"
_SCALAR_FIELDS = [f for f in TILE_FIELDS if not pa.types.is_list(f.type)]


def footprints(plan: AcquisitionPlan) -> np.ndarray:
    """Footprint geometries, identical to ``footprint_from_corners`` of the XML corners."""
    coords = np.stack([plan.corner_lon, plan.corner_lat], axis=-1)  # (n, 4, 2)
    rings = np.concatenate([coords, coords[:, :1]], axis=1)
    geoms = shapely.polygons(rings)
    split = plan.crosses_antimeridian()
    # The ring order UL, LL, LR, UR is counter-clockwise, which footprint_from_corners keeps;
    # anything else (antimeridian, or a ring it would reorient) goes through it.
    odd = split | ~shapely.is_ccw(shapely.get_exterior_ring(geoms)) | ~shapely.is_valid(geoms)
    for i in np.flatnonzero(odd):
        geoms[i] = footprint_from_corners(list(zip(plan.corner_lon[i], plan.corner_lat[i], strict=True)))[0]
    return geoms


def estimated_folder_size(plan: AcquisitionPlan, n_bands: int) -> np.ndarray:
    """Bytes of a product folder as pixel mode writes it (uncompressed GeoTIFFs, 4 MB XML),
    within a few kilobytes: pixel data plus the measured header and tag overheads."""
    width, height = plan.width.astype(np.int64), plan.height.astype(np.int64)
    pixels = width * height
    image = pixels * n_bands * 2 + 64_000
    masks = 6 * (pixels + 700)
    pixelmask = n_bands * ((width + 7) // 8) * height + 3_500
    quicklooks = 2 * (3 * pixels + 700)
    xml = 3_981_600 + 202 * plan.tile_size
    return image + masks + pixelmask + quicklooks + xml


def _files_json(names: pa.Array, sensor: Sensor) -> pa.Array:
    """The ``files`` JSON of every product, assembled in Arrow (1 kB a row, 128 MB at 116,360
    tiles: as Python strings it would be held three times over)."""
    pieces = json.dumps(file_names(_NAME, sensor), sort_keys=True).split(_NAME)
    args: list = []
    for k, piece in enumerate(pieces):
        args.append(piece)
        if k < len(pieces) - 1:
            args.append(names)
    return pc.binary_join_element_wise(*args, "")


def catalog_frame(plan: AcquisitionPlan, covers: dict[str, np.ndarray]) -> gpd.GeoDataFrame:
    """The catalog rows of every planned tile, in catalog column order and types."""
    n = len(plan)
    sensor = plan.mission.sensor
    bands = sensor.band_table()
    names = plan.product_names()
    folders = plan.month_folders()
    name_array = pa.array(names, pa.string())
    utc = pa.timestamp("us", tz="UTC")
    processed_us = plan.processed.astype("datetime64[us]").astype(np.int64)
    columns = {
        "tile_id": pa.array(plan.tile_ids(), pa.string()),
        "product_name": name_array,
        "datatake": pa.array(plan.datatake, pa.int64()),
        "tile_number": pa.array(plan.tile_number, pa.int16()),
        "processor_version": pa.array(np.full(n, plan.mission.processor_version), pa.string()),
        "processed": pa.array(processed_us, pa.int64()).cast(utc),
        "acquired": pa.array(plan.start.astype(np.int64), pa.int64()).cast(utc),
        "stop_time": pa.array(plan.stop.astype(np.int64), pa.int64()).cast(utc),
        "level": pa.array(np.full(n, "L2A"), pa.string()),
        **{k: pa.array(covers[k], pa.float32()) for k in COVER_KEYS},
        "epsg": pa.array(plan.epsg, pa.int32()),
        "width": pa.array(plan.width, pa.int32()),
        "height": pa.array(plan.height, pa.int32()),
        "n_bands": pa.array(np.full(n, len(bands), dtype=np.int16), pa.int16()),
        "dtype": pa.array(np.full(n, "int16"), pa.string()),
        "pixel_size": pa.array(np.full(n, PIXEL_SIZE_M), pa.float64()),
        "grid_x0": pa.array(plan.grid_x0, pa.float64()),
        "grid_y0": pa.array(plan.grid_y0, pa.float64()),
        "center_lon": pa.array(plan.center_lon, pa.float64()),
        "center_lat": pa.array(plan.center_lat, pa.float64()),
        "crosses_antimeridian": pa.array(plan.crosses_antimeridian(), pa.bool_()),
        "product_path": pc.binary_join_element_wise(pa.array(folders, pa.string()), name_array, "/"),
        "files": _files_json(name_array, sensor),
        "simulated": pa.array(np.ones(n, dtype=bool), pa.bool_()),
        "status": pa.array(np.full(n, STATUS_PRESENT), pa.string()),
        "missing_since": pa.nulls(n, utc),
        "status_reason": pa.nulls(n, pa.string()),
        "source_size": pa.array(estimated_folder_size(plan, len(bands)), pa.int64()),
        "source_mtime_ns": pa.array(processed_us * 1000, pa.int64()),
        "checksum": pa.array(
            [hashlib.blake2b(f"simulated\0{name}".encode(), digest_size=16).hexdigest() for name in names],
            pa.string(),
        ),
    }
    table = pa.table({f.name: columns[f.name] for f in _SCALAR_FIELDS}, schema=pa.schema(_SCALAR_FIELDS))
    frame = table.to_pandas()
    # One band table shared by every row: n pointers to four small arrays, not n copies.
    for column, values in (
        ("wavelength_nm", bands.wavelength_nm),
        ("fwhm_nm", bands.fwhm_nm),
        ("gain", bands.gain),
        ("offset", bands.offset),
    ):
        shared = values.astype(np.float32)
        frame[column] = pd.Series([shared] * n, dtype=object, index=frame.index)
    geometry = gpd.GeoSeries(footprints(plan), crs=FOOTPRINT_CRS, index=frame.index)
    return gpd.GeoDataFrame(frame, geometry=geometry, crs=FOOTPRINT_CRS)[TILE_COLUMNS]


def write_catalog_only(layout: DataLayout, plan: AcquisitionPlan, covers: dict[str, np.ndarray]) -> Path:
    """Write ``layout.tiles`` (atomically, via ``catalog_io.write_tiles``)."""
    path = layout.tiles
    write_tiles(catalog_frame(plan, covers), path)
    return path
