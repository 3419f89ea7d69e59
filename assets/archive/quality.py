"""Per-tile quality: what the QL masks say about a tile, checked against its METADATA.XML, and a
quicklook.

The catalog trusts the cover percentages DLR wrote into METADATA.XML. This step reads the masks
themselves (a few MB of uint8 per tile) and a decimated RGB of the image, so that a tile whose
masks disagree with its metadata, or whose swath is mostly empty, is visible per partition in
the UI before the patch stage spends a full read on it.
"""

from __future__ import annotations

import io
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import rasterio
from rasterio.enums import Resampling

from assets.archive.sources import gdal_env, gdal_path_of
from assets.atomic_files import write_bytes, write_text
from storage_schemas.catalog import COVER_COLUMNS
from storage_schemas.enmap_product import NODATA, QUALITY_CLASS_BACKGROUND
from storage_schemas.sensors import ENMAP, Sensor

QUICKLOOK_PX = 128
THUMBNAIL_PX = 48
"""Side of the quicklook shown inline in a partition's metadata: it lives in the event log once
per tile, so it stays a few kB; the full quicklook is a file beside it."""
QUICKLOOK_FILE = "quicklook.png"
PATCHES_QUICKLOOK_FILE = "patches_quicklook.png"
"""The tile_patches step's quicklook of the kept bands, in the same folder."""
RGB_NM = (640.0, 550.0, 460.0)
MASK_OF_COVER = {
    "cloud_cover": "cloud",
    "haze_cover": "haze",
    "cirrus_cover": "cirrus",
    "snow_cover": "snow",
    "cloud_shadow_cover": "cloud_shadow",
}
assert set(MASK_OF_COVER) == set(COVER_COLUMNS)


@dataclass(frozen=True)
class TileQuality:
    tile_id: str
    valid_fraction: float
    """Share of the raster inside the swath (the rest is nodata by design)."""
    measured: dict[str, float | None]
    """Cover percentages measured on the QL masks, over valid pixels; None where a mask is absent."""
    declared: dict[str, float | None]
    """The same percentages as METADATA.XML declares them."""
    max_cover_difference: float
    quicklook_png: bytes
    thumbnail_png: bytes

    def summary(self) -> dict:
        out = asdict(self)
        out.pop("quicklook_png")
        out.pop("thumbnail_png")
        return out


QUALITY_INPUTS = ["tile_id", "product_path", "files", "wavelength_nm", *COVER_COLUMNS]
"""The catalog columns :func:`inspect_tile` reads."""


def inspect_or_explain(archive_root: Path, row: dict, sensor: Sensor = ENMAP) -> TileQuality | str:
    """:func:`inspect_tile`, or the reason it failed: one unreadable tile must not sink the
    other tiles of a run."""
    try:
        return inspect_tile(archive_root, row, sensor)
    except Exception as exc:
        return f"{row['product_path']}: {type(exc).__name__}: {exc}"


def inspect_tile(archive_root: Path, row: dict, sensor: Sensor = ENMAP) -> TileQuality:
    """Measure one catalog row's masks (where ``sensor`` keeps them) and render its quicklook."""
    files = json.loads(row["files"])
    with gdal_env():
        with rasterio.open(gdal_path_of(archive_root, row["product_path"], files["image"])) as ds:
            wavelengths = np.asarray(row["wavelength_nm"])
            bands = [int(np.argmin(np.abs(wavelengths - nm))) + 1 for nm in RGB_NM]
            scale = max(ds.width, ds.height) / QUICKLOOK_PX
            shape = (3, max(1, round(ds.height / scale)), max(1, round(ds.width / scale)))
            rgb = ds.read(bands, out_shape=shape, resampling=Resampling.nearest)
        masks: dict[str, np.ndarray] = {}
        for kind in ("classes", *MASK_OF_COVER.values()):
            source = sensor.masks.get(kind)
            if source is not None and source.file_kind in files:
                member = files[source.file_kind]
                with rasterio.open(gdal_path_of(archive_root, row["product_path"], member)) as ds:
                    masks[kind] = ds.read(source.band)
    valid = masks["classes"] != QUALITY_CLASS_BACKGROUND if "classes" in masks else None
    n_valid = int(valid.sum()) if valid is not None else 0
    measured: dict[str, float | None] = {}
    for cover, kind in MASK_OF_COVER.items():
        mask = masks.get(kind)
        if mask is None or valid is None or n_valid == 0:
            measured[cover] = None
        else:
            measured[cover] = round(100.0 * float(np.count_nonzero(mask[valid])) / n_valid, 2)
    declared = {c: (None if row[c] is None or np.isnan(row[c]) else float(row[c])) for c in MASK_OF_COVER}
    diffs = [
        abs(measured[c] - declared[c])
        for c in MASK_OF_COVER
        if measured[c] is not None and declared[c] is not None
    ]
    return TileQuality(
        tile_id=row["tile_id"],
        valid_fraction=round(n_valid / valid.size, 4) if valid is not None else float("nan"),
        measured=measured,
        declared=declared,
        max_cover_difference=round(max(diffs), 2) if diffs else 0.0,
        quicklook_png=quicklook_png(rgb),
        thumbnail_png=quicklook_png(decimate(rgb, THUMBNAIL_PX)),
    )


def decimate(image: np.ndarray, side_px: int) -> np.ndarray:
    """Every n-th pixel of a (band, y, x) array so that its longer side is about ``side_px``."""
    step = max(1, max(image.shape[1:]) // side_px)
    return image[:, ::step, ::step]


def quicklook_png(rgb: np.ndarray) -> bytes:
    """A 2-98% stretched true-colour PNG of a (3, y, x) reflectance array; nodata is black."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    valid = (rgb != NODATA).all(axis=0)
    image = np.zeros((*rgb.shape[1:], 3), dtype=np.float32)
    if valid.any():
        for i in range(3):
            band = rgb[i].astype(np.float32)
            lo, hi = np.percentile(band[valid], (2, 98))
            image[..., i] = np.clip((band - lo) / max(hi - lo, 1.0), 0.0, 1.0)
        image[~valid] = 0.0
    buffer = io.BytesIO()
    plt.imsave(buffer, image, format="png")
    return buffer.getvalue()


def write_tile_quality(out_dir: Path, quality: TileQuality) -> Path:
    """Write ``quality.json`` and ``quicklook.png`` for one tile, each atomically and durably (a
    reader sees the old file or the new one, never half of one); returns the folder."""
    folder = out_dir / quality.tile_id
    write_bytes(folder / QUICKLOOK_FILE, quality.quicklook_png)
    write_text(folder / "quality.json", json.dumps(quality.summary(), indent=2, sort_keys=True))
    return folder
