"""Pictures of a label dataset: class distribution per split (the paper's Figures 18-21) and a few
image-mask pairs (Figures 4 and 5).

Image-mask pairs show the patch in true colour (the bands nearest 640, 550 and 470 nm, 2-98%
stretch) beside its mask coloured by class; a multi-label (CORINE) sample shows its 100 m classes
the same way, with the multi-hot label as the title. Which samples are shown is a function of
their ids, so the same dataset gives the same picture.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from assets.atomic_files import replace_atomically
from assets.patches.release_figures import _png, _pyplot, percentile_stretch
from storage_schemas.enmap_product import NODATA
from storage_schemas.label_classes import ClassMap
from storage_schemas.label_dataset import SPLIT_NAMES

TRUE_COLOUR_NM = (640.0, 550.0, 470.0)
PAIRS = 4


def class_distribution_png(counts: pd.DataFrame, title: str, unit: str, width_px: int = 900) -> bytes:
    """Horizontal bars per class, one colour per split (``counts``: class x split)."""
    plt = _pyplot()
    n = len(counts)
    fig, ax = plt.subplots(figsize=(width_px / 100, 1.2 + 0.28 * n), dpi=100)
    left = np.zeros(n)
    for split, colour in zip(SPLIT_NAMES, ("#4c72b0", "#dd8452", "#55a868"), strict=True):
        values = counts[split].to_numpy(dtype=float) if split in counts else np.zeros(n)
        ax.barh(np.arange(n), values, left=left, color=colour, label=split)
        left += values
    ax.set_yticks(np.arange(n), [_short(c) for c in counts.index], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel(unit)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return _png(fig)


def write_figures(folder: Path, figures: Mapping[str, bytes]) -> dict[str, Path]:
    """Each figure as ``<folder>/<name>.png``, written atomically (the UI may be showing the previous
    build's); returns ``name -> path``."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {name: folder / f"{name}.png" for name in figures}
    for name, png in figures.items():
        replace_atomically(paths[name], lambda tmp, png=png: Path(tmp).write_bytes(png))
    return paths


def pick_pairs(sample_ids: pd.Series, n: int = PAIRS) -> list[int]:
    """Row numbers of ``n`` samples, chosen by a hash of their ids."""
    keys = [hashlib.blake2b(s.encode(), digest_size=8).digest() for s in sample_ids]
    return sorted(np.argsort(keys, kind="stable")[:n].tolist())


def image_mask_pairs_png(
    images: np.ndarray,
    masks: np.ndarray,
    class_map: ClassMap,
    wavelength_nm: np.ndarray,
    titles: list[str],
    width_px: int = 640,
) -> bytes:
    """``images`` (n, band, y, x) int16 and ``masks`` (n, y, x) of label-product codes (as the
    dataset stores them: CORINE as 3-digit CLC) as rows of image | mask."""
    plt = _pyplot()
    rgb_bands = [int(np.argmin(np.abs(np.asarray(wavelength_nm) - w))) for w in TRUE_COLOUR_NM]
    cmap = plt.get_cmap("tab20", class_map.num_classes)
    rows = len(images)
    fig, axes = plt.subplots(rows, 2, figsize=(width_px / 100, width_px / 200 * rows), dpi=100, squeeze=False)
    for i in range(rows):
        rgb = images[i, rgb_bands].astype(np.float32)
        valid = (images[i, rgb_bands] != NODATA).all(axis=0)
        picture = np.stack([percentile_stretch(band, valid) for band in rgb], axis=-1)
        classes, _ = class_map.to_indexes(masks[i].astype(np.int64))
        shown = np.ma.masked_where((masks[i] == 0) | (classes < 0), classes)
        axes[i, 0].imshow(picture)
        axes[i, 1].imshow(shown, cmap=cmap, vmin=0, vmax=class_map.num_classes - 1, interpolation="nearest")
        axes[i, 0].set_title(titles[i], fontsize=6, loc="left")
        for ax in axes[i]:
            ax.set_axis_off()
    fig.tight_layout()
    return _png(fig)


def _short(name: str, limit: int = 38) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "…"
