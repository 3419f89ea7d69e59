"""Export a release in the published SpectralEarth layout: ``DIR/enmap/<location_id>/<tile_id>.tif``.

Existing SpectralEarth code (and anything built on rasterio) reads one GeoTIFF per timestamp:
128 x 128 px, 202 bands, int16 reflectance x 10000, nodata -32768, with the patch's CRS and
transform. Band descriptions carry the wavelengths. Each file is written under a temporary name
and renamed, so an interrupted export never leaves a half file that looks whole; re-running it
rewrites the same bytes. Patches are read shard by shard (one shard read serves all its patches).
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import rasterio
from affine import Affine

from assets.atomic_files import replace_atomically
from assets.patches.release_publish import release_folder
from assets.patches.store import open_store
from storage_schemas.enmap_product import NODATA
from storage_schemas.patch_store import PATCHES_PER_SHARD, REFLECTANCE, transform_of
from storage_schemas.paths import DataLayout, readable
from storage_schemas.release import MANIFEST, PATCH_INDEX, STATISTICS

SENSOR_FOLDER = "enmap"


@dataclass(frozen=True)
class ExportSummary:
    version: str
    files: int
    out: Path


def patch_file(out: Path, location_id: str, tile_id: str) -> Path:
    return out / SENSOR_FOLDER / location_id / f"{tile_id}.tif"


def export_release(layout: DataLayout, version: str, out: Path, workers: int = 2) -> ExportSummary:
    folder = release_folder(layout, version)
    manifest = json.loads((folder / MANIFEST).read_text())
    index = pd.read_parquet(readable(folder / PATCH_INDEX))
    bands = pd.read_csv(folder / STATISTICS)
    reflectance = open_store(layout.root / manifest["store"])[REFLECTANCE]
    descriptions = band_descriptions(bands["band"], bands["wavelength_nm"])
    shards = index.assign(shard=index["slot"] // PATCHES_PER_SHARD).groupby("shard")

    def export_shard(item: tuple[int, pd.DataFrame]) -> int:
        shard, rows = item
        first = int(shard) * PATCHES_PER_SHARD
        block = reflectance[first : first + PATCHES_PER_SHARD]
        for row in rows.itertuples():
            path = patch_file(out, row.location_id, row.tile_id)
            write_patch_tiff(path, block[row.slot - first], int(row.epsg), row.x0, row.y0, descriptions)
        return len(rows)

    with ThreadPoolExecutor(max(workers, 1)) as pool:
        files = sum(pool.map(export_shard, shards))
    (out / "release.json").write_text(json.dumps({"release": manifest["version"], "files": files}, indent=2))
    return ExportSummary(manifest["version"], files, out)


def band_descriptions(layers, wavelength_nm) -> list[str]:
    """GeoTIFF band descriptions that carry each band's product layer and centre wavelength."""
    return [f"band {b}: {w:.2f} nm" for b, w in zip(layers, wavelength_nm, strict=True)]


def write_patch_tiff(
    path: Path,
    pixels: np.ndarray,
    epsg: int,
    x0: float,
    y0: float,
    descriptions: list[str],
    nodata: int = NODATA,
) -> None:
    """One patch (bands, y, x) as an uncompressed band-sequential GeoTIFF of its own dtype, on the
    patch grid, written atomically (images: int16 with NODATA; label masks: their codes, 0)."""
    profile = {
        "driver": "GTiff",
        "width": pixels.shape[2],
        "height": pixels.shape[1],
        "count": pixels.shape[0],
        "dtype": pixels.dtype.name,
        "crs": f"EPSG:{epsg}",
        "transform": Affine(*transform_of(x0, y0)),
        "nodata": nodata,
        "interleave": "band",
    }

    def write(tmp: str) -> None:
        with rasterio.open(tmp, "w", **profile) as dst:
            dst.write(pixels)
            for i, text in enumerate(descriptions, start=1):
                dst.set_band_description(i, text)

    replace_atomically(path, write)
