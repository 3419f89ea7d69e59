"""The patch store contract: ``stores/spectral_earth.zarr``, one Zarr v3 group.

What a reader gets from ``xarray.open_zarr(store)``:

- ``reflectance`` (patch, band, y, x), int16, reflectance x 10000, nodata -32768. One chunk is one
  patch (all bands, 128 x 128 px); ``PATCHES_PER_SHARD`` chunks make one shard file, so 500,000
  patches are about 10,000 files, and a random patch costs two reads (shard index, chunk).
- band coordinates ``band`` (1-based layer number in the product), ``wavelength`` and ``fwhm`` (nm).
- patch coordinates ``location_id``, ``tile_id``, ``time`` (acquisition, UTC) and the window of the
  patch: ``epsg`` and ``x0``, ``y0`` (upper-left corner, metres), 30 m pixels; ``same_grid`` is
  False where the patch was resampled from a tile delivered in another UTM zone.

Slots. The patch axis is a list of *slots*. Every tile owns whole shards (``PATCHES_PER_SHARD``
consecutive slots each), so a tile partition writes only shard files no other partition writes,
and two partitions can run at once. Slots are allocated by the unpartitioned ``patch_store`` step
from the plan, tile by tile, and never move: growth only appends shards. Slots a tile does not
fill (the end of its last shard) have an empty ``location_id`` and read as nodata; so do slots of
patches dropped for clouds, and of tiles not written yet.

Commits. A tile's pixels count only once ``commits/<tile_id>.json`` exists: the record the tile
step writes last (atomically) with the outcome of every slot, the band statistics of what it kept
and a hash of its pixels. The release reads commit records, never the bare arrays. The record
holds nothing that depends on when or where it was written, so a killed and re-run tile gives a
store identical byte for byte to an uninterrupted run.

The layout is versioned (``LAYOUT_VERSION`` in the group attributes); code refuses a store of
another version with a message that says what to do.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import xxhash

from storage_schemas.enmap_product import NODATA
from storage_schemas.plan import PATCH_PX, PIXEL_M

LAYOUT_NAME = "spectralforge-patch-store"
LAYOUT_VERSION = 1
LAYOUT_ATTR = "spectralforge_layout"

REFLECTANCE = "reflectance"
DIMS = ("patch", "band", "y", "x")
DTYPE = "int16"
FILL = NODATA
PATCHES_PER_SHARD = 64
"""Slots per shard file. A 1,000 x 1,000 px tile holds up to 49 patches, so most tiles own one
shard; 500,000 patches (11,636 tiles) are about 12,000 shard files."""
COORD_CHUNK = 65_536
"""Slots per chunk of a patch coordinate array (written only by the allocation step)."""

BAND_COORDS = {"band": "int16", "wavelength": "float32", "fwhm": "float32"}
PATCH_COORDS = {
    "location_id": "str",
    "tile_id": "str",
    "time": "int64",
    "epsg": "int32",
    "x0": "float64",
    "y0": "float64",
    "same_grid": "bool",
}
PATCH_COORD_FILL = {
    "location_id": "",
    "tile_id": "",
    "time": np.iinfo(np.int64).min,
    "epsg": 0,
    "x0": float("nan"),
    "y0": float("nan"),
    "same_grid": True,
}
TIME_ATTRS = {"units": "microseconds since 1970-01-01T00:00:00", "calendar": "proleptic_gregorian"}
"""CF encoding of ``time`` (int64 microseconds, UTC); its fill value reads as NaT in xarray."""

COMMITS = "commits"
"""Sub-group holding ``<tile_id>.json`` commit records and ``<tile_id>.lock`` writer locks."""
REWRITING = ".rewriting"
"""Suffix of a tile's rewrite marker in ``commits/``: the tile's shards are being replaced under
its record (``assets.patches.commit``)."""

CODEC = {
    "name": "blosc",
    "configuration": {"typesize": 2, "cname": "lz4", "clevel": 5, "shuffle": "bitshuffle", "blocksize": 0},
}
"""Compression of ``reflectance`` chunks; chosen by ``benchmarks/codecs.py`` (see CODEC_CHOICE)."""
CODEC_CHOICE = (
    "blosc lz4 clevel 5 bitshuffle: ratio 1.453 on real EnMAP pixels (1.453 simulated), write 320 MB/s, "
    "full read 721 MB/s, 101 random single-patch reads/s on a shared 2-core machine at load 4-7; the best "
    "ratio of the codecs that write >= 300 MB/s and read patches >= 50% as fast as the fastest (blosc zstd "
    "reaches 1.44-1.79 but writes at 33-221 MB/s and reads 42-79 patches/s); benchmarks/codecs.py"
)

SLOT_EMPTY = ""
OUTCOME_WRITTEN = "written"
OUTCOME_DROPPED = "dropped"


def shard_path(store: Path, shard: int) -> Path:
    """The file of one ``reflectance`` shard (Zarr v3 default chunk keys: ``c/<i>/0/0/0``)."""
    return store / REFLECTANCE / "c" / str(shard) / "0" / "0" / "0"


def patch_hash(patch: np.ndarray) -> str:
    """Content hash of a patch's pixels (band, y, x order, little-endian int16): XXH3-128, which
    runs at memory speed (a cryptographic hash would cost more than compressing the patch)."""
    return xxhash.xxh3_128_hexdigest(memoryview(np.ascontiguousarray(patch, dtype="<i2")).cast("B"))


def transform_of(x0: float, y0: float) -> tuple[float, float, float, float, float, float]:
    """Affine (a, b, c, d, e, f) of a patch whose upper-left corner is (x0, y0)."""
    return (PIXEL_M, 0.0, float(x0), 0.0, -PIXEL_M, float(y0))


def layout_attrs(band_filter: dict, codec_choice: str, sensor: str = "enmap") -> dict:
    """The group attributes that identify and describe a store of this layout."""
    return {
        LAYOUT_ATTR: {"name": LAYOUT_NAME, "version": LAYOUT_VERSION},
        SENSOR_ATTR: sensor,
        "patch_px": PATCH_PX,
        "pixel_size_m": PIXEL_M,
        "patches_per_shard": PATCHES_PER_SHARD,
        "scale": "reflectance x 10000",
        "nodata": FILL,
        "band_filter": band_filter,
        "codec": {"reflectance": CODEC, "why": codec_choice},
        "title": "SpectralEarth patch store",
        "about": "Slots with an empty location_id, and slots of tiles without a commit record, are not "
        "data. Use a release (releases/spectral_earth/<version>/) to read committed patches.",
    }


SENSOR_ATTR = "sensor"
"""Group attribute naming the sensor (``storage_schemas.sensors``) whose patches the store holds."""


class StoreLayoutError(ValueError):
    """A store that is not of this layout version (or not a patch store at all)."""


def store_sensor(attrs: dict) -> str:
    """The sensor whose patches a store holds; stores written before DESIS hold EnMAP's."""
    return str(attrs.get(SENSOR_ATTR, "enmap"))


def check_layout(attrs: dict, where: str, sensor: str | None = None) -> None:
    """Refuse a store whose layout this code does not write, or (with ``sensor``) that holds
    another sensor's patches, saying what to do about it."""
    layout = attrs.get(LAYOUT_ATTR)
    if not isinstance(layout, dict) or layout.get("name") != LAYOUT_NAME:
        raise StoreLayoutError(f"{where}: not a SpectralForge patch store (no {LAYOUT_ATTR} attribute)")
    version = layout.get("version")
    if version != LAYOUT_VERSION:
        raise StoreLayoutError(
            f"{where}: written by patch store layout version {version}, this code reads and writes "
            f"version {LAYOUT_VERSION}. Re-create it (materialise patch_store with recreate: true, then "
            "the tile_patches partitions) or use the SpectralForge release that wrote it."
        )
    if sensor is not None and store_sensor(attrs) != sensor:
        raise StoreLayoutError(
            f"{where}: holds {store_sensor(attrs)} patches, not {sensor} ones: EnMAP and DESIS keep "
            "separate stores (stores/spectral_earth.zarr, stores/desis.zarr); check the data layout"
        )


@dataclass
class CommitRecord:
    """What one tile wrote: one entry per slot it owns, and the statistics of the kept pixels.

    ``band_sum``/``band_sumsq`` are exact integer sums over the valid pixels of the written
    patches (``valid_pixels`` of them), so release statistics are exact and need no second pass.
    """

    tile_id: str
    product_name: str
    layout_version: int
    band_filter: str
    slots: list[int]
    location_ids: list[str]
    outcomes: list[str]
    reasons: list[str]
    masked_fraction: list[float]
    patch_hashes: list[str]
    valid_pixels: int
    band_sum: list[int]
    band_sumsq: list[int]
    faults: dict[str, int] = field(default_factory=dict)
    """Pixel-level faults found and masked: non-finite values, values outside int16."""
    sources: dict[str, str] = field(default_factory=dict)
    """Product file (member name) -> content digest (``xxh3-128:<hex>``) of the bytes the tile
    was cut from: what a re-scan and a re-run compare the product's files with."""

    def to_json(self) -> str:
        return json.dumps(self.__dict__, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> CommitRecord:
        return cls(**json.loads(text))

    @classmethod
    def read(cls, path: Path) -> CommitRecord:
        return cls.from_json(path.read_text())

    def written(self) -> list[int]:
        """Indexes (into the lists above) of the patches this tile wrote."""
        return [i for i, o in enumerate(self.outcomes) if o == OUTCOME_WRITTEN]


def recorded_sources(store: Path, tile_id: str, product_name: str) -> dict[str, str]:
    """Member -> digest that the tile's commit record holds for the product ``product_name``;
    empty when there is nothing to compare with (no store or record, a record of another product,
    a record written before sources were kept)."""
    path = store / COMMITS / f"{tile_id}.json"
    if not path.exists():
        return {}
    record = CommitRecord.read(path)
    return dict(record.sources) if record.product_name == product_name else {}
