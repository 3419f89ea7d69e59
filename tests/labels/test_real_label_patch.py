"""A patch's label from the real CORINE and NLCD samples, through the products' class maps."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import rasterio

from assets.labels.label_patch import NO_CODE, label_patch, source_convention
from storage_schemas.label_classes import CLASS_MAPS, CLC_CODES
from storage_schemas.label_products import LABEL_PRODUCTS
from tests.labels.real_samples import SAMPLES, window_at


def test_real_corine_patch_gets_clc_codes_and_a_multi_hot_label(realdata):
    product = LABEL_PRODUCTS["enmap_corine"]
    path, epsg = SAMPLES["corine"]
    with rasterio.open(realdata / path) as ds:
        convention = source_convention(ds, product)
        label = label_patch(ds, product, epsg, *window_at(ds, epsg), convention=convention)
    assert convention.convention == "grid"
    assert set(np.unique(label.mask)) <= set(CLC_CODES)
    expected, unknown = CLASS_MAPS["corine"].multi_hot(np.unique(label.mask))
    assert label.classes.dtype == bool and label.classes.sum() >= expected.sum() >= 1
    assert (label.classes | expected == label.classes).all()  # cells under no pixel centre only add
    assert label.unknown_codes == 0 == unknown and label.left_out == ""


def test_real_nlcd_patch_keeps_nlcd_codes_and_maps_classes(realdata):
    product = LABEL_PRODUCTS["enmap_nlcd"]
    path, epsg = SAMPLES["nlcd"]
    with rasterio.open(realdata / path) as ds:
        label = label_patch(ds, product, epsg, *window_at(ds, epsg))
    nlcd = CLASS_MAPS["nlcd"]
    assert label.labelled_fraction == 1.0 and label.left_out == ""
    expected, _ = nlcd.to_indexes(label.mask)
    assert np.array_equal(label.classes, expected)
    forest = label.mask == 41
    assert forest.any() and (label.classes[forest] == 6).all()  # 41 Deciduous Forest is the 7th class


def test_real_patch_half_outside_the_source_is_left_out_with_the_reason(realdata):
    product = replace(LABEL_PRODUCTS["enmap_nlcd"], min_labelled_fraction=0.9)
    path, epsg = SAMPLES["nlcd"]
    with rasterio.open(realdata / path) as ds:
        label = label_patch(ds, product, epsg, *window_at(ds, epsg, x_m=ds.bounds.left))
    assert 0.3 < label.labelled_fraction < 0.7
    assert "labelled" in label.left_out and "< 90%" in label.left_out
    assert (label.mask[:, 0] == NO_CODE).all()
    assert (label.classes[:, 0] == CLASS_MAPS["nlcd"].fill_index).all()
