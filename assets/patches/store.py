"""Create, open and grow the patch store (layout: ``storage_schemas.patch_store``).

Only the unpartitioned ``patch_store`` step calls :func:`allocate`: it gives every new (location,
tile) patch of the plan a slot, in whole shards per tile, appends them to the patch axis and
writes their coordinates. Tile partitions then only fill their own shards, so they never need to
coordinate with each other. Slots are never moved or reused: a tile's shards stay where they are
when the plan grows.
"""

from __future__ import annotations

import math
import shutil
from dataclasses import dataclass

import numpy as np
import pandas as pd
import zarr
from zarr.codecs import BloscCodec, GzipCodec, ZstdCodec

from assets.object_store import remove_tree
from storage_schemas.band_filter import BandFilter
from storage_schemas.patch_store import (
    BAND_COORDS,
    CODEC,
    CODEC_CHOICE,
    COMMITS,
    COORD_CHUNK,
    DIMS,
    DTYPE,
    FILL,
    PATCH_COORD_FILL,
    PATCH_COORDS,
    PATCHES_PER_SHARD,
    REFLECTANCE,
    TIME_ATTRS,
    check_layout,
    layout_attrs,
)
from storage_schemas.paths import StoragePath, is_remote, zarr_location
from storage_schemas.plan import PATCH_PX

_CODECS = {"blosc": BloscCodec, "zstd": ZstdCodec, "gzip": GzipCodec}


def patch_codec():
    return _CODECS[CODEC["name"]](**CODEC.get("configuration", {}))


@dataclass(frozen=True)
class StoreBands:
    """The band axis of a store: 1-based layer numbers of the kept bands, wavelength and FWHM."""

    layer: np.ndarray
    wavelength_nm: np.ndarray
    fwhm_nm: np.ndarray

    @classmethod
    def select(cls, wavelength_nm: np.ndarray, fwhm_nm: np.ndarray, band_filter: BandFilter) -> StoreBands:
        kept = band_filter.indexes(wavelength_nm)
        return cls(kept + 1, np.asarray(wavelength_nm)[kept], np.asarray(fwhm_nm)[kept])

    def __len__(self) -> int:
        return len(self.layer)


def create_store(
    path: StoragePath, bands: StoreBands, band_filter: BandFilter, sensor: str = "enmap"
) -> zarr.Group:
    """An empty store of one sensor's patches: the reflectance array with no slots, band
    coordinates, the commits group."""
    attributes = layout_attrs(band_filter.describe(), CODEC_CHOICE, sensor)
    group = zarr.create_group(zarr_location(path), zarr_format=3, attributes=attributes)
    create_reflectance(group, len(bands), DIMS, tuple(PATCH_COORDS))
    write_band_coords(group, bands)
    for name, dtype in PATCH_COORDS.items():
        group.create_array(
            name,
            shape=(0,),
            chunks=(COORD_CHUNK,),
            dtype=dtype,
            fill_value=PATCH_COORD_FILL[name],
            dimension_names=["patch"],
            attributes=TIME_ATTRS if name == "time" else {},
        )
    group.create_group(
        COMMITS, attributes={"about": "<tile_id>.json: commit record; <tile_id>.lock: writer lock"}
    )
    return group


def create_reflectance(
    group: zarr.Group, n_bands: int, dims: tuple[str, ...], coords: tuple[str, ...], length: int = 0
) -> zarr.Array:
    """The reflectance array of the store layout (one patch per chunk, shards of
    PATCHES_PER_SHARD, the chosen codec): the patch store's, and the label datasets' (``dims``
    names the axes, ``coords`` the per-patch coordinates), so one reader serves both."""
    return group.create_array(
        REFLECTANCE,
        shape=(length, n_bands, PATCH_PX, PATCH_PX),
        chunks=(1, n_bands, PATCH_PX, PATCH_PX),
        shards=(PATCHES_PER_SHARD, n_bands, PATCH_PX, PATCH_PX),
        dtype=DTYPE,
        fill_value=FILL,
        compressors=patch_codec(),
        dimension_names=list(dims),
        attributes={
            "long_name": "surface reflectance x 10000",
            "scale_factor_note": "divide by 10000 for reflectance",
            "coordinates": " ".join([*coords, "wavelength", "fwhm"]),
        },
    )


def write_band_coords(group: zarr.Group, bands: StoreBands) -> None:
    n = len(bands)
    values = {"band": bands.layer, "wavelength": bands.wavelength_nm, "fwhm": bands.fwhm_nm}
    units = {"band": "1-based layer number in the product", "wavelength": "nm", "fwhm": "nm"}
    for name, dtype in BAND_COORDS.items():
        array = group.create_array(
            name,
            shape=(n,),
            chunks=(n,),
            dtype=dtype,
            dimension_names=["band"],
            attributes={"units": units[name]},
        )
        array[:] = np.asarray(values[name], dtype=dtype)


def open_store(path: StoragePath, mode: str = "r", sensor: str | None = None) -> zarr.Group:
    """Open an existing store, refusing one of another layout version, or of another sensor than
    ``sensor`` when given (:class:`StoreLayoutError`)."""
    if not (path / "zarr.json").is_file():
        raise FileNotFoundError(f"{path}: no patch store here (materialise patch_store first)")
    group = zarr.open_group(zarr_location(path), mode=mode, zarr_format=3)
    check_layout(dict(group.attrs), str(path), sensor)
    return group


def store_bands(group: zarr.Group) -> StoreBands:
    return StoreBands(group["band"][:], group["wavelength"][:], group["fwhm"][:])


def read_slots(group: zarr.Group) -> pd.DataFrame:
    """Every slot of the store with its coordinates (``slot`` = index on the patch axis)."""
    n = group[REFLECTANCE].shape[0]
    frame = pd.DataFrame({name: group[name][:] if n else np.array([], dtype=object) for name in PATCH_COORDS})
    frame.insert(0, "slot", np.arange(n, dtype=np.int64))
    return frame


@dataclass(frozen=True)
class Allocation:
    """What :func:`allocate` added: slots per tile, and totals."""

    new_slots: pd.DataFrame
    total_slots: int
    tiles_extended: int


def allocate(group: zarr.Group, patches: pd.DataFrame, locations: pd.DataFrame) -> Allocation:
    """Give every plan patch without a slot one, in whole new shards per tile, and write the new
    slots' coordinates. Tiles are taken in (acquired, tile_id) order and patches by location id,
    so the same plan always gives the same slots.

    ``patches``: plan/patches.parquet (location_id, tile_id, acquired, same_grid);
    ``locations``: plan/locations.parquet (location_id, epsg, x0, y0).
    """
    existing = read_slots(group)
    have = set(zip(existing["location_id"], existing["tile_id"], strict=True))
    keys = list(zip(patches["location_id"], patches["tile_id"], strict=True))
    todo = patches[[k not in have for k in keys]]
    start = len(existing)
    if todo.empty:
        return Allocation(existing.iloc[0:0], start, 0)
    where = locations.set_index("location_id")[["epsg", "x0", "y0"]]
    todo = todo.sort_values(["acquired", "tile_id", "location_id"], kind="stable")
    rows = []
    for tile_id, group_rows in todo.groupby("tile_id", sort=False):
        n = len(group_rows)
        span = math.ceil(n / PATCHES_PER_SHARD) * PATCHES_PER_SHARD
        block = pd.DataFrame({"slot": np.arange(start, start + span, dtype=np.int64), "tile_id": tile_id})
        block["location_id"] = list(group_rows["location_id"]) + [""] * (span - n)
        block["acquired"] = list(group_rows["acquired"]) + [pd.NaT] * (span - n)
        block["same_grid"] = list(group_rows["same_grid"]) + [True] * (span - n)
        rows.append(block)
        start += span
    new = pd.concat(rows, ignore_index=True)
    placed = new["location_id"] != ""
    geo = where.reindex(new["location_id"].where(placed, None))
    new["epsg"] = np.where(placed, geo["epsg"].fillna(0).to_numpy(), 0).astype(np.int32)
    new["x0"] = np.where(placed, geo["x0"].to_numpy(), np.nan)
    new["y0"] = np.where(placed, geo["y0"].to_numpy(), np.nan)
    _append(group, new, start)
    return Allocation(new, start, int(todo["tile_id"].nunique()))


def _append(group: zarr.Group, new: pd.DataFrame, total: int) -> None:
    first = int(new["slot"].iloc[0])
    acquired = pd.to_datetime(new["acquired"], utc=True)
    values = {
        "location_id": new["location_id"].to_numpy(dtype=object).astype(str),
        "tile_id": new["tile_id"].to_numpy(dtype=object).astype(str),
        "time": _to_micros(acquired),
        "epsg": new["epsg"].to_numpy(np.int32),
        "x0": new["x0"].to_numpy(float),
        "y0": new["y0"].to_numpy(float),
        "same_grid": new["same_grid"].to_numpy(bool),
    }
    # coordinates first, the patch axis last: a reader that sees the new length sees its coordinates
    for name in PATCH_COORDS:
        group[name].resize((total,))
        group[name][first:total] = values[name]
    reflectance = group[REFLECTANCE]
    reflectance.resize((total, *reflectance.shape[1:]))


def _to_micros(acquired: pd.Series) -> np.ndarray:
    out = np.full(len(acquired), PATCH_COORD_FILL["time"], dtype=np.int64)
    valid = acquired.notna().to_numpy()
    out[valid] = acquired[valid].dt.as_unit("us").astype("int64").to_numpy()
    return out


def remove_store(path: StoragePath) -> None:
    """Delete a store (``patch_store`` with ``recreate``); the release folders are kept."""
    if is_remote(path):
        remove_tree(path)
    elif path.exists():
        shutil.rmtree(path)
