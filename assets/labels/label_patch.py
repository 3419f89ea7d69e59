"""One patch's label from one label product: aligned codes, classes, and why it may be left out.

The mask keeps the label product's own codes (the published SpectralEarth layout stores CDL and
NLCD codes and CORINE 3-digit codes, and that code maps them on load); the class indexes and the
multi-hot vector come from the product's class map. Codes the map does not know are counted and
never become a class. The source's nodata and the area outside it are unlabelled; below the
product's minimum labelled fraction the patch is left out with that reason.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import rasterio

from assets.labels.align import UNLABELLED, align_to_patch
from storage_schemas.label_classes import corine_to_clc, detect_corine_convention
from storage_schemas.label_products import LabelProduct, class_map_of

NO_CODE = 0
"""Mask value of unlabelled pixels in the stored and exported masks (no product uses 0 as a class:
CDL 0 is background, NLCD 0 is nodata, CORINE has no code 0)."""


@dataclass
class PatchLabel:
    mask: np.ndarray
    """(128, 128) uint16 label-product codes (3-digit CLC for CORINE), NO_CODE where unlabelled."""
    classes: np.ndarray
    """(128, 128) int16 class indexes (segmentation) or the multi-hot bool vector (multilabel)."""
    labelled_fraction: float
    unknown_codes: int
    left_out: str = ""
    """Why the patch is not in the dataset, or empty."""


def label_patch(
    ds: rasterio.DatasetReader, product: LabelProduct, epsg: int, x0: float, y0: float, convention: str = ""
) -> PatchLabel:
    """``convention``: for CORINE, ``grid`` or ``clc`` as detected once per source file."""
    aligned = align_to_patch(ds, epsg, x0, y0, oversample=product.oversample)
    labelled = aligned.codes != UNLABELLED
    codes = np.where(labelled, aligned.codes, NO_CODE)
    present = aligned.present
    if product.source == "corine":
        codes = np.where(labelled, corine_to_clc(codes, convention), NO_CODE)
        present = corine_to_clc(present, convention)
        labelled &= codes != NO_CODE
        present = present[present != NO_CODE]
    class_map = class_map_of(product)
    if product.task == "multilabel":
        classes, unknown = class_map.multi_hot(present)
    else:
        classes, unknown = class_map.to_indexes(np.where(labelled, codes, _first_known(class_map)))
        classes = np.where(labelled, classes, class_map.fill_index).astype(np.int16)
    fraction = float(labelled.mean())
    left_out = ""
    if fraction < product.min_labelled_fraction:
        left_out = f"labelled {fraction:.0%} < {product.min_labelled_fraction:.0%} of the patch"
    elif product.task == "multilabel" and not classes.any():
        left_out = "no class of the map in the patch"
    return PatchLabel(codes.astype(np.uint16), classes, fraction, int(unknown), left_out)


def source_convention(ds: rasterio.DatasetReader, product: LabelProduct) -> str:
    """The code convention of a CORINE source, read from a decimated view of the whole file."""
    if product.source != "corine":
        return ""
    if product.code_convention != "detect":
        return product.code_convention
    step = max(1, max(ds.width, ds.height) // 1024)
    values = ds.read(1, out_shape=(max(1, ds.height // step), max(1, ds.width // step)))
    if ds.nodata is not None:
        values = values[values != ds.nodata]
    return detect_corine_convention(values)


def _first_known(class_map) -> int:
    """A code that maps without counting as unknown, to stand in for unlabelled pixels."""
    return int(min(class_map.source_codes_known))
