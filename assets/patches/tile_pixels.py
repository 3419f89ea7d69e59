"""Read one tile's pixels once, whole, checked against its catalog row.

The patch step reads each SPECTRAL_IMAGE in one call for the kept bands (band-sequential files
make that one sequential read per band), not window by window: a tile has up to ~50 windows and
per-window reads cost a GDAL block walk each. The three QL masks the recipe cleans with (cloud,
cloud shadow, haze) come along at full resolution, a few MB of uint8.

Everything a product can get wrong at this point (pixels that disagree with the catalog, a band
table the store cannot hold, float pixels that are NaN, infinite or outside int16, reflectance no
surface can have) becomes a :class:`TileError` naming the file, or a counted, masked pixel fault;
never a crash of the run.

Every file read is hashed on the way (:mod:`assets.archive.content_hash`), so the commit record
can say which bytes its patches came from, and a re-run can refuse bytes that changed under the
same product name (``recorded``, from :func:`storage_schemas.patch_store.recorded_sources`).
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rasterio
from rasterio.errors import RasterioError
from rasterio.io import DatasetReader, MemoryFile

from assets.archive.content_hash import ContentChange, digest_bytes, member_digest
from assets.archive.reader import REQUIRED_MASKS
from assets.archive.sources import gdal_env, gdal_path_of, is_in_zip, open_zip_member, product_file
from assets.object_store import get_bytes
from assets.patches.store import StoreBands
from storage_schemas.band_filter import BandFilter
from storage_schemas.enmap_product import NODATA
from storage_schemas.paths import is_remote
from storage_schemas.sensors import ENMAP, Sensor

DEFAULT_MAX_IMPOSSIBLE = 0.01
"""Largest share of a tile's pixels that may hold physically impossible reflectance (in some kept
band) before the tile is refused as damaged. Real EnMAP pixels (Potsdam) and simulated tiles have
none; 1 MiB of a 256 px simulated image with its bytes inverted (issue 16) gives 100%, and
1 MiB of a 1000 px band-sequential product is half a band, so up to half its pixels: 1% refuses that
damage and leaves room for a few bad detector columns or glint pixels, which are masked instead."""
WAVELENGTH_TOLERANCE_NM = 5.0
"""How far a tile's band centre may be from the store's band it is written to."""
INT16_MAX = 32767
TILE_INPUTS = [
    "tile_id",
    "product_name",
    "product_path",
    "files",
    "acquired",
    "epsg",
    "width",
    "height",
    "n_bands",
    "grid_x0",
    "grid_y0",
    "pixel_size",
    "wavelength_nm",
]
"""The catalog columns the patch step reads."""


class TileError(ValueError):
    """A tile that cannot be patchified; the message names the file and the fault."""


@dataclass
class TilePixels:
    data: np.ndarray
    """(kept bands, height, width) int16; faulty float values already set to nodata."""
    masks: dict[str, np.ndarray]
    """QL mask kind -> (height, width) bool, True where flagged."""
    epsg: int
    x0: float
    y0: float
    pixel_size: float
    wavelength_nm: np.ndarray
    """Centre of each kept band (the store's band axis)."""
    faults: dict[str, int] = field(default_factory=dict)
    """Per-tile counts of masked faulty pixels and values (the partition's ``pixel_faults``)."""
    band_faults: dict[str, int] = field(default_factory=dict)
    """``impossible_values_band_<layer>`` (1-based product layer) -> count, only for bands that
    have some: the per-band detail the commit record keeps."""
    sources: dict[str, str] = field(default_factory=dict)
    """Member name -> content digest of every product file read (image and mask files)."""


def band_indexes(row: dict, bands: StoreBands, band_filter: BandFilter, where: str) -> np.ndarray:
    """0-based layers of the tile that fill the store's band axis, in the store's (wavelength)
    order; TileError if the tile's band table does not give the store's bands.

    Layer order differs between products: the operational table interleaves VNIR and SWIR by
    wavelength between 900 and 1000 nm, while the real Potsdam scene (as the EnMAP-Box saved it)
    has all VNIR layers before the SWIR ones. Matching by wavelength makes both land right."""
    wavelengths = np.asarray(row["wavelength_nm"], dtype=float)
    kept = band_filter.indexes(wavelengths)
    kept = kept[np.argsort(wavelengths[kept], kind="stable")]
    if len(kept) != len(bands):
        raise TileError(
            f"{where}: {len(wavelengths)} bands give {len(kept)} after the {band_filter.name} filter, "
            f"but the store holds {len(bands)}"
        )
    off = np.abs(wavelengths[kept] - bands.wavelength_nm)
    if off.max(initial=0.0) > WAVELENGTH_TOLERANCE_NM:
        worst = int(np.argmax(off))
        raise TileError(
            f"{where}: band centre {wavelengths[kept][worst]:.1f} nm is {off[worst]:.1f} nm from the store's "
            f"{bands.wavelength_nm[worst]:.1f} nm (tolerance {WAVELENGTH_TOLERANCE_NM} nm)"
        )
    return kept


@contextmanager
def open_raster(
    archive_root: Path, product_path: str, member: str, digests: dict[str, str] | None = None
) -> Iterator[DatasetReader]:
    """Open a product raster for one whole read. A deflated ZIP member is inflated once into
    memory: GDAL's /vsizip/ would re-inflate from the start for every band it seeks to (a 600 px
    tile took 25 s that way, 0.5 s this way). Files in folders and stored members open in place;
    a file on an object store (not in a ZIP) is fetched whole in one GET, as the tile reads it all.

    With ``digests``, the file's content digest is put there under ``member`` (once per member),
    at the cheapest point: the inflated bytes of a deflated member are hashed in memory; any other
    file is hashed just before GDAL opens it, so GDAL's read is then served by the page cache."""
    path = gdal_path_of(archive_root, product_path, member)
    wanted = digests is not None and member not in digests
    if is_in_zip(product_path):
        with open_zip_member(archive_root, product_path, member) as (info, stream):
            if info.compress_type != zipfile.ZIP_STORED:
                data = stream.read()
                if wanted:
                    digests[member] = _digest_of_bytes(data)
                with MemoryFile(data) as memory, memory.open() as ds:
                    yield ds
                return
    if is_remote(archive_root):  # one GET of the whole object, hashed in memory: no second read
        data = get_bytes(product_file(archive_root, product_path, member))
        if wanted:
            digests[member] = _digest_of_bytes(data)
        with MemoryFile(data) as memory, memory.open() as ds:
            yield ds
        return
    if wanted:
        digests[member] = _digest_of_file(archive_root, product_path, member)
    with rasterio.open(path) as ds:
        yield ds


def _digest_of_bytes(data: bytes) -> str:
    return digest_bytes(data)


def _digest_of_file(archive_root: Path, product_path: str, member: str) -> str:
    return member_digest(archive_root, product_path, member)


def read_tile(
    archive_root: Path,
    row: dict,
    bands: StoreBands,
    band_filter: BandFilter,
    sensor: Sensor = ENMAP,
    max_impossible: float = DEFAULT_MAX_IMPOSSIBLE,
    recorded: Mapping[str, str] | None = None,
) -> TilePixels:
    """The kept bands and the cleaning masks of one catalog row, checked against the row; the
    masks from where ``sensor`` keeps them (EnMAP: a QL file each; DESIS: layers of QUALITY.tif).

    TileError, in this order, when a file's digest differs from the one ``recorded`` (member ->
    digest of the tile's last commit of this product) holds for it, or when more than
    ``max_impossible`` of the tile's pixels hold physically impossible values (fewer become
    nodata, counted in ``faults``)."""
    files = json.loads(row["files"])
    image = gdal_path_of(archive_root, row["product_path"], files["image"])
    kept = band_indexes(row, bands, band_filter, image)
    sources: dict[str, str] = {}
    try:
        with gdal_env():
            with open_raster(archive_root, row["product_path"], files["image"], sources) as ds:
                _check_against_row(ds, row, image)
                raw = ds.read([int(i) + 1 for i in kept])
            masks = {}
            for kind in REQUIRED_MASKS:
                source = sensor.masks[kind]
                member = files[source.file_kind]
                path = gdal_path_of(archive_root, row["product_path"], member)
                with open_raster(archive_root, row["product_path"], member, sources) as ds:
                    if (ds.width, ds.height) != (row["width"], row["height"]):
                        raise TileError(
                            f"{path}: mask is {ds.width} x {ds.height} px, the image {row['width']} x "
                            f"{row['height']}"
                        )
                    masks[kind] = ds.read(source.band) > 0
    except (RasterioError, OSError, zipfile.BadZipFile, KeyError) as exc:
        raise TileError(f"{image}: unreadable: {exc}") from None
    _refuse_changed(archive_root, row["product_path"], recorded or {}, sources)
    data, faults = to_int16(raw)
    impossible = mask_impossible(data, kept, sensor)
    _refuse_damaged(impossible, data.shape[1] * data.shape[2], max_impossible, sensor, image)
    faults.update(impossible.tile_faults())
    return TilePixels(
        data,
        masks,
        int(row["epsg"]),
        float(row["grid_x0"]),
        float(row["grid_y0"]),
        float(row["pixel_size"]),
        bands.wavelength_nm,
        faults,
        impossible.band_faults(),
        dict(sorted(sources.items())),
    )


def _refuse_changed(
    archive_root: Path, product_path: str, recorded: Mapping[str, str], found: Mapping[str, str]
) -> None:
    """Only files read now and recorded then are compared: a recorded file that is not read (the
    catalog row changed) says nothing about these pixels."""
    changes = [
        ContentChange(gdal_path_of(archive_root, product_path, member), digest, found[member])
        for member, digest in sorted(recorded.items())
        if member in found and found[member] != digest
    ]
    if changes:
        raise TileError("; ".join(c.describe() for c in changes))


@dataclass(frozen=True)
class Impossible:
    """What :func:`mask_impossible` found: pixels and values outside the sensor's physical range."""

    pixels: int
    """Pixels with such a value in at least one kept band."""
    per_layer: dict[int, int]
    """1-based product layer -> values found in it (bands with none left out)."""

    def tile_faults(self) -> dict[str, int]:
        if not self.pixels:
            return {}
        return {"impossible_pixels": self.pixels, "impossible_values": sum(self.per_layer.values())}

    def band_faults(self) -> dict[str, int]:
        return {f"impossible_values_band_{layer}": n for layer, n in sorted(self.per_layer.items())}


def mask_impossible(data: np.ndarray, layers: np.ndarray, sensor: Sensor) -> Impossible:
    """Set to nodata, in place, every value of ``data`` (kept bands, int16 reflectance x 10000)
    outside ``sensor.reflectance_min`` .. ``reflectance_max``, nodata aside; ``layers``: the
    0-based product layer of each band. A band at a time, so the temporaries stay one band big."""
    low, high = sensor.reflectance_min, sensor.reflectance_max
    flagged = np.zeros(data.shape[1:], dtype=bool)
    per_layer = {}
    for b, layer in enumerate(layers):
        band = data[b]
        bad = ((band < low) & (band != NODATA)) | (band > high)
        n = int(np.count_nonzero(bad))
        if n:
            per_layer[int(layer) + 1] = n
            band[bad] = NODATA
            flagged |= bad
    return Impossible(int(np.count_nonzero(flagged)) if per_layer else 0, per_layer)


def _refuse_damaged(found: Impossible, n_pixels: int, limit: float, sensor: Sensor, image: str) -> None:
    share = found.pixels / max(n_pixels, 1)
    if share > limit:
        worst = sorted(found.per_layer, key=found.per_layer.get, reverse=True)[:3]
        raise TileError(
            f"{image}: {share:.1%} of the tile's pixels ({found.pixels:,} of {n_pixels:,}) hold physically "
            f"impossible reflectance (below {sensor.reflectance_min} or above {sensor.reflectance_max}, "
            f"reflectance x {sensor.reflectance_scale}) in some band, over the limit of {limit:.1%} "
            f"(most in layers {', '.join(map(str, worst))}): the file is damaged; restore it from the "
            "delivery"
        )


def _check_against_row(ds, row: dict, image: str) -> None:
    epsg = ds.crs.to_epsg() if ds.crs else None
    problems = []
    if (ds.width, ds.height) != (row["width"], row["height"]):
        problems.append(f"is {ds.width} x {ds.height} px, the catalog says {row['width']} x {row['height']}")
    if epsg != row["epsg"]:
        problems.append(f"is in EPSG:{epsg}, the catalog says EPSG:{row['epsg']}")
    if ds.count != row["n_bands"]:
        problems.append(f"has {ds.count} bands, the catalog says {row['n_bands']}")
    t = ds.transform
    if (
        abs(t.c - row["grid_x0"]) > 1e-6
        or abs(t.f - row["grid_y0"]) > 1e-6
        or abs(t.a - row["pixel_size"]) > 1e-9
    ):
        problems.append(
            f"has origin ({t.c}, {t.f}) and {t.a} m pixels, the catalog says "
            f"({row['grid_x0']}, {row['grid_y0']}) and {row['pixel_size']} m"
        )
    if problems:
        raise TileError(
            f"{image}: pixels disagree with the catalog (re-scan the archive): {'; '.join(problems)}"
        )


def to_int16(raw: np.ndarray) -> tuple[np.ndarray, dict[str, int]]:
    """Reflectance x 10000 as int16. Float products: NaN, infinities and values outside int16
    become nodata (their pixel is then masked, since any nodata band masks a pixel), counted by
    pixel in ``faults``."""
    if raw.dtype == np.int16:
        return raw, {}
    nodata = raw == NODATA
    non_finite = ~np.isfinite(raw)
    out_of_range = ~nodata & ~non_finite & (np.abs(raw) > INT16_MAX + 0.5)
    bad = non_finite | out_of_range
    faults = {
        "non_finite_pixels": int(non_finite.any(axis=0).sum()),
        "out_of_int16_pixels": int(out_of_range.any(axis=0).sum()),
    }
    data = np.rint(np.where(bad, NODATA, raw), out=None).astype(np.int16)
    return data, {k: v for k, v in faults.items() if v}
