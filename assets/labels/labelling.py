"""Label the selected patches: tasks of a few dozen patches of one product year, each opening its
raster once, run on the Dask client (or in-process).

A task returns compact results (codes as uint16, class indexes as int16 or the multi-hot vector),
so 15,000 NLCD patches come back as about 1 GB; the dataset writer takes them from there.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import rasterio

from assets.labels.label_patch import PatchLabel, label_patch, source_convention
from assets.labels.vector_labels import VectorLabels, read_label_vector
from storage_schemas.label_products import LabelProduct

PATCHES_PER_TASK = 64


@dataclass(frozen=True)
class LabelTask:
    product: LabelProduct
    raster: Path
    """The source file (a raster, or polygons for a vector product)."""
    rows: pd.DataFrame
    """sample_id, epsg, x0, y0 of the task's patches."""


@dataclass
class LabelledPatches:
    """Results of all tasks, in the candidates' order."""

    sample_id: list[str]
    labels: list[PatchLabel]
    convention: dict[int, str]
    """CORINE code convention detected per product year (empty for other sources)."""

    def table(self) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "sample_id": self.sample_id,
                "labelled_fraction": [p.labelled_fraction for p in self.labels],
                "unknown_codes": [p.unknown_codes for p in self.labels],
                "reason": [p.left_out for p in self.labels],
            }
        )


def label_tasks(candidates: pd.DataFrame, product: LabelProduct, rasters: dict[int, Path]) -> list[LabelTask]:
    tasks = []
    for year, part in candidates.groupby("label_year", sort=True):
        cols = part[["sample_id", "epsg", "x0", "y0"]].reset_index(drop=True)
        for start in range(0, len(cols), PATCHES_PER_TASK):
            tasks.append(LabelTask(product, rasters[int(year)], cols.iloc[start : start + PATCHES_PER_TASK]))
    return tasks


def run_label_task(task: LabelTask) -> tuple[str, list[tuple[str, PatchLabel]]]:
    """Open the source once, detect its code convention, label every patch of the task."""
    with _open_source(task.raster, task.product) as source:
        convention = "" if task.product.kind == "vector" else source_convention(source, task.product)
        out = [
            (row.sample_id, label_patch(source, task.product, int(row.epsg), row.x0, row.y0, convention))
            for row in task.rows.itertuples()
        ]
    return convention, out


@contextmanager
def _open_source(path: Path, product: LabelProduct):
    if product.kind == "vector":
        yield _vector(path, product, path.stat().st_mtime_ns)
        return
    with rasterio.open(path) as ds:
        yield ds


@lru_cache(maxsize=2)
def _vector(path: Path, product: LabelProduct, mtime_ns: int) -> VectorLabels:
    """Polygons read once per worker process and file version, not once per task."""
    return read_label_vector(path, product)


def label_candidates(
    candidates: pd.DataFrame, product: LabelProduct, rasters: dict[int, Path], map_fn
) -> LabelledPatches:
    tasks = label_tasks(candidates, product, rasters)
    results = map_fn(run_label_task, tasks)
    by_id: dict[str, PatchLabel] = {}
    convention: dict[int, str] = {}
    for task, (conv, labelled) in zip(tasks, results, strict=True):
        if conv:
            year = next(y for y, p in rasters.items() if p == task.raster)
            convention[year] = conv
        by_id.update(labelled)
    ids = list(candidates["sample_id"])
    return LabelledPatches(ids, [by_id[i] for i in ids], convention)


def dominant_class(labels: list[PatchLabel], ignore_index: int | None) -> np.ndarray:
    """Per patch, the class with the most pixels apart from the ignored one (the ignored index
    where a patch holds only ignored pixels): what balancing groups segmentation patches by."""
    out = np.empty(len(labels), dtype=np.int64)
    for i, label in enumerate(labels):
        counts = np.bincount(label.classes.ravel()[label.classes.ravel() >= 0])
        if ignore_index is not None and ignore_index < len(counts):
            counts[ignore_index] = 0
        out[i] = int(counts.argmax()) if counts.any() else (ignore_index if ignore_index is not None else -1)
    return out
