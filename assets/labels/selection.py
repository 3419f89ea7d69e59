"""Which patches of a release a label product may label, and with which of its product years.

In order, each with a reason a person can read: the acquisition month (EnMAP-CDL takes the
summers, June to September), a product year for the acquisition year (CDL: the same year; NLCD:
the nearest product year), a raster for that year, and a patch window that reaches the extent of
one of that year's files (``source_files``: every file it reaches, for ``source_choice``). What
passes is labelled; the labelled fraction then decides the rest.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from pyproj import Transformer

from assets.labels.sources import SourceFiles
from storage_schemas.label_dataset import sample_id
from storage_schemas.label_products import LabelProduct, product_year
from storage_schemas.plan import PATCH_M


@dataclass
class Selection:
    candidates: pd.DataFrame
    """Release rows (slot, location_id, tile_id, time, epsg, x0, y0) with ``sample_id``,
    ``label_year`` and ``source_files`` (the names of the files whose extent the patch reaches),
    in sample-id order: the dataset's order, so labels spilled as they come are in final order."""
    left_out: pd.DataFrame
    """``sample_id`` and ``reason`` of every release patch not labelled."""


def select_patches(index: pd.DataFrame, product: LabelProduct, sources: SourceFiles) -> Selection:
    """``index``: the release's patches.parquet."""
    rows = index.copy()
    rows["sample_id"] = [sample_id(a, b) for a, b in zip(rows["location_id"], rows["tile_id"], strict=True)]
    time = pd.to_datetime(rows["time"], utc=True)
    reason = pd.Series("", index=rows.index, dtype=object)
    if product.months:
        off = ~time.dt.month.isin(product.months)
        months = ", ".join(calendar.month_abbr[m] for m in product.months)
        reason[off] = [f"acquired in {calendar.month_abbr[m]}, not in {months}" for m in time.dt.month[off]]
    years = [product_year(product, int(y)) for y in time.dt.year]
    rows["label_year"] = [0 if y is None or not product.years else y for y in years]
    for i, (acquired, year) in enumerate(zip(time.dt.year, years, strict=True)):
        if reason.iat[i]:
            continue
        if year is None:
            reason.iat[i] = f"no {product.source} product for {acquired}"
        elif rows["label_year"].iat[i] not in sources.years:
            reason.iat[i] = f"no {product.source} raster for {year}"
    waiting = reason == ""
    rows["source_files"] = pd.Series([()] * len(rows), index=rows.index, dtype=object)
    corners = ((0, 0), (PATCH_M, 0), (0, PATCH_M), (PATCH_M, PATCH_M))
    for year, part in rows[waiting].groupby("label_year"):
        files = sources.of_year(int(year))
        lon, lat = patch_points_lonlat(part, corners)
        reach = np.column_stack([_reaches(lon, lat, f.bounds_lonlat) for f in files])
        rows.loc[part.index, "source_files"] = pd.Series(
            [tuple(f.name for f, r in zip(files, row, strict=True) if r) for row in reach], index=part.index
        )
        names = ", ".join(Path(f.name).name for f in files[:3]) + (" ..." if len(files) > 3 else "")
        reason[part.index[~reach.any(axis=1)]] = f"outside {names}"
    kept = reason == ""
    left_out = pd.DataFrame({"sample_id": rows.loc[~kept, "sample_id"], "reason": reason[~kept]})
    candidates = rows[kept].sort_values("sample_id", kind="stable").reset_index(drop=True)
    return Selection(candidates, left_out.reset_index(drop=True))


def _reaches(lon: np.ndarray, lat: np.ndarray, bounds: tuple[float, float, float, float]) -> np.ndarray:
    """Whether each patch's lon/lat box (its corners: (4, n) ``lon``, ``lat``) meets the raster's
    lon/lat box (a coarse, safe test: patches that pass may still be unlabelled, and their
    labelled fraction says so)."""
    west, south, east, north = bounds
    if west <= east:
        in_lon = (lon.max(0) >= west) & (lon.min(0) <= east)
    else:  # the source crosses the antimeridian: [west, 180] and [-180, east]
        in_lon = (lon.max(0) >= west) | (lon.min(0) <= east)
    return in_lon & (lat.max(0) >= south) & (lat.min(0) <= north)


def patch_centres_lonlat(patches: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Longitude and latitude of each patch's centre (for the spatial split)."""
    lon, lat = patch_points_lonlat(patches, ((PATCH_M / 2, PATCH_M / 2),))
    return lon[0], lat[0]


def patch_points_lonlat(
    patches: pd.DataFrame, offsets: tuple[tuple[float, float], ...]
) -> tuple[np.ndarray, np.ndarray]:
    """(len(offsets), len(patches)) lon/lat of points (dx right, dy down, metres) from each
    patch's upper-left corner, one transformer per UTM zone."""
    lon = np.empty((len(offsets), len(patches)))
    lat = np.empty((len(offsets), len(patches)))
    dx = np.array([o[0] for o in offsets])[:, None]
    dy = np.array([o[1] for o in offsets])[:, None]
    for epsg, part in patches.groupby("epsg"):
        to_lonlat = Transformer.from_crs(int(epsg), 4326, always_xy=True)
        where = patches.index.get_indexer(part.index)
        lon[:, where], lat[:, where] = to_lonlat.transform(
            part["x0"].to_numpy()[None] + dx, part["y0"].to_numpy()[None] - dy
        )
    return lon, lat
