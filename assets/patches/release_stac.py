"""The release as STAC: ``collection.json`` and ``items.parquet`` (stac-geoparquet).

Why STAC: a release is a dataset other tools should find and filter without our code: STAC
browsers read the collection, and stac-geoparquet readers (geopandas, DuckDB, rustac) filter the
items by place and time. One item per *location* (not per patch): a location is the unit users
select (a place with one or more timestamps), and the paper's dataset has 415k of them. The
item says where to read its pixels: ``spectral_earth:slots`` are the indices on the store's
``patch`` axis, in time order, beside ``spectral_earth:tiles`` and ``spectral_earth:timestamps``.

Why stac-geoparquet rather than one JSON file per item: half a million JSON files are slow to
write, list and copy; one Parquet file of ~20 MB is read in a second and filtered by its bbox
covering column. The items are built as plain dicts (building pystac ``Item`` objects costs
several times more and adds nothing the parser needs).

Field choices, so that readers need not guess:

- ``datetime`` is null and ``start_datetime``/``end_datetime`` span the location's timestamps
  (a location is a time series, not one acquisition).
- The acquisition times are ``spectral_earth:timestamps`` (RFC 3339, UTC), not a ``timestamps``
  field: the STAC *timestamps* extension defines only ``published``/``expires``/``unpublished``
  (when the metadata is valid), not a list of acquisitions.
- ``bbox`` of an outline split at the antimeridian has west > east (RFC 7946 section 5.2).
- ``proj:code``/``proj:shape``/``proj:transform`` (projection extension v2) describe the 128 x
  128 px window on the location's UTM grid, so a reader can georeference the Zarr pixels.
- Band wavelengths in ``eo:bands`` are micrometres, as the eo extension requires; the store and
  ``statistics.csv`` keep nanometres.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pystac
import shapely

from assets.atomic_files import replace_atomically
from storage_schemas.enmap_product import NODATA
from storage_schemas.plan import PATCH_PX, PIXEL_M
from storage_schemas.release import COLLECTION, ITEMS, LOCATIONS, MANIFEST, PATCH_INDEX, STATISTICS

COLLECTION_ID = "spectral-earth"


@dataclass(frozen=True)
class Dataset:
    """What a release's STAC description says about the sensor it was cut from."""

    collection_id: str
    title: str
    mission: str
    bands_note: str
    licence: str
    provider_url: str | None
    platform: str
    instrument: str


DATASETS = {
    "enmap": Dataset(
        COLLECTION_ID,
        "SpectralEarth",
        "EnMAP",
        "water-vapour absorption regions removed",
        "Contains modified EnMAP data © DLR {years}; use is subject to the EnMAP data licence of DLR.",
        "https://www.enmap.org",
        "enmap",
        "hsi",
    ),
    "desis": Dataset(
        "desis-patches",
        "DESIS patches (SpectralEarth recipe)",
        "DESIS",
        "all bands kept",
        "Contains modified DESIS data © DLR {years}; use is subject to DLR's DESIS data licence.",
        None,
        "iss",
        "desis",
    ),
}
"""Per sensor (``storage_schemas.sensors``): the collection id, title, licence and platform."""
ZARR_MEDIA_TYPE = "application/vnd+zarr"
PARQUET_MEDIA_TYPE = "application/vnd.apache.parquet"
ITEMS_ASSET = "geoparquet-items"
"""Collection asset naming the items file, with role ``stac-items`` (the stac-geoparquet spec's
way for a collection to point at its items in Parquet)."""
REFLECTANCE_ASSET = "reflectance"
PREFIX = "spectral_earth:"

PROJECTION = "https://stac-extensions.github.io/projection/v2.0.0/schema.json"
VERSION = "https://stac-extensions.github.io/version/v1.2.0/schema.json"
EO = "https://stac-extensions.github.io/eo/v1.1.0/schema.json"
RASTER = "https://stac-extensions.github.io/raster/v1.1.0/schema.json"
SCIENTIFIC = "https://stac-extensions.github.io/scientific/v1.0.0/schema.json"

PAPER_DOI = "10.1109/JSTARS.2025.3581451"
PAPER_CITATION = (
    "Braham, N. A. A., Albrecht, C. M., Mairal, J., Chanussot, J., Wang, Y., Zhu, X. X. (2025). "
    "SpectralEarth: Training Hyperspectral Foundation Models at Scale. IEEE Journal of Selected "
    "Topics in Applied Earth Observations and Remote Sensing 18, 16780-16797."
)
SUMMARY_MAXCOUNT = 10_000
"""Longest summary list kept by pystac's ``to_dict`` (its default, 25, would drop the bands)."""
REFLECTANCE_SCALE = 1e-4
"""Stored values are reflectance x 10000."""


def _iso(times: pd.Series) -> list[str]:
    """RFC 3339 UTC strings; microseconds only where a time has them (as pystac writes them)."""
    times = pd.to_datetime(times).dt.tz_convert("UTC")
    text = times.dt.strftime("%Y-%m-%dT%H:%M:%S.%f").str.removesuffix(".000000")
    return [f"{t}Z" for t in text]


def _utc(value: pd.Timestamp) -> dt.datetime:
    return pd.Timestamp(value).tz_convert("UTC").to_pydatetime()


def _check_lonlat(locations: gpd.GeoDataFrame) -> None:
    if locations.crs is not None and locations.crs.to_epsg() != 4326:
        raise ValueError(f"locations must be in EPSG:4326 (STAC geometries are lon/lat), got {locations.crs}")


def item_bboxes(geometries: np.ndarray) -> np.ndarray:
    """(n, 4) west, south, east, north; for outlines split at the antimeridian (parts touching
    both -180 and 180) west > east, as RFC 7946 asks, instead of a box around the whole world."""
    geometries = np.asarray(geometries, dtype=object)
    bounds = shapely.bounds(geometries)
    for i in np.flatnonzero((bounds[:, 0] <= -180.0) & (bounds[:, 2] >= 180.0)):
        unwrapped = shapely.transform(
            geometries[i],
            lambda xy: np.column_stack([np.where(xy[:, 0] < 0, xy[:, 0] + 360.0, xy[:, 0]), xy[:, 1]]),
        )
        west, south, east, north = shapely.bounds(unwrapped)
        bounds[i] = (west, south, east - 360.0 if east > 180.0 else east, north)
    return bounds


def _band_table(bands: pd.DataFrame, statistics: pd.DataFrame) -> pd.DataFrame:
    merged = bands[["band", "wavelength_nm", "fwhm_nm"]].merge(
        statistics[["band", "mean", "std", "valid_pixels"]], on="band", how="left", validate="one_to_one"
    )
    if merged["mean"].isna().any():
        missing = merged.loc[merged["mean"].isna(), "band"].tolist()
        raise ValueError(
            f"statistics lack bands {missing[:10]}: the release statistics do not match its bands"
        )
    return merged.sort_values("wavelength_nm")


def build_collection(
    version: str,
    index: pd.DataFrame,
    locations: gpd.GeoDataFrame,
    bands: pd.DataFrame,
    statistics: pd.DataFrame,
    store_href: str,
    sensor: str = "enmap",
) -> pystac.Collection:
    """The release's STAC Collection (of a release of ``sensor``'s patches).

    ``index`` is the release patch index (``PATCH_INDEX_SCHEMA``), ``locations`` the release
    locations (EPSG:4326 outlines), ``bands`` the kept bands (``band, wavelength_nm, fwhm_nm``),
    ``statistics`` the release statistics (``STATISTICS_COLUMNS``). ``store_href`` is written as
    given: pass it relative to the collection file (``../../../stores/spectral_earth.zarr``) so
    that the release folder and the store can move together, or absolute for a remote store.
    The other release files are referenced relative to the collection (same folder). Nothing in
    it depends on when it was built, so the same release gives the same bytes.
    """
    _check_lonlat(locations)
    if index.empty:
        raise ValueError("an empty release has no extent: refusing to describe it")
    times = pd.to_datetime(index["time"])
    first, last = _utc(times.min()), _utc(times.max())
    bbox = [float(v) for v in locations.geometry.total_bounds]
    years = f"{first.year}" if first.year == last.year else f"{first.year}-{last.year}"
    n_multi = int((index.groupby("location_id").size() > 1).sum())
    dataset = DATASETS[sensor]
    description = (
        f"SpectralEarth-style hyperspectral patches (release {version}): {len(index):,} patches of "
        f"{PATCH_PX} x {PATCH_PX} px at 30 m over {index['location_id'].nunique():,} locations "
        f"({n_multi:,} with more than one timestamp), cut from {index['tile_id'].nunique():,} "
        f"{dataset.mission} L2A tiles, {len(bands)} bands ({dataset.bands_note}), int16 reflectance x "
        f"10000, nodata {NODATA}. {dataset.licence.format(years=years)} Recipe: SpectralEarth "
        "(Braham et al., 2025)."
    )
    collection = pystac.Collection(
        id=dataset.collection_id,
        title=dataset.title,
        description=description,
        extent=pystac.Extent(pystac.SpatialExtent([bbox]), pystac.TemporalExtent([[first, last]])),
        license="other",
        keywords=[
            dataset.mission,
            "hyperspectral",
            "imaging spectroscopy",
            "foundation models",
            "SpectralEarth",
        ],
        providers=[
            pystac.Provider(
                name="DLR (German Aerospace Center)",
                roles=[pystac.ProviderRole.PRODUCER, pystac.ProviderRole.LICENSOR],
                url=dataset.provider_url,
                description=f"{dataset.mission} mission; L2A surface reflectance products.",
            ),
            pystac.Provider(
                name="SpectralForge",
                roles=[pystac.ProviderRole.PROCESSOR],
                description="Band filter, non-overlapping 128 x 128 px locations, patch store and release.",
            ),
        ],
        stac_extensions=[VERSION, EO, RASTER, PROJECTION, SCIENTIFIC],
        extra_fields={"version": version, "sci:doi": PAPER_DOI, "sci:citation": PAPER_CITATION},
    )
    table = _band_table(bands, statistics)
    eo_bands = [
        {
            "name": f"B{int(b.band):03d}",
            "center_wavelength": round(float(b.wavelength_nm) / 1000.0, 6),
            "full_width_half_max": round(float(b.fwhm_nm) / 1000.0, 6),
        }
        for b in table.itertuples()
    ]
    raster_bands = [
        {
            "nodata": NODATA,
            "data_type": "int16",
            "scale": REFLECTANCE_SCALE,
            "offset": 0.0,
            "spatial_resolution": PIXEL_M,
            "statistics": {"mean": float(b.mean), "stddev": float(b.std)},
        }
        for b in table.itertuples()
    ]
    # pystac drops summary lists of 25 or more entries from to_dict() unless told otherwise; a
    # reader that re-serialises with pystac must raise ``summaries.maxcount`` the same way.
    collection.summaries = pystac.Summaries(
        {
            "platform": [dataset.platform],
            "instruments": [dataset.instrument],
            "gsd": [PIXEL_M],
            "proj:code": [f"EPSG:{int(e)}" for e in sorted(locations["epsg"].unique())],
            "eo:bands": eo_bands,
            "raster:bands": raster_bands,
        },
        maxcount=SUMMARY_MAXCOUNT,
    )
    collection.add_link(
        pystac.Link(rel="cite-as", target=f"https://doi.org/{PAPER_DOI}", media_type="text/html")
    )
    assets = {
        REFLECTANCE_ASSET: pystac.Asset(
            store_href,
            title="Patch store (Zarr v3): reflectance (patch, band, y, x)",
            media_type=ZARR_MEDIA_TYPE,
            roles=["data"],
        ),
        ITEMS_ASSET: pystac.Asset(
            f"./{ITEMS}",
            title="Items, one per location (stac-geoparquet)",
            media_type=PARQUET_MEDIA_TYPE,
            roles=["stac-items"],
        ),
        "patch_index": pystac.Asset(
            f"./{PATCH_INDEX}",
            title="Patch index: slot, location, tile, time",
            media_type=PARQUET_MEDIA_TYPE,
            roles=["metadata"],
        ),
        "locations": pystac.Asset(
            f"./{LOCATIONS}",
            title="Location outlines (GeoParquet)",
            media_type=PARQUET_MEDIA_TYPE,
            roles=["metadata"],
        ),
        "statistics": pystac.Asset(
            f"./{STATISTICS}",
            title="Per-band mean and standard deviation (reflectance x 10000)",
            media_type="text/csv",
            roles=["metadata"],
        ),
        "manifest": pystac.Asset(
            f"./{MANIFEST}", title="Release manifest", media_type=pystac.MediaType.JSON, roles=["metadata"]
        ),
    }
    for key, asset in assets.items():
        collection.add_asset(key, asset)
    return collection


def build_items(
    version: str, index: pd.DataFrame, locations: gpd.GeoDataFrame, store_href: str
) -> list[dict[str, Any]]:
    """One STAC Item (a plain JSON-ready dict) per location, in ``location_id`` order.

    ``list(iter_items(...))``; for half a million locations pass ``iter_items`` straight to
    ``write_items_geoparquet`` instead, so that only one chunk of items is in memory at a time.
    """
    return list(iter_items(version, index, locations, store_href))


def iter_items(
    version: str,
    index: pd.DataFrame,
    locations: gpd.GeoDataFrame,
    store_href: str,
    collection_id: str = COLLECTION_ID,
) -> Iterator[dict[str, Any]]:
    """The items of ``build_items``, one at a time.

    Every location of ``locations`` must have patches in ``index`` and every indexed location an
    outline (the release contract says so; a mismatch is a bug upstream, so it raises rather
    than dropping items). The window (``epsg, x0, y0``) comes from ``locations``. Slots, tiles
    and timestamps are in time order (ties by tile id). ``store_href`` is written as given and
    is resolved, like the ``collection`` link (``./collection.json``), relative to the items file.
    Checks run before the first item is yielded.
    """
    _check_lonlat(locations)
    patches = index.sort_values(["location_id", "time", "tile_id"], kind="stable")
    ids, starts = np.unique(patches["location_id"].to_numpy(), return_index=True)
    where = pd.Index(locations["location_id"]).get_indexer(ids)
    if (where < 0).any() or len(ids) != len(locations):
        raise ValueError(
            f"index and locations disagree: {int((where < 0).sum())} indexed locations have no outline, "
            f"{len(locations) - int((where >= 0).sum())} outlines have no patch"
        )
    return _items(version, patches, ids, starts, locations.iloc[where], store_href, collection_id)


def _items(
    version: str,
    patches: pd.DataFrame,
    ids: np.ndarray,
    starts: np.ndarray,
    locations: gpd.GeoDataFrame,
    store_href: str,
    collection_id: str,
) -> Iterator[dict[str, Any]]:
    ends = np.append(starts[1:], len(patches))
    slots = patches["slot"].astype("int64").tolist()
    tiles = patches["tile_id"].tolist()
    times = _iso(patches["time"])
    geometries = locations.geometry.to_numpy()
    geojson = shapely.to_geojson(geometries)
    bboxes = item_bboxes(geometries).tolist()
    epsg = locations["epsg"].astype("int64").tolist()
    x0 = locations["x0"].astype(float).tolist()
    y0 = locations["y0"].astype(float).tolist()
    stac_version = pystac.get_stac_version()
    asset = {"href": store_href, "type": ZARR_MEDIA_TYPE, "roles": ["data"], "title": "Patch store (Zarr v3)"}
    link = {"rel": "collection", "href": f"./{COLLECTION}", "type": "application/json"}
    for i, location_id in enumerate(ids.tolist()):
        a, b = starts[i], ends[i]
        yield {
            "type": "Feature",
            "stac_version": stac_version,
            "stac_extensions": [PROJECTION, VERSION],
            "id": location_id,
            "geometry": json.loads(geojson[i]),
            "bbox": bboxes[i],
            "properties": {
                "datetime": None,
                "start_datetime": times[a],
                "end_datetime": times[b - 1],
                "version": version,
                "proj:code": f"EPSG:{epsg[i]}",
                "proj:shape": [PATCH_PX, PATCH_PX],
                "proj:transform": [PIXEL_M, 0.0, x0[i], 0.0, -PIXEL_M, y0[i]],
                f"{PREFIX}slots": slots[a:b],
                f"{PREFIX}tiles": tiles[a:b],
                f"{PREFIX}timestamps": times[a:b],
            },
            "links": [dict(link)],
            "assets": {REFLECTANCE_ASSET: dict(asset, roles=["data"])},
            "collection": collection_id,
        }


def write_items_geoparquet(
    items: Iterable[Mapping[str, Any] | pystac.Item],
    path: Path,
    collection: pystac.Collection | None = None,
    chunk_size: int = 16_384,
) -> None:
    """``items.parquet``: stac-geoparquet 1.0 (GeoParquet 1.1, zstd), one file, written atomically.

    Items are parsed ``chunk_size`` at a time (one Parquet row group each): the parser deep-copies
    every item, so parsing all at once would hold two copies of half a million items in memory.
    Pass ``iter_items(...)`` rather than a list and only one chunk of items exists at a time.
    The first chunk fixes the schema (a later chunk that differs raises); the items of
    ``iter_items`` all share it. ``collection``, when given, is embedded in the file metadata
    (``stac-geoparquet`` key), so the file alone says what it belongs to.
    """
    # imported here: stac_geoparquet pulls in pyarrow.dataset, psutil and orjson, which the code
    # location need not load to list its assets
    from stac_geoparquet.arrow import parse_stac_items_to_arrow, to_parquet

    stream = iter(items)
    first = next(stream, None)
    if first is None:
        raise ValueError("no items: stac-geoparquet cannot write an empty file")
    collections = None
    if collection is not None:
        collections = {collection.id: collection.to_dict(include_self_link=False, transform_hrefs=False)}

    def write(tmp: str) -> None:
        reader = parse_stac_items_to_arrow(chain([first], stream), chunk_size=chunk_size, schema="FirstBatch")
        to_parquet(reader, tmp, collections=collections, compression="zstd")

    replace_atomically(Path(path), write)


def write_collection(collection: pystac.Collection, path: Path) -> None:
    """``collection.json``, written atomically, hrefs exactly as built (relative where relative).

    Refuses a collection without the ``stac-items`` asset, so a written release always says where
    its items are.
    """
    asset = collection.assets.get(ITEMS_ASSET)
    if asset is None or "stac-items" not in (asset.roles or []):
        raise ValueError(f"collection {collection.id} has no '{ITEMS_ASSET}' asset pointing at {ITEMS}")
    text = json.dumps(
        collection.to_dict(include_self_link=False, transform_hrefs=False), indent=2, ensure_ascii=False
    )
    replace_atomically(Path(path), lambda tmp: Path(tmp).write_text(text + "\n", encoding="utf-8"))
