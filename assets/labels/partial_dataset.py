"""The scratch dataset of one label build: every candidate's mask (and class indexes) on disk.

Why: a dataset of the paper's size (15,000 NLCD patches) holds 15,000 x 128 x 128 uint16 codes and
as many int16 class indexes, about 1 GB, and stacking them for the writer doubled it. Which
candidates stay (labelled fraction, balancing, the split's gap) is known only once every candidate
is labelled, so the masks cannot be written in their final rows as they come. They go here
instead, in labelling order, a batch at a time; the build keeps only
small per-patch records in memory, decides selection and order, and the writer then reads the
chosen rows back a shard at a time (:class:`RowView`) into the final dataset. Candidates come in
sample-id order (``selection``), the dataset's order, so the chosen rows are read in increasing
runs.

The scratch group lies beside the final one as ``.<name>.zarr.<pid>.partial`` (no reader opens
it) and :func:`partial_dataset` removes it whatever happens, so a failed build leaves nothing.
Same codec and chunking as the final arrays (one sample per chunk, shards of 64 samples).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import zarr

from assets.patches.store import patch_codec
from storage_schemas.label_dataset import CLASSES, MASK
from storage_schemas.patch_store import PATCHES_PER_SHARD
from storage_schemas.paths import StoragePath, is_remote
from storage_schemas.plan import PATCH_PX

SPAN_FACTOR = 4
"""Increasing rows that span at most this many times their number are read as one slice (and
the rows between dropped): reading a run of chunks costs a third of picking them one by one."""
MASK_DTYPE = np.uint16
CLASSES_DTYPE = np.int16


def per_sample_array(
    group: zarr.Group,
    name: str,
    shape: tuple[int, ...],
    dtype,
    dims: tuple[str, ...] | None = None,
    attrs: dict | None = None,
) -> zarr.Array:
    """A (sample, ...) array as label datasets store them: one sample per chunk, shards of
    PATCHES_PER_SHARD samples, the patch store's codec (the partial and the final datasets)."""
    return group.create_array(
        name,
        shape=shape,
        chunks=(1, *shape[1:]),
        shards=(PATCHES_PER_SHARD, *shape[1:]),
        dtype=dtype,
        fill_value=0,
        compressors=patch_codec(),
        dimension_names=list(dims) if dims else None,
        attributes=attrs or {},
    )


@dataclass(frozen=True)
class RowView:
    """Rows ``rows`` of a (sample, ...) Zarr array, in that order, read only when sliced: what
    the dataset writer and the content version read a shard of samples at a time."""

    array: zarr.Array
    rows: np.ndarray

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.rows), *self.array.shape[1:])

    @property
    def dtype(self) -> np.dtype:
        return self.array.dtype

    @property
    def ndim(self) -> int:
        return self.array.ndim

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, key: slice | int) -> np.ndarray:
        if not isinstance(key, slice):
            return self.array[int(self.rows[key])]
        rows = self.rows[key]
        if not len(rows):
            return np.zeros((0, *self.shape[1:]), dtype=self.dtype)
        first, last = int(rows[0]), int(rows[-1])
        if (np.diff(rows) > 0).all() and last - first < SPAN_FACTOR * len(rows):
            return self.array[first : last + 1][rows - first]  # whole chunks in one read: 3x faster
        return self.array.oindex[rows]


class PartialDataset:
    """Masks (and, for segmentation, class indexes) of ``n`` candidates, written by row ranges."""

    def __init__(self, path: Path, n: int, segmentation: bool):
        self.path = path
        group = zarr.create_group(path, zarr_format=3)
        self.arrays = {MASK: self._create(group, MASK, n, MASK_DTYPE)}
        if segmentation:
            self.arrays[CLASSES] = self._create(group, CLASSES, n, CLASSES_DTYPE)

    @staticmethod
    def _create(group: zarr.Group, name: str, n: int, dtype) -> zarr.Array:
        return per_sample_array(group, name, (n, PATCH_PX, PATCH_PX), dtype)

    def write(self, start: int, masks: np.ndarray, classes: np.ndarray | None = None) -> None:
        """Rows ``start`` .. ``start + len(masks)``."""
        self.arrays[MASK][start : start + len(masks)] = masks.astype(MASK_DTYPE, copy=False)
        if CLASSES in self.arrays:
            if classes is None:
                raise ValueError(f"{self.path}: a segmentation batch without class indexes")
            self.arrays[CLASSES][start : start + len(classes)] = classes.astype(CLASSES_DTYPE, copy=False)

    def rows(self, name: str, rows: np.ndarray) -> RowView:
        return RowView(self.arrays[name], np.asarray(rows, dtype=np.int64))


@contextmanager
def partial_dataset(final: StoragePath, n: int, segmentation: bool) -> Iterator[PartialDataset]:
    """The scratch dataset beside ``final`` (``labels/<name>.zarr``), removed on leaving; in the
    local temporary folder when ``final`` is on an object store (scratch never goes to the bucket)."""
    if is_remote(final):
        with tempfile.TemporaryDirectory(prefix="spectralforge-partial-") as local:
            yield PartialDataset(Path(local) / f"{final.name}.partial", n, segmentation)
        return
    path = final.with_name(f".{final.name}.{os.getpid()}.partial")
    shutil.rmtree(path, ignore_errors=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        yield PartialDataset(path, n, segmentation)
    finally:
        shutil.rmtree(path, ignore_errors=True)
