"""Benchmark metrics from accumulated counts: micro F1 (EnMAP-CORINE), micro Jaccard and macro mIoU
(segmentation).

SpectralEarth section 5.4 reports the multi-label F1 score for EnMAP-CORINE and "mIoU" for
EnMAP-CDL, EnMAP-NLCD and DESIS-CDL. The published code computes that "mIoU" as torchmetrics'
*micro* Jaccard index with the background as ignore index: sum TP / sum (TP + FP + FN) over the
non-background classes, i.e. a pixel-weighted score dominated by the frequent classes
(``micro_jaccard``). The per-class mean (``mean_iou``, macro mIoU) weighs a rare class like a
frequent one and is usually lower; the benchmark reports both, the micro one under the tables'
name. All are ratios of counts, so we
keep integer counts (int64) per batch and sum them: over batches with ``update``, and over DDP ranks
with ``all_reduce`` (a sum of counts, exact, unlike averaging per-rank scores). The scores are
computed once at the end from the totals.

Conventions (documented because published numbers depend on them):

- multi-label: a class is predicted when its probability (sigmoid of the logit) is strictly above
  0.5, i.e. logit > 0. Micro F1 = 2 TP / (2 TP + FP + FN) over all (sample, class) pairs; 0.0 when
  there are no positives in either prediction or target (cannot happen with CORINE, where every
  patch has at least one class);
- segmentation: pixels whose target equals ``ignore_index`` (the background class of CDL/NLCD) are
  not counted at all, whatever the prediction; IoU_c = TP / (TP + FP + FN). A class with no pixel in
  either the prediction or the target (over everything accumulated) has IoU NaN and is left out of
  the mean, so a class absent from a test split neither counts as 0 nor as 1. A class present in the
  target but never predicted (or the reverse) counts as 0;
- micro Jaccard: the ignored class's own column (background predicted on a labelled pixel) is an
  FN of the true class only, not an FP of the background (torchmetrics drops the ignored class's
  union from the denominator); NaN when no labelled pixel was seen or predicted.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = [
    "ConfusionMatrix",
    "MultiLabelCounts",
    "confusion_matrix",
    "iou_per_class",
    "macro_miou",
    "mean_iou",
    "micro_f1",
    "micro_jaccard",
    "multilabel_counts",
]


def _all_reduce_sum(t: Tensor) -> Tensor:
    """Sum ``t`` over DDP ranks in place when torch.distributed is initialised; else unchanged."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def multilabel_counts(scores: Tensor, target: Tensor, from_logits: bool = True) -> Tensor:
    """Per-class (C, 3) int64 counts ``[TP, FP, FN]`` for multi-label predictions.

    ``scores`` (N, C) logits (or probabilities with ``from_logits=False``), ``target`` (N, C) multi-hot.
    """
    pred = scores > 0 if from_logits else scores > 0.5
    truth = target.bool()
    tp = (pred & truth).sum(0)
    fp = (pred & ~truth).sum(0)
    fn = (~pred & truth).sum(0)
    return torch.stack([tp, fp, fn], dim=1).to(torch.int64)


def micro_f1(counts: Tensor) -> float:
    """Micro-averaged F1 from (C, 3) or (3,) ``[TP, FP, FN]`` counts."""
    tp, fp, fn = (int(v) for v in counts.reshape(-1, 3).sum(0))
    denom = 2 * tp + fp + fn
    return 2 * tp / denom if denom else 0.0


def confusion_matrix(
    pred: Tensor, target: Tensor, num_classes: int, ignore_index: int | None = None
) -> Tensor:
    """(num_classes, num_classes) int64 counts, rows = target class, columns = predicted class.

    ``pred`` is labels (B, H, W) or logits (B, num_classes, H, W) (argmax taken). Target pixels equal
    to ``ignore_index`` are dropped; any other target or prediction outside [0, num_classes) is an
    error rather than silently miscounted.
    """
    if pred.dim() == target.dim() + 1:
        pred = pred.argmax(1)
    if pred.shape != target.shape:
        raise ValueError(f"prediction {tuple(pred.shape)} and target {tuple(target.shape)} differ")
    t = target.reshape(-1).long()
    p = pred.reshape(-1).long()
    if ignore_index is not None:
        keep = t != ignore_index
        t, p = t[keep], p[keep]
    if t.numel() and (t.min() < 0 or t.max() >= num_classes or p.min() < 0 or p.max() >= num_classes):
        raise ValueError(f"labels outside [0, {num_classes}) that are not ignore_index={ignore_index}")
    return torch.bincount(t * num_classes + p, minlength=num_classes**2).view(num_classes, num_classes)


def iou_per_class(conf: Tensor) -> Tensor:
    """Per-class IoU (float64) from a confusion matrix; NaN where a class has no pixel in either
    prediction or target."""
    c = conf.to(torch.float64)
    tp = c.diag()
    union = c.sum(0) + c.sum(1) - tp
    return torch.where(union > 0, tp / union.clamp(min=1), torch.full_like(tp, float("nan")))


def mean_iou(conf: Tensor) -> float:
    """Mean of the per-class IoUs that are defined (see module docstring); NaN if none is."""
    iou = iou_per_class(conf)
    valid = ~torch.isnan(iou)
    return float(iou[valid].mean()) if bool(valid.any()) else float("nan")


def micro_jaccard(conf: Tensor, ignore_index: int | None = None) -> float:
    """Micro Jaccard (the published tables' "mIoU"): sum TP / sum (TP + FP + FN) over the classes
    other than ``ignore_index``, from a confusion matrix whose ignored target pixels are already
    dropped (``confusion_matrix``); NaN when the denominator is 0."""
    c = conf.to(torch.float64)
    tp = c.diag()
    union = c.sum(0) + c.sum(1) - tp
    keep = torch.ones_like(tp, dtype=torch.bool)
    if ignore_index is not None and 0 <= ignore_index < len(tp):
        keep[ignore_index] = False
    denom = float(union[keep].sum())
    return float(tp[keep].sum()) / denom if denom else float("nan")


def macro_miou(conf: Tensor, ignore_index: int | None = None) -> float:
    """Mean IoU over the defined classes other than ``ignore_index`` (see module docstring)."""
    iou = iou_per_class(conf)
    if ignore_index is not None and 0 <= ignore_index < len(iou):
        iou[ignore_index] = float("nan")
    valid = ~torch.isnan(iou)
    return float(iou[valid].mean()) if bool(valid.any()) else float("nan")


class MultiLabelCounts:
    """Accumulates multi-label ``[TP, FP, FN]`` per class over batches (and ranks); micro F1 at the end."""

    def __init__(self, num_classes: int, from_logits: bool = True) -> None:
        self.from_logits = from_logits
        self.counts = torch.zeros(num_classes, 3, dtype=torch.int64)

    def update(self, scores: Tensor, target: Tensor) -> None:
        self.counts += multilabel_counts(scores.detach(), target, self.from_logits).cpu()

    def all_reduce(self, device: torch.device | str | None = None) -> None:
        """Sum the counts over DDP ranks (``device`` is where the collective runs, e.g. cuda for NCCL)."""
        self.counts = _all_reduce_sum(self.counts.to(device or "cpu")).cpu()

    def compute(self) -> float:
        return micro_f1(self.counts)

    def reset(self) -> None:
        self.counts.zero_()


class ConfusionMatrix:
    """Accumulates a segmentation confusion matrix over batches (and ranks); IoU and mIoU at the end."""

    def __init__(self, num_classes: int, ignore_index: int | None = None) -> None:
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.matrix = torch.zeros(num_classes, num_classes, dtype=torch.int64)

    def update(self, pred: Tensor, target: Tensor) -> None:
        self.matrix += confusion_matrix(pred.detach(), target, self.num_classes, self.ignore_index).cpu()

    def all_reduce(self, device: torch.device | str | None = None) -> None:
        """Sum the matrix over DDP ranks (``device`` is where the collective runs, e.g. cuda for NCCL)."""
        self.matrix = _all_reduce_sum(self.matrix.to(device or "cpu")).cpu()

    def iou(self) -> Tensor:
        return iou_per_class(self.matrix)

    def compute(self) -> float:
        return mean_iou(self.matrix)

    def micro_jaccard(self) -> float:
        """The published tables' "mIoU" (micro, background ignored)."""
        return micro_jaccard(self.matrix, self.ignore_index)

    def macro_miou(self) -> float:
        """The per-class mean IoU, background left out."""
        return macro_miou(self.matrix, self.ignore_index)

    def reset(self) -> None:
        self.matrix.zero_()
