"""Micro F1, mIoU and the published micro Jaccard against hand-computed confusion counts."""

from __future__ import annotations

import math

import pytest
import torch

from training.metrics import (
    ConfusionMatrix,
    MultiLabelCounts,
    confusion_matrix,
    iou_per_class,
    macro_miou,
    mean_iou,
    micro_f1,
    micro_jaccard,
    multilabel_counts,
)


def test_micro_f1_by_hand():
    # 3 samples x 3 classes; logits > 0 <=> probability > 0.5.
    logits = torch.tensor([[2.0, -1.0, 0.5], [-3.0, 1.0, -0.1], [0.2, 0.3, -2.0]])
    target = torch.tensor([[1, 0, 0], [0, 1, 1], [0, 1, 0]])
    # predictions: [1,0,1], [0,1,0], [1,1,0]
    # class 0: TP 1 (s0), FP 1 (s2), FN 0; class 1: TP 2, FP 0, FN 0; class 2: TP 0, FP 1, FN 1
    counts = multilabel_counts(logits, target)
    assert counts.tolist() == [[1, 1, 0], [2, 0, 0], [0, 1, 1]]
    assert micro_f1(counts) == pytest.approx(2 * 3 / (2 * 3 + 2 + 1))
    probs = torch.sigmoid(logits)
    assert torch.equal(multilabel_counts(probs, target, from_logits=False), counts)


def test_exactly_half_is_negative():
    assert multilabel_counts(torch.zeros(1, 2), torch.ones(1, 2)).tolist() == [[0, 0, 1], [0, 0, 1]]


def test_multilabel_accumulates_over_batches():
    logits = torch.randn(10, 4, generator=torch.Generator().manual_seed(0))
    target = (torch.rand(10, 4, generator=torch.Generator().manual_seed(1)) > 0.5).long()
    acc = MultiLabelCounts(4)
    acc.update(logits[:3], target[:3])
    acc.update(logits[3:], target[3:])
    assert acc.compute() == pytest.approx(micro_f1(multilabel_counts(logits, target)))
    acc.all_reduce()  # not distributed: a no-op
    assert acc.compute() == pytest.approx(micro_f1(multilabel_counts(logits, target)))
    assert micro_f1(torch.zeros(3, 3, dtype=torch.long)) == 0.0


def test_confusion_matrix_and_iou_by_hand():
    target = torch.tensor([[0, 0, 1, 1], [2, 2, 3, 3]])
    pred = torch.tensor([[0, 1, 1, 1], [2, 0, 0, 3]])
    conf = confusion_matrix(pred, target, num_classes=4, ignore_index=3)
    # Pixels with target 3 are ignored (whatever was predicted there).
    assert conf.tolist() == [[1, 1, 0, 0], [0, 2, 0, 0], [1, 0, 1, 0], [0, 0, 0, 0]]
    iou = iou_per_class(conf)
    # class 0: TP 1, union 2 + 2 - 1 = 3; class 1: TP 2, union 3; class 2: TP 1, union 2; class 3: none
    assert iou[:3].tolist() == pytest.approx([1 / 3, 2 / 3, 1 / 2])
    assert math.isnan(iou[3])
    assert mean_iou(conf) == pytest.approx((1 / 3 + 2 / 3 + 1 / 2) / 3)


def test_class_only_in_prediction_counts_as_zero():
    target = torch.tensor([[0, 0, 1, 1]])
    pred = torch.tensor([[0, 2, 1, 1]])
    iou = iou_per_class(confusion_matrix(pred, target, num_classes=3))
    assert iou.tolist() == pytest.approx([1 / 2, 1.0, 0.0])


def test_logits_are_argmaxed_and_batches_sum():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 5, 6, 6, generator=gen)
    target = torch.randint(0, 6, (3, 6, 6), generator=gen)  # 5 = ignored background
    acc = ConfusionMatrix(5, ignore_index=5)
    for i in range(3):
        acc.update(logits[i : i + 1], target[i : i + 1])
    whole = confusion_matrix(logits.argmax(1), target, 5, ignore_index=5)
    assert torch.equal(acc.matrix, whole)
    assert int(whole.sum()) == int((target != 5).sum())
    assert acc.compute() == pytest.approx(mean_iou(whole))


def test_out_of_range_labels_are_an_error():
    with pytest.raises(ValueError):
        confusion_matrix(torch.tensor([0, 1]), torch.tensor([0, 7]), num_classes=3)


def test_micro_jaccard_and_macro_miou_differ_by_hand():
    """Classes 0 (background, ignored), 1 and 2. Class 1: 8 pixels right, 1 predicted as background;
    class 2: 1 right, 1 predicted as 1; background pixels predicted anything are not counted.
    IoU_1 = 8 / (8 + 1 FP + 1 FN) = 0.8, IoU_2 = 1 / (1 + 1 FN) = 0.5: macro 0.65; micro
    (8 + 1) / (10 + 2) = 0.75 (the background predicted on a class-1 pixel is an FN of class 1 only)."""
    target = torch.tensor([1] * 9 + [2, 2] + [0, 0, 0])
    pred = torch.tensor([1] * 8 + [0] + [2, 1] + [2, 1, 0])
    matrix = ConfusionMatrix(3, ignore_index=0)
    matrix.update(pred.view(1, 2, 7), target.view(1, 2, 7))
    assert matrix.micro_jaccard() == pytest.approx(0.75)
    assert matrix.macro_miou() == pytest.approx(0.65)
    assert micro_jaccard(matrix.matrix, ignore_index=0) == pytest.approx(9 / 12)
    # Without an ignore index the background is a class of its own: TP 1 / 8 / 1, unions 4 / 11 / 3.
    whole = confusion_matrix(pred, target, 3)
    assert micro_jaccard(whole) == pytest.approx(10 / 18)
    assert macro_miou(whole, None) == pytest.approx((1 / 4 + 8 / 11 + 1 / 3) / 3)


def test_micro_jaccard_is_nan_without_labelled_pixels():
    matrix = ConfusionMatrix(3, ignore_index=0)
    matrix.update(torch.tensor([[1, 2]]), torch.tensor([[0, 0]]))
    assert math.isnan(matrix.micro_jaccard()) and math.isnan(matrix.macro_miou())


def test_micro_f1_at_probability_one_half_is_strict():
    """p = 0.5 is not a positive (p > 0.5), 0.51 is: TP 1 (0.51), FP 1 (0.9), FN 1 (0.5)."""
    probs = torch.tensor([[0.5, 0.51, 0.9, 0.2]])
    target = torch.tensor([[1.0, 1.0, 0.0, 0.0]])
    counts = MultiLabelCounts(4, from_logits=False)
    counts.update(probs, target)
    assert counts.compute() == pytest.approx(2 * 1 / (2 * 1 + 1 + 1))
    logits = MultiLabelCounts(4)
    logits.update(torch.logit(probs), target)
    assert logits.compute() == pytest.approx(0.5)
