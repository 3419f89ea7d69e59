"""Micro F1 and mIoU against hand-computed confusion counts."""

from __future__ import annotations

import math

import pytest
import torch

from training.metrics import (
    ConfusionMatrix,
    MultiLabelCounts,
    confusion_matrix,
    iou_per_class,
    mean_iou,
    micro_f1,
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
