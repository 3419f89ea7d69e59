"""Label results streamed through the partial dataset: the batch size never changes a byte of the
dataset, rows come back in the order asked for, and a build that fails half-way leaves the
previous dataset as it was and nothing beside it."""

from __future__ import annotations

import numpy as np
import pytest
import zarr

from assets.labels.build import SplitSettings, build_label_dataset, class_counts
from assets.labels.partial_dataset import partial_dataset
from storage_schemas.label_dataset import CLASSES, MASK
from storage_schemas.label_products import class_map_of
from storage_schemas.release import LATEST
from tests.labels.rasters import release_index
from tests.labels.test_build import NLCD, _build, _nlcd_raster
from tests.patches.helpers import tree_digest


def test_batches_of_any_size_give_the_same_dataset(released, tmp_path):
    _nlcd_raster(released, release_index(released))
    split = SplitSettings(method="random")
    whole = _build(released, NLCD, split=split)
    assert len(whole.content.samples) >= 3, "the test needs several batches"
    batched = _build(released, NLCD, labels_dir=tmp_path / "batched", split=split, batch_patches=1)
    assert batched.version == whole.version
    assert tree_digest(batched.path) == tree_digest(whole.path)
    names = list(class_map_of(NLCD).classes)
    assert class_counts(batched.content, names).equals(class_counts(whole.content, names))
    classes = zarr.open_group(whole.path, mode="r")[CLASSES][:]
    pixels = np.bincount(classes[classes >= 0].ravel(), minlength=len(names))[: len(names)]
    assert (class_counts(whole.content, names).sum(axis=1).to_numpy() == pixels).all()
    assert sorted(p.name for p in (tmp_path / "batched").iterdir()) == [whole.path.name], "no scratch left"


def test_a_build_failing_half_way_leaves_the_previous_dataset_and_nothing_beside_it(released):
    _nlcd_raster(released, release_index(released))
    first = _build(released, NLCD)
    before = tree_digest(first.path)
    calls = []

    def failing(f, items):
        calls.append(len(items))
        if len(calls) > 1:
            raise RuntimeError("worker lost")
        return [f(i) for i in items]

    release = released.releases / (released.releases / LATEST).read_text().strip()
    with pytest.raises(RuntimeError, match="worker lost"):
        build_label_dataset(
            NLCD, release, released.store, released.label_sources, released.labels, failing, batch_patches=1
        )
    assert len(calls) == 2, "the failure came after a batch had been written"
    assert tree_digest(first.path) == before
    assert sorted(p.name for p in released.labels.iterdir()) == [first.path.name]


def test_row_views_read_the_rows_asked_for_in_that_order(tmp_path):
    final = tmp_path / "labels" / "x.zarr"
    with partial_dataset(final, 70, segmentation=True) as partial:
        masks = np.arange(70, dtype=np.uint16)[:, None, None] * np.ones((1, 128, 128), np.uint16)
        partial.write(0, masks[:40], -masks[:40].astype(np.int16))
        partial.write(40, masks[40:], -masks[40:].astype(np.int16))
        view = partial.rows(MASK, np.array([65, 2, 2, 40]))
        assert view.shape == (4, 128, 128) and view.dtype == np.uint16 and len(view) == 4
        assert view[:][:, 0, 0].tolist() == [65, 2, 2, 40]
        assert view[1:3][:, 5, 5].tolist() == [2, 2] and view[5:].shape == (0, 128, 128)
        assert int(view[0][0, 0]) == 65
        runs = partial.rows(MASK, np.array([3, 5, 6, 9, 60, 69]))  # increasing: read as slices
        assert runs[:4][:, 7, 7].tolist() == [3, 5, 6, 9] and runs[3:][:, 0, 0].tolist() == [9, 60, 69]
        assert partial.rows(CLASSES, np.array([3]))[:][0, 0, 0] == -3
        assert partial.path.exists()
    assert not partial.path.exists() and list(final.parent.iterdir()) == []
