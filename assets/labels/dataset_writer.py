"""Write one label dataset, ``labels/<name>.zarr`` (contract: ``storage_schemas.label_dataset``).

Images are copied from the patch store chunk by chunk *as stored* (the same codec, so no decode
and re-encode), into shards of 64 samples written whole. The dataset is built under a temporary
name beside its final place and renamed into it, so a reader sees the previous dataset or the
new one, never half of one. Samples are ordered by id and nothing depends on the clock, so the
same release, sources and settings give the same bytes and the same version.

Masks and class indexes are read a shard of samples at a time from what the content holds (an
array, or a ``partial_dataset.RowView`` of the build's partial dataset), so writing a dataset and
computing its version need one shard's labels in memory, not the whole dataset's.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import xxhash
import zarr

from assets.atomic_files import rename_folder_durably
from assets.labels.partial_dataset import RowView, per_sample_array
from assets.object_store import built_locally
from assets.patches.store import StoreBands, create_reflectance, write_band_coords
from storage_schemas.label_dataset import CLASSES, LABEL_LAYOUT_VERSION, MASK, MULTI_HOT, SAMPLE_COORDS
from storage_schemas.patch_reader import PatchReader
from storage_schemas.patch_store import PATCHES_PER_SHARD, TIME_ATTRS, shard_path
from storage_schemas.paths import StoragePath, is_remote
from storage_schemas.plan import PATCH_PX
from storage_schemas.shard_codec import shard_parts

DIMS = ("sample", "band", "y", "x")


@dataclass
class LabelDatasetContent:
    samples: pd.DataFrame
    """One row per sample, columns of SAMPLE_COORDS (``time`` as UTC timestamps), sorted by id."""
    masks: np.ndarray | RowView | zarr.Array
    """(n, 128, 128) uint16 label-product codes: rows of the partial dataset while building, the
    written dataset's array after."""
    classes: np.ndarray | RowView | zarr.Array
    """(n, 128, 128) int16 class indexes (like ``masks``), or (n, classes) bool multi-hot."""
    attrs: dict
    class_pixels: np.ndarray | None = None
    """(n, classes) labelled pixels per class of each sample (segmentation): the class counts."""


def content_version(content: LabelDatasetContent) -> str:
    """16 hex digits over what a model sees: the samples, their splits and labels, and where they
    come from (release version, source file names and sizes, settings), but not where the files
    lie, so the same inputs under another data root give the same version."""
    h = xxhash.xxh3_128()
    provenance = content.attrs.get("provenance", {})
    sources = [
        (f["year"], Path(f["file"]).name, f["size_bytes"]) for f in provenance.get("label_sources", [])
    ]
    settings = {k: content.attrs.get(k) for k in ("product", "split_settings", "balance_cap")}
    h.update(repr((provenance.get("release"), sources, settings)).encode())
    for column in ("sample_id", "split", "release_slot"):
        h.update("\0".join(map(str, content.samples[column])).encode())
    for labels in (content.masks, content.classes):
        for start in range(0, len(labels), PATCHES_PER_SHARD):
            h.update(np.ascontiguousarray(labels[start : start + PATCHES_PER_SHARD]).tobytes())
    return h.hexdigest()[:16]


def write_label_dataset(
    path: StoragePath, content: LabelDatasetContent, store: StoragePath, bands: StoreBands
) -> None:
    """Write the dataset beside ``path`` and swap it into place; on an object store, write it in
    a local temporary folder and PUT it object by object, the root ``zarr.json`` last (a reader
    opens the group only once it is there), then delete what the previous dataset had beyond."""
    if is_remote(path):
        with built_locally(path, last="zarr.json", replace=True) as tmp:
            _write(tmp, content, store, bands)
        return
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        _write(tmp, content, store, bands)
        _swap_into_place(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _write(path: Path, content: LabelDatasetContent, store: StoragePath, bands: StoreBands) -> None:
    n = len(content.samples)
    group = zarr.create_group(
        path, zarr_format=3, attributes={**content.attrs, "layout_version": LABEL_LAYOUT_VERSION}
    )
    create_reflectance(group, len(bands), DIMS, tuple(SAMPLE_COORDS), length=n)
    write_band_coords(group, bands)
    _copy_images(path, content.samples["release_slot"].to_numpy(), store)
    write_label_arrays(group, content)
    for name, dtype in SAMPLE_COORDS.items():
        values = content.samples[name]
        if name == "time":
            values = pd.to_datetime(values, utc=True).dt.as_unit("us").astype("int64")
        array = group.create_array(
            name,
            shape=(n,),
            chunks=(max(n, 1),),
            dtype=dtype,
            dimension_names=["sample"],
            attributes=TIME_ATTRS if name == "time" else {},
        )
        if n:
            array[:] = np.asarray(values, dtype=object if dtype == "str" else dtype)


def write_label_arrays(group: zarr.Group, content: LabelDatasetContent) -> None:
    """The mask and the class indexes or multi-hot labels, a shard of samples at a time."""
    _array(group, MASK, content.masks, ("sample", "y", "x"), {"meaning": "label product codes; 0 = no label"})
    if content.classes.ndim == 2:
        _array(
            group,
            MULTI_HOT,
            np.asarray(content.classes).astype(np.uint8),
            ("sample", "class"),
            {"meaning": "multi-hot"},
        )
    else:
        _array(group, CLASSES, content.classes, ("sample", "y", "x"), {"meaning": "class index per pixel"})


def _array(
    group: zarr.Group, name: str, data: np.ndarray | RowView, dims: tuple[str, ...], attrs: dict
) -> None:
    """A per-sample array, one sample per chunk, shards of PATCHES_PER_SHARD samples."""
    shape = data.shape
    array = per_sample_array(group, name, shape, data.dtype, dims, attrs)
    for start in range(0, shape[0], PATCHES_PER_SHARD):
        array[start : start + PATCHES_PER_SHARD] = data[start : start + PATCHES_PER_SHARD]


def _copy_images(path: Path, slots: np.ndarray, store: StoragePath) -> None:
    with PatchReader(store) as reader:
        if reader.patch_shape[1:] != (PATCH_PX, PATCH_PX):
            raise ValueError(f"{store}: patches of {reader.patch_shape}, expected {PATCH_PX} x {PATCH_PX}")
        for shard, start in enumerate(range(0, len(slots), PATCHES_PER_SHARD)):
            chunks = [reader.read_encoded(int(s)) for s in slots[start : start + PATCHES_PER_SHARD]]
            missing = [int(s) for s, c in zip(slots[start:], chunks, strict=False) if c is None]
            if missing:
                raise ValueError(f"{store}: slots {missing[:5]} of the release hold no patch")
            chunks += [None] * (PATCHES_PER_SHARD - len(chunks))
            target = shard_path(path, shard)
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(target, "wb") as f:
                f.writelines(shard_parts(chunks))


def _swap_into_place(tmp: Path, path: Path) -> None:
    old = path.with_name(f".{path.name}.{os.getpid()}.old")
    if path.exists():
        rename_folder_durably(path, old, contents=False)
    rename_folder_durably(tmp, path)
    shutil.rmtree(old, ignore_errors=True)
