"""Label the candidates a batch at a time, spilling masks into the partial dataset as they come.

Why: ``labelling.label_candidates`` returns every patch's mask and class indexes at once (about
64 kB a patch: 1 GB for the paper's 15,000 NLCD patches). Here it runs on batches of
``BATCH_PATCHES`` candidates (16 tasks of 64, enough to keep a few Dask workers busy); each batch's
arrays are written into the build's partial dataset (``partial_dataset``) at the candidates' rows
and dropped, and only what the later steps need stays in memory per patch: labelled fraction,
unknown codes, the reason it is left out, its dominant class (balancing), its pixels per class
(segmentation; the class counts per split) or its multi-hot label (multi-label: 19 booleans).
Memory is then one batch of arrays plus a few hundred bytes a patch, whatever the dataset's size.
Labels do not depend on how candidates are batched, so the dataset is the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from assets.labels.labelling import dominant_class, label_candidates
from assets.labels.partial_dataset import PartialDataset
from assets.labels.sources import SourceFiles
from storage_schemas.label_products import LabelProduct, class_map_of

BATCH_PATCHES = 1024


@dataclass
class StreamedLabels:
    """Per candidate, in the candidates' order (the partial dataset's rows)."""

    table: pd.DataFrame
    """sample_id, labelled_fraction, unknown_codes, reason ('' when kept)."""
    dominant: np.ndarray | None
    """Dominant class per patch (balanced products only), as ``labelling.dominant_class``."""
    class_pixels: np.ndarray | None
    """(n, classes) int64 labelled pixels per class (segmentation)."""
    multi_hot: np.ndarray | None
    """(n, classes) bool (multi-label)."""
    convention: dict[str, str]
    """CORINE code convention per source file used (``labelling.LabelledPatches.convention``)."""


def stream_labels(
    candidates: pd.DataFrame,
    product: LabelProduct,
    sources: SourceFiles,
    map_fn,
    partial: PartialDataset,
    batch_patches: int = BATCH_PATCHES,
) -> StreamedLabels:
    class_map = class_map_of(product)
    segmentation = product.task != "multilabel"
    n_classes = len(class_map.classes)
    tables, dominant, per_class = [], [], []
    convention: dict[str, str] = {}
    for start in range(0, len(candidates), batch_patches):
        batch = label_candidates(candidates.iloc[start : start + batch_patches], product, sources, map_fn)
        convention.update(batch.convention)
        tables.append(batch.table())
        masks = np.stack([p.mask for p in batch.labels])
        classes = np.stack([p.classes for p in batch.labels])
        partial.write(start, masks, classes if segmentation else None)
        if product.balance:
            dominant.append(dominant_class(batch.labels, class_map.ignore_index))
        per_class.append(_pixels_per_class(classes, n_classes) if segmentation else classes)
        del batch, masks, classes
    if not tables:
        raise ValueError(f"{product.name}: no candidates to label")
    per_patch = np.concatenate(per_class)
    return StreamedLabels(
        table=pd.concat(tables, ignore_index=True),
        dominant=np.concatenate(dominant) if product.balance else None,
        class_pixels=per_patch if segmentation else None,
        multi_hot=None if segmentation else per_patch,
        convention=convention,
    )


def _pixels_per_class(classes: np.ndarray, n_classes: int) -> np.ndarray:
    """(patches, classes) pixels of each class index (negative indexes are unlabelled)."""
    out = np.zeros((len(classes), n_classes), dtype=np.int64)
    for i, patch in enumerate(classes):
        values = patch[patch >= 0]
        out[i] = np.bincount(values.ravel(), minlength=n_classes)[:n_classes]
    return out
