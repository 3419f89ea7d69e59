"""The plan tables on disk (``storage_schemas.plan``): written atomically, read back typed.

Locations are written last: a reader that finds a locations table finds the patches that go
with it, and a run killed between the two writes is simply redone (the next run reads the
previous locations, which are still whole).
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import shapely

from assets.atomic_files import write_geoparquet, write_parquet
from assets.geometry.metric import to_lonlat
from assets.geometry.patch_plan import PatchPlan, empty_locations
from storage_schemas.paths import DataLayout, readable
from storage_schemas.plan import INTERSECTION_COLUMNS, LOCATION_COLUMNS, PATCH_SCHEMA


def write_intersections(table: pd.DataFrame, path: Path) -> None:
    """Algorithm 1's tuples as GeoParquet: geometry in EPSG:4326, the metric polygon as WKB."""
    lonlat = to_lonlat(table["polygon"].to_numpy(), table["epsg"].to_numpy()) if len(table) else []
    frame = gpd.GeoDataFrame(table.drop(columns="polygon"), geometry=list(lonlat), crs=4326)
    write_geoparquet(frame[INTERSECTION_COLUMNS], path)


def read_intersections(path: Path) -> pd.DataFrame:
    """The tuples with ``polygon`` (metric, in ``epsg``) restored from WKB; empty if none."""
    if not path.exists():
        return pd.DataFrame(columns=[*INTERSECTION_COLUMNS[:-1], "polygon"])
    table = pq.read_table(readable(path), columns=INTERSECTION_COLUMNS[:-1]).to_pandas()
    table["tiles"] = table["tiles"].map(list)
    table["polygon"] = shapely.from_wkb(table["wkb_metric"].to_numpy()) if len(table) else np.zeros(0)
    return table


def write_plan(plan: PatchPlan, layout: DataLayout) -> None:
    table = pa.Table.from_pandas(plan.patches, schema=PATCH_SCHEMA, preserve_index=False)
    write_parquet(table, layout.patches)
    write_geoparquet(plan.locations[LOCATION_COLUMNS], layout.locations)


def read_locations(path: Path) -> gpd.GeoDataFrame:
    if not path.exists():
        return empty_locations()
    return gpd.read_parquet(readable(path))[LOCATION_COLUMNS]


def read_patches(path: Path) -> pd.DataFrame:
    return pq.read_table(readable(path)).to_pandas()
