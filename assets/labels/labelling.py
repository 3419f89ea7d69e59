"""Label the selected patches: tasks of a few dozen patches that reach the same source files, each
opening those files once, run on the Dask client (or in-process).

A patch that reaches several files (CORINE's mainland raster and a region's own, or a national
product over the European one) is labelled from each and keeps the label of the file that
``source_choice`` picks; disagreeing overlaps are recorded with it. A task returns compact results
(codes as uint16, class indexes as int16 or the multi-hot vector), so 15,000 NLCD patches come
back as about 1 GB; the dataset writer takes them from there.
"""

from __future__ import annotations

from collections import Counter
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
from rasterio.errors import RasterioError

from assets.labels.label_patch import PatchLabel, label_patch, unlabelled
from assets.labels.source_choice import Overlap, choose_label, overlap_problems
from assets.labels.sources import VECTOR, SourceFile, SourceFiles
from assets.labels.vector_labels import VectorLabels, VectorSourceError, read_label_vector
from assets.object_store import open_raster
from storage_schemas.label_classes import name_values
from storage_schemas.label_products import LabelProduct

PATCHES_PER_TASK = 64


@dataclass(frozen=True)
class LabelTask:
    product: LabelProduct
    files: tuple[SourceFile, ...]
    """The files the task's patches reach (one, or the candidates of an overlap)."""
    rows: pd.DataFrame
    """sample_id, epsg, x0, y0 of the task's patches."""


@dataclass
class LabelledPatches:
    """Results of all tasks, in the candidates' order."""

    sample_id: list[str]
    labels: list[PatchLabel]
    overlaps: list[list[Overlap]] = field(default_factory=list)
    """Per patch, the other files that label it differently (see ``source_choice``)."""
    convention: dict[str, str] = field(default_factory=dict)
    """CORINE: how each file used converts its values (``vat``, ``grid``, ``clc``), by name."""
    read_errors: list[list[tuple[str, str]]] = field(default_factory=list)
    """Per patch, (file name, message) of the files that could not be read for it."""

    def table(self) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "sample_id": self.sample_id,
                "labelled_fraction": [p.labelled_fraction for p in self.labels],
                "unknown_codes": [p.unknown_codes for p in self.labels],
                "reason": [p.left_out for p in self.labels],
                "source": [p.source for p in self.labels],
                "unknown_values": [p.unknown_values for p in self.labels],
                "overlaps": self.overlaps or [[] for _ in self.labels],
                "read_errors": self.read_errors or [[] for _ in self.labels],
            }
        )


def label_tasks(candidates: pd.DataFrame, product: LabelProduct, sources: SourceFiles) -> list[LabelTask]:
    """Tasks of up to PATCHES_PER_TASK patches of one product year that reach the same files."""
    by_name = {(f.year, f.name): f for f in sources.files}
    tasks = []
    keys = pd.Series(list(zip(candidates["label_year"], candidates["source_files"], strict=True)))
    for (year, names), part in candidates.groupby(keys.to_numpy(), sort=True):
        files = tuple(by_name[(int(year), n)] for n in names)
        cols = part[["sample_id", "epsg", "x0", "y0"]].reset_index(drop=True)
        for start in range(0, len(cols), PATCHES_PER_TASK):
            tasks.append(LabelTask(product, files, cols.iloc[start : start + PATCHES_PER_TASK]))
    return tasks


def run_label_task(task: LabelTask) -> list[tuple[str, PatchLabel, list[Overlap], list[tuple[str, str]]]]:
    """Open the task's files once, label every patch from each, keep the rule's choice. A file
    that cannot be opened or read (a truncated download) costs only the patches no other file
    labels: they are left out naming it, and the failures are returned per patch."""
    with ExitStack() as stack:
        opened, failed = [], []
        for f in task.files:
            try:
                opened.append((f, stack.enter_context(_open_source(f, task.product))))
            except (RasterioError, VectorSourceError) as exc:
                failed.append((f.name, f"{f.path}: unreadable: {exc}"))
        out = []
        for row in task.rows.itertuples():
            candidates, errors = [], list(failed)
            for f, source in opened:
                try:
                    label = label_patch(source, task.product, int(row.epsg), row.x0, row.y0, f.codes)
                except RasterioError as exc:
                    errors.append((f.name, f"{f.path}: unreadable: {exc}"))
                    continue
                candidates.append((f.name, f.cell_m, label))
            if candidates:
                label, overlaps = choose_label(candidates)
            else:
                label, overlaps = unlabelled(task.product, errors[0][1]), []
            out.append((row.sample_id, label, overlaps, errors))
    return out


@contextmanager
def _open_source(file: SourceFile, product: LabelProduct):
    if file.kind == VECTOR:
        yield _vector(file.path, product, file.mtime_ns)
        return
    with open_raster(file.path) as ds:
        yield ds


@lru_cache(maxsize=4)
def _vector(path: Path, product: LabelProduct, mtime_ns: int) -> VectorLabels:
    """Polygons read once per worker process and file version, not once per task."""
    return read_label_vector(path, product)


def label_candidates(
    candidates: pd.DataFrame, product: LabelProduct, sources: SourceFiles, map_fn
) -> LabelledPatches:
    tasks = label_tasks(candidates, product, sources)
    results = map_fn(run_label_task, tasks)
    by_id = {}
    for labelled in results:
        by_id.update({sample: rest for sample, *rest in labelled})
    ids = list(candidates["sample_id"])
    used = {label.source for label, _, _ in by_id.values()}
    convention = {f.name: f.codes.convention for f in sources.files if f.codes is not None and f.name in used}
    found = [by_id[i] for i in ids]
    return LabelledPatches(
        ids, [f[0] for f in found], [f[1] for f in found], convention, [f[2] for f in found]
    )


def per_source(table: pd.DataFrame, rows: np.ndarray) -> dict[str, dict]:
    """Per source file: the dataset's patches it labelled (``rows`` of ``table``, the candidates'
    labelling table) and the unknown values it held in any patch it labelled, with their pixels."""
    kept = Counter(table["source"].to_numpy()[rows].tolist())
    out = {
        s: {"patches": kept.get(s, 0), "unknown_values": set(), "unknown_pixels": 0}
        for s in set(table["source"])
    }
    hit = table[table["unknown_codes"] > 0]
    for source, values, pixels in zip(
        hit["source"], hit["unknown_values"], hit["unknown_codes"], strict=True
    ):
        out[source]["unknown_values"].update(int(v) for v in values)
        out[source]["unknown_pixels"] += int(pixels)
    return {s: {**v, "unknown_values": sorted(v["unknown_values"])} for s, v in sorted(out.items())}


def labelling_problems(table: pd.DataFrame, conventions: dict[str, str]) -> list[str]:
    """What a person should see about the sources' content: files that disagree where they overlap,
    files that could not be read for some patches, and values a file holds outside its conversion
    or class map (counted, never a class)."""
    overlaps = [(s, o) for s, found in zip(table["sample_id"], table["overlaps"], strict=True) for o in found]
    problems = overlap_problems(overlaps)
    unreadable: dict[str, list[str]] = {}
    for errors in table["read_errors"]:
        for name, message in errors:
            unreadable.setdefault(name, []).append(message)
    for _, messages in sorted(unreadable.items()):
        problems.append(
            f"{messages[0]} (at {len(messages)} patches: labelled from another file where one covers "
            "them, else left out)"
        )
    for source, found in per_source(table, np.empty(0, dtype=np.intp)).items():
        if found["unknown_values"]:
            how = f"its {conventions[source]!r} conversion" if source in conventions else "the class map"
            problems.append(
                f"{source}: values {name_values(found['unknown_values'])} are outside {how} "
                f"({found['unknown_pixels']} pixels): counted in unknown_codes, never a class"
            )
    return problems


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
