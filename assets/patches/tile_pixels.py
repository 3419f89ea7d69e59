"""Read one tile's pixels once, whole, checked against its catalog row.

The patch step reads each SPECTRAL_IMAGE in one call for the kept bands (band-sequential files
make that one sequential read per band), not window by window: a tile has up to ~50 windows and
per-window reads cost a GDAL block walk each. The three QL masks the recipe cleans with (cloud,
cloud shadow, haze) come along at full resolution, a few MB of uint8.

Everything a product can get wrong at this point (pixels that disagree with the catalog, a band
table the store cannot hold, float pixels that are NaN, infinite or outside int16) becomes a
:class:`TileError` naming the file, or a counted, masked pixel fault; never a crash of the run.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rasterio
from rasterio.errors import RasterioError
from rasterio.io import DatasetReader, MemoryFile

from assets.archive.reader import GDAL_OPTIONS, REQUIRED_MASKS
from assets.archive.sources import gdal_path_of, is_in_zip, open_zip_member
from assets.patches.store import StoreBands
from storage_schemas.band_filter import BandFilter
from storage_schemas.enmap_product import NODATA
from storage_schemas.sensors import ENMAP, Sensor

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
def open_raster(archive_root: Path, product_path: str, member: str) -> Iterator[DatasetReader]:
    """Open a product raster for one whole read. A deflated ZIP member is inflated once into
    memory: GDAL's /vsizip/ would re-inflate from the start for every band it seeks to (a 600 px
    tile took 25 s that way, 0.5 s this way). Files in folders and stored members open in place."""
    path = gdal_path_of(archive_root, product_path, member)
    if is_in_zip(product_path):
        with open_zip_member(archive_root, product_path, member) as (info, stream):
            if info.compress_type != zipfile.ZIP_STORED:
                with MemoryFile(stream.read()) as memory, memory.open() as ds:
                    yield ds
                return
    with rasterio.open(path) as ds:
        yield ds


def read_tile(
    archive_root: Path, row: dict, bands: StoreBands, band_filter: BandFilter, sensor: Sensor = ENMAP
) -> TilePixels:
    """The kept bands and the cleaning masks of one catalog row, checked against the row; the
    masks from where ``sensor`` keeps them (EnMAP: a QL file each; DESIS: layers of QUALITY.tif)."""
    files = json.loads(row["files"])
    image = gdal_path_of(archive_root, row["product_path"], files["image"])
    kept = band_indexes(row, bands, band_filter, image)
    try:
        with rasterio.Env(**GDAL_OPTIONS):
            with open_raster(archive_root, row["product_path"], files["image"]) as ds:
                _check_against_row(ds, row, image)
                raw = ds.read([int(i) + 1 for i in kept])
            masks = {}
            for kind in REQUIRED_MASKS:
                source = sensor.masks[kind]
                member = files[source.file_kind]
                path = gdal_path_of(archive_root, row["product_path"], member)
                with open_raster(archive_root, row["product_path"], member) as ds:
                    if (ds.width, ds.height) != (row["width"], row["height"]):
                        raise TileError(
                            f"{path}: mask is {ds.width} x {ds.height} px, the image {row['width']} x "
                            f"{row['height']}"
                        )
                    masks[kind] = ds.read(source.band) > 0
    except (RasterioError, OSError, zipfile.BadZipFile, KeyError) as exc:
        raise TileError(f"{image}: unreadable: {exc}") from None
    data, faults = to_int16(raw)
    return TilePixels(
        data,
        masks,
        int(row["epsg"]),
        float(row["grid_x0"]),
        float(row["grid_y0"]),
        float(row["pixel_size"]),
        bands.wavelength_nm,
        faults,
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
