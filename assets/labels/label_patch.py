"""One patch's label from one label source file: aligned codes, classes, and why it may be left out.

The mask keeps the label product's own codes (the published SpectralEarth layout stores CDL and
NLCD codes and CORINE 3-digit codes, and that code maps them on load); the class indexes and the
multi-hot vector come from the product's class map. A CORINE file's values become 3-digit codes
through the file's value attribute table or the CLC legend (``source_convention``). Codes that
neither the conversion nor the map knows are counted and named, and never become a class; the
source's nodata, the published no-data values and the area outside the file are unlabelled, never
an error. Below the product's minimum labelled fraction the patch is left out with that reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio

from assets.labels.align import UNLABELLED, LabelSourceError, align_to_patch
from assets.labels.corine_vat import check_raster_against_vat, read_vat, vat_beside
from assets.labels.vector_labels import VectorLabels
from storage_schemas.label_classes import CorineCodes, detect_corine_convention
from storage_schemas.label_products import LabelProduct, class_map_of
from storage_schemas.plan import PATCH_PX

NO_CODE = 0
"""Mask value of unlabelled pixels in the stored and exported masks (no product uses 0 as a class:
CDL 0 is background, NLCD 0 is nodata, CORINE has no code 0)."""
DETECTION_PX = 1024
"""Convention and value-table checks look at a view of the whole file this many pixels wide."""


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
    unknown_values: tuple[int, ...] = ()
    """The source values behind ``unknown_codes`` (and unknown values among the cells present)."""
    source: str = ""
    """The source file it was labelled from (its name under the label-source root)."""


def label_patch(
    source: rasterio.DatasetReader | VectorLabels,
    product: LabelProduct,
    epsg: int,
    x0: float,
    y0: float,
    convention: CorineCodes | None = None,
) -> PatchLabel:
    """``convention``: for CORINE, the file's conversion to CLC codes (``source_convention``)."""
    aligned = align_to_patch(source, epsg, x0, y0, presence=product.task == "multilabel")
    labelled = aligned.codes != UNLABELLED
    codes, present = aligned.codes, aligned.present
    unknown_values: set[int] = set()
    unknown = 0
    if convention is not None:
        codes, outside = convention.convert(np.where(labelled, codes, NO_CODE))
        outside &= labelled
        present, present_outside = convention.convert(aligned.present)
        unknown_values = {*aligned.codes[outside].tolist(), *aligned.present[present_outside].tolist()}
        unknown = int(outside.sum())
        labelled &= codes != NO_CODE
        present = present[present != NO_CODE]
    codes = np.where(labelled, codes, NO_CODE)
    class_map = class_map_of(product)
    if product.task == "multilabel":
        classes, by_map = class_map.multi_hot(present)
        seen = present
    else:
        classes, by_map = class_map.to_indexes(np.where(labelled, codes, _first_known(class_map)))
        classes = np.where(labelled, classes, class_map.fill_index).astype(np.int16)
        seen = codes[labelled]
    if by_map:
        known = class_map.source_codes_known
        unknown_values |= {v for v in np.unique(seen).tolist() if v not in known}
    fraction = float(labelled.mean())
    left_out = ""
    if fraction < product.min_labelled_fraction:
        left_out = f"labelled {fraction:.0%} < {product.min_labelled_fraction:.0%} of the patch"
    elif product.task == "multilabel" and not classes.any():
        left_out = "no class of the map in the patch"
    return PatchLabel(
        codes.astype(np.uint16),
        classes,
        fraction,
        unknown + int(by_map),
        left_out,
        tuple(sorted(unknown_values)),
    )


def unlabelled(product: LabelProduct, reason: str) -> PatchLabel:
    """The label of a patch no source file could label, left out for ``reason``."""
    class_map = class_map_of(product)
    mask = np.full((PATCH_PX, PATCH_PX), NO_CODE, dtype=np.uint16)
    if product.task == "multilabel":
        classes = np.zeros(class_map.num_classes, dtype=bool)
    else:
        classes = np.full((PATCH_PX, PATCH_PX), class_map.fill_index, dtype=np.int16)
    return PatchLabel(mask, classes, 0.0, 0, reason)


def source_convention(
    source: rasterio.DatasetReader | VectorLabels, product: LabelProduct
) -> CorineCodes | None:
    """How a CORINE file's values become 3-digit CLC codes (None for other products): the value
    attribute table beside a raster, checked against a decimated view of the whole file, else
    the CLC legend of the product's convention, or of the one detected on that view."""
    if product.source != "corine":
        return None
    if isinstance(source, VectorLabels):
        path, nodata, values, vat = source.path, None, source.codes, None
    else:
        path = Path(source.name)
        nodata = None if source.nodata is None else int(source.nodata)
        step = max(1, max(source.width, source.height) // DETECTION_PX)
        shape = (max(1, source.height // step), max(1, source.width // step))
        values = source.read(1, out_shape=shape).ravel()
        vat = vat_beside(path)
    if nodata is not None:
        values = values[values != nodata]
    if vat is not None:
        codes = read_vat(vat, nodata)
        check_raster_against_vat(vat, path, codes, values)
        return codes
    if product.code_convention != "detect":
        return CorineCodes.legend(product.code_convention, nodata)
    try:
        return CorineCodes.legend(detect_corine_convention(values), nodata)
    except ValueError as exc:
        raise LabelSourceError(f"{path}: {exc}") from None


def _first_known(class_map) -> int:
    """A code that maps without counting as unknown, to stand in for unlabelled pixels."""
    return int(min(class_map.source_codes_known))
