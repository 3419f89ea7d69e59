"""The benchmark protocols freeze exactly what they say, on a stand-in encoder."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tests.training.standin_encoder import TinyEncoder
from training.protocols import apply_protocol, count_parameters, set_train_mode

ADAPTER = 6 * 4 + 4 + 2 * 4  # 1x1 conv weight + bias, BatchNorm weight + bias
BODY = 4 * 8 * 9 + 8 + 2 * 8
HEAD = 8 * 3 + 3


def _models() -> tuple[TinyEncoder, nn.Linear]:
    torch.manual_seed(0)
    return TinyEncoder(bands=6, width=8), nn.Linear(8, 3)


def _trainable(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def test_parameter_counts_of_the_stand_in():
    encoder, _ = _models()
    assert count_parameters(encoder.adapter.parameters()) == ADAPTER
    assert count_parameters(encoder.parameters()) == ADAPTER + BODY


def test_frozen_trains_only_the_head_and_keeps_encoder_in_eval():
    encoder, head = _models()
    setup = apply_protocol("frozen", encoder, head)
    assert (setup.trainable_encoder, setup.trainable_head) == (0, HEAD)
    assert _trainable(encoder) == 0 and _trainable(head) == HEAD
    assert [g["name"] for g in setup.param_groups] == ["head"]
    assert not any(m.training for m in encoder.modules()) and head.training
    # BatchNorm statistics do not move in a training step.
    before = encoder.adapter[1].running_mean.clone()
    head(encoder(torch.randn(2, 6, 5, 5) * 3 + 1)).sum().backward()
    assert torch.equal(encoder.adapter[1].running_mean, before)
    assert all(p.grad is None for p in encoder.parameters())


def test_adapter_trains_adapter_and_head_only():
    encoder, head = _models()
    setup = apply_protocol("adapter", encoder, head)
    assert (setup.trainable_encoder, setup.trainable_head, setup.total_encoder) == (
        ADAPTER,
        HEAD,
        ADAPTER + BODY,
    )
    assert _trainable(encoder.body) == 0 and _trainable(encoder.adapter) == ADAPTER
    assert [g["name"] for g in setup.param_groups] == ["adapter", "head"]
    assert all(m.training for m in encoder.adapter.modules())
    assert not any(m.training for m in encoder.body.modules())


def test_full_trains_everything_in_groups():
    encoder, head = _models()
    setup = apply_protocol("full", encoder, head)
    assert setup.trainable == ADAPTER + BODY + HEAD
    assert [g["name"] for g in setup.param_groups] == ["adapter", "encoder", "head"]
    grouped = [p for g in setup.param_groups for p in g["params"]]
    assert len(grouped) == len({id(p) for p in grouped}) == len([*encoder.parameters(), *head.parameters()])
    assert all(m.training for m in encoder.modules())
    torch.optim.AdamW(setup.param_groups, lr=1e-3)  # accepted as is


def test_switching_protocols_and_eval_mode():
    encoder, head = _models()
    apply_protocol("full", encoder, head)
    setup = apply_protocol("frozen", encoder, head)
    assert _trainable(encoder) == 0
    encoder.train()  # an epoch loop calling .train() ...
    set_train_mode(setup, encoder, head)  # ... must restore the protocol's modes
    assert not encoder.training
    set_train_mode("full", encoder, head, training=False)
    assert not head.training and not encoder.training


def test_head_wrapping_the_encoder_does_not_unfreeze_it():
    encoder, _ = _models()
    model = nn.Sequential(encoder, nn.Linear(8, 3))
    setup = apply_protocol("adapter", encoder, model)
    assert setup.trainable_head == HEAD and _trainable(encoder) == ADAPTER


def test_unknown_protocol_and_missing_adapter():
    encoder, head = _models()
    with pytest.raises(ValueError):
        apply_protocol("linear", encoder, head)
    with pytest.raises(AttributeError):
        apply_protocol("adapter", nn.Conv2d(3, 3, 1), head)
