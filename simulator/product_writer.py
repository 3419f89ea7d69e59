"""Write one simulated product: SPECTRAL_IMAGE, quality masks, quicklooks and METADATA.XML, then
package it as a folder, a ``<name>.ZIP``, or a ZIP staged for a delivery.

Files are written into ``<archive>/.staging/<name>/`` (the scanner skips dot-folders) and moved
or zipped into place only when complete, so a scan running beside the simulator never sees half
a product. Every file gets the product's processing time as its mtime and as the TIFF
``DateTime``, and ZIP members get it as their timestamp: the same seed gives the same bytes.

The formats follow DLR's: SPECTRAL_IMAGE is an uncompressed band-sequential int16 GeoTIFF with
nodata -32768; the QL masks are uint8 on the same grid; QL_PIXELMASK has one 1-bit layer per
band (NBITS=1, which is why the real one is 37 MB for 1128 x 1212 px); QL_VNIR and QL_SWIR are
uint8 RGB quicklooks from the bands METADATA.XML names.

DESIS-like products (``ProductSpec.mission`` = ``DESIS_MISSION``) share the image, the scene and
the packaging, and differ in names and ancillary files: one QUALITY.tif with a layer per flag
(the layer order of ``storage_schemas.sensors.DESIS_MASKS``, an assumption) and one RGB
QL_IMAGE.tif; no pixel mask.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.windows import Window

from simulator import faults as fault_kinds
from simulator.acquisitions import ENMAP_MISSION, PIXEL_SIZE_M, Mission, Tile
from simulator.metadata_writer import (
    ORBIT_SECONDS,
    SIMULATED_COMMENT,
    MetadataContent,
    metadata_xml,
)
from simulator.packaging import write_product_zip, zip_time
from simulator.scene import SceneResult, render_scene
from simulator.spectra import spectral_library
from storage_schemas.enmap_product import NODATA
from storage_schemas.sensors import DESIS, ENMAP, Sensor

FOLDER = "folder"
ZIP = "zip"
DELIVERY = "delivery"
STAGING = ".staging"
"""Dot-folder under the archive where products are written before they appear."""
_GDAL_ENV = {"GDAL_PAM_ENABLED": "NO", "GDAL_NUM_THREADS": "1"}
"""No ``.aux.xml`` side files: everything goes into the GeoTIFF itself."""


@dataclass(frozen=True)
class DatatakeInfo:
    """The strip a tile belongs to, for ``spatialCoverageOfDatatake`` and the orbit section."""

    corner_lon: tuple[float, float, float, float]
    corner_lat: tuple[float, float, float, float]
    center_lon: float
    center_lat: float
    start: np.datetime64
    stop: np.datetime64


@dataclass(frozen=True)
class ProductSpec:
    """Everything a worker needs to write one product, independent of the other products."""

    tile: Tile
    name: str
    level: str
    folder: str
    """Archive-relative folder of the container: ``YYYY/MM`` or ``deliveries``."""
    packaging: str
    product_path: str
    """The catalog's ``product_path`` of the product (archive-relative, ``!/`` into ZIPs)."""
    targets: dict[str, float]
    datatake: DatatakeInfo
    seed: int
    fault: str | None = None
    mission: Mission = ENMAP_MISSION


@dataclass(frozen=True)
class WrittenProduct:
    spec: ProductSpec
    container: Path
    """The folder or ZIP written (for a delivery: the product ZIP staged for it)."""
    covers: dict[str, float]
    file_sizes: dict[str, int]
    extra: dict[str, str] = field(default_factory=dict)
    """Further copies written (archive-relative path) -> the product path they copy."""
    endmembers: str = ""


def file_names(name: str, sensor: Sensor = ENMAP) -> dict[str, str]:
    """File kind -> file name of every file of a product, as the catalog's ``files`` column."""
    return sensor.file_names(name)


def _stamp(when: np.datetime64) -> str:
    return np.datetime_as_string(np.datetime64(when, "s")).replace("-", ":").replace("T", " ")


def _profile(tile: Tile, count: int, dtype: str, **extra) -> dict:
    return {
        "driver": "GTiff",
        "dtype": dtype,
        "count": count,
        "width": tile.width,
        "height": tile.height,
        "crs": CRS.from_epsg(tile.epsg),
        "transform": Affine(PIXEL_SIZE_M, 0.0, tile.grid_x0, 0.0, -PIXEL_SIZE_M, tile.grid_y0),
        "tiled": False,
        **extra,
    }


def _common_tags(tile: Tile, what: str, sensor: Sensor) -> dict[str, str]:
    return {
        "TIFFTAG_DATETIME": _stamp(tile.processed),
        "TIFFTAG_SOFTWARE": "SpectralForge archive simulator",
        "TIFFTAG_IMAGEDESCRIPTION": f"{sensor.mission} L2A {what}; {SIMULATED_COMMENT}",
        "SIMULATED": SIMULATED_COMMENT,
    }


def _write_small(
    path: Path, tile: Tile, data: np.ndarray, what: str, sensor: Sensor = ENMAP, **extra
) -> None:
    """A uint8 raster on the product grid, written in one go."""
    if data.ndim == 2:
        data = data[None]
    with rasterio.open(path, "w", **_profile(tile, data.shape[0], "uint8", **extra)) as dst:
        dst.update_tags(**_common_tags(tile, what, sensor))
        dst.write(data)


def _write_pixelmask(path: Path, tile: Tile, n_bands: int, rng: np.random.Generator) -> None:
    """One 1-bit layer per band; a few dead detector columns in two random bands."""
    dead_bands = sorted(rng.choice(n_bands, size=2, replace=False).tolist())
    dead_columns = rng.integers(0, tile.width, (2, 2))
    per_chunk = max(1, (64 << 20) // (tile.width * tile.height))  # at most 64 MB of layers at once
    with rasterio.open(path, "w", **_profile(tile, n_bands, "uint8", nbits=1, interleave="band")) as dst:
        dst.update_tags(**_common_tags(tile, "pixel mask (1 = defective), one layer per band", ENMAP))
        for first in range(0, n_bands, per_chunk):
            last = min(n_bands, first + per_chunk)
            layers = np.zeros((last - first, tile.height, tile.width), dtype=np.uint8)
            for band, columns in zip(dead_bands, dead_columns, strict=True):
                if first <= band < last:
                    layers[band - first][:, columns] = 1
            dst.write(layers, indexes=list(range(first + 1, last + 1)))


def write_product(archive: Path, spec: ProductSpec, realdata: Path | None) -> WrittenProduct:
    """Write one product under ``archive`` as ``spec`` says; returns what was written."""
    tile, name = spec.tile, spec.name
    staging = archive / STAGING / name
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    sensor = spec.mission.sensor
    bands = sensor.band_table()
    library = spectral_library(tuple(bands.wavelength_nm.tolist()), realdata)
    rng = np.random.default_rng([spec.seed, 0x4D455441, tile.index])  # "META", per product
    names = file_names(name, sensor)
    paths = {kind: staging / file for kind, file in names.items()}
    image_bands = len(bands) - (1 if spec.fault == fault_kinds.BAND_COUNT_MISMATCH else 0)

    with rasterio.Env(**_GDAL_ENV):
        profile = _profile(tile, image_bands, "int16", nodata=NODATA, interleave="band")
        with rasterio.open(paths["image"], "w", **profile) as dst:
            dst.update_tags(
                **_common_tags(tile, "surface reflectance x 10000", sensor),
                wavelength_units="Nanometers",
                endmembers=library.describe(),
            )
            for b in range(image_bands):
                wl, fwhm = float(bands.wavelength_nm[b]), float(bands.fwhm_nm[b])
                dst.set_band_description(b + 1, f"band {b + 1} ({wl:g} Nanometers)")
                dst.update_tags(b + 1, wavelength=f"{wl:g}", fwhm=f"{fwhm:g}", wavelength_units="Nanometers")

            def sink(row0: int, block: np.ndarray) -> None:
                window = Window(0, row0, tile.width, block.shape[1])
                dst.write(block[:image_bands], window=window)

            scene = render_scene(tile, library, spec.targets, spec.seed, sink, regions=spec.mission.regions)
        _ANCILLARY[sensor.name](paths, tile, scene, len(bands), rng)

    sizes = {paths[k].name: paths[k].stat().st_size for k in names if k != "metadata"}
    sizes[names["metadata"]] = ORBIT_SECONDS * 452 + len(bands) * 5150 + tile.tile_size * 200 + 60_000
    content = MetadataContent(
        name=name,
        level=spec.level,
        covers=scene.covers,
        water_cover=scene.water_cover,
        band_mean=scene.band_mean,
        band_std=scene.band_std,
        file_sizes=sizes,
        datatake_corner_lon=spec.datatake.corner_lon,
        datatake_corner_lat=spec.datatake.corner_lat,
        datatake_center_lon=spec.datatake.center_lon,
        datatake_center_lat=spec.datatake.center_lat,
        datatake_start=spec.datatake.start,
        datatake_stop=spec.datatake.stop,
        biome=scene.biome,
        endmembers=library.describe(),
    )
    xml = metadata_xml(tile, content, bands, rng, sensor)
    if spec.fault == fault_kinds.MALFORMED_XML:
        xml = fault_kinds.malform(xml)
    paths["metadata"].write_bytes(xml)
    if spec.fault == fault_kinds.TRUNCATED_IMAGE:
        fault_kinds.truncate_to_half(paths["image"])
    mtime = int(np.datetime64(tile.processed, "ns").astype(np.int64))
    for path in paths.values():
        os.utime(path, ns=(mtime, mtime))

    extra: dict[str, str] = {}
    when = zip_time(tile.processed)
    target_folder = archive / spec.folder
    target_folder.mkdir(parents=True, exist_ok=True)
    if spec.packaging == FOLDER:
        container = target_folder / name
        if container.exists():
            shutil.rmtree(container)
        os.replace(staging, container)
        os.utime(container, ns=(mtime, mtime))
        if spec.fault == fault_kinds.DUPLICATE:
            copy = target_folder / f"{name}.ZIP"
            write_product_zip(copy, name, paths_in(container), when)
            os.utime(copy, ns=(mtime, mtime))
            extra[f"{spec.folder}/{copy.name}"] = spec.product_path
    else:
        staged_zips = archive / STAGING / "zips"
        staged_zips.mkdir(parents=True, exist_ok=True)
        container = (target_folder if spec.packaging == ZIP else staged_zips) / f"{name}.ZIP"
        evil = {fault_kinds.EVIL_MEMBER: b"II*\x00"} if spec.fault == fault_kinds.ZIP_SLIP else None
        write_product_zip(container, name, paths.values(), when, extra=evil)
        os.utime(container, ns=(mtime, mtime))
        shutil.rmtree(staging)
    return WrittenProduct(spec, container, scene.covers, sizes, extra, library.describe())


def _enmap_ancillary(
    paths: dict[str, Path], tile: Tile, scene: SceneResult, n_bands: int, rng: np.random.Generator
) -> None:
    """EnMAP: one file per QL mask, the 1-bit pixel mask, VNIR and SWIR quicklooks."""
    for kind in ("cloud", "cloud_shadow", "haze", "snow", "cirrus"):
        _write_small(paths[kind], tile, scene.masks[kind], f"quality mask {kind} (1 = flagged)")
    _write_small(
        paths["classes"], tile, scene.masks["classes"], "quality classes (1 land, 2 water, 3 background)"
    )
    _write_pixelmask(paths["pixelmask"], tile, n_bands, rng)
    for kind, data in (
        ("quicklook_vnir", scene.quicklook_vnir),
        ("quicklook_swir", scene.quicklook_swir),
    ):
        _write_small(paths[kind], tile, data, kind.replace("_", " "), photometric="RGB", interleave="pixel")


def _desis_ancillary(
    paths: dict[str, Path], tile: Tile, scene: SceneResult, n_bands: int, rng: np.random.Generator
) -> None:
    """DESIS: QUALITY.tif with one layer per flag in the sensor's layer order, and QL_IMAGE.tif
    (a NIR-red-green composite of the VNIR quicklook bands, all DESIS has)."""
    sensor = DESIS
    order = sorted((s.band, kind) for kind, s in sensor.masks.items() if s.file_kind == "quality")
    layers = np.stack([scene.masks[kind] for _, kind in order])
    what = "quality layers (1 = flagged): " + ", ".join(kind for _, kind in order)
    _write_small(paths["quality"], tile, layers, what, sensor, interleave="band")
    _write_small(
        paths["quicklook"],
        tile,
        scene.quicklook_vnir,
        "quicklook",
        sensor,
        photometric="RGB",
        interleave="pixel",
    )


_ANCILLARY = {"enmap": _enmap_ancillary, "desis": _desis_ancillary}


def paths_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file())
