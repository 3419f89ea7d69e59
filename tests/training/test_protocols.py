"""The benchmark protocols freeze exactly what they say, on a stand-in encoder; frozen parts'
BatchNorm re-adapts (``frozen_bn="train"``, published) or stays (``"eval"``); progressive unfreezing
counts layers from the input."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tests.training.standin_encoder import TinyEncoder
from training.models.registry import build_encoder
from training.protocols import apply_protocol, count_parameters, encoder_layers, set_train_mode

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


def _step(encoder: TinyEncoder, head: nn.Module) -> None:
    """One forward and backward on data far from the BatchNorm's initial statistics."""
    head(encoder(torch.randn(4, 6, 5, 5) * 3 + 1)).sum().backward()


def test_frozen_trains_only_the_head_and_its_batchnorm_readapts_by_default():
    encoder, head = _models()
    setup = apply_protocol("frozen", encoder, head)
    assert (setup.trainable_encoder, setup.trainable_head, setup.frozen_bn) == (0, HEAD, "train")
    assert _trainable(encoder) == 0 and _trainable(head) == HEAD
    assert [g["name"] for g in setup.param_groups] == ["head"]
    assert all(m.training for m in encoder.modules()) and head.training, (
        "published: frozen parts in train mode"
    )
    weights = [p.clone() for p in encoder.parameters()]
    before = encoder.adapter[1].running_mean.clone()
    _step(encoder, head)
    assert not torch.equal(encoder.adapter[1].running_mean, before), "BatchNorm statistics re-adapt"
    assert all(p.grad is None for p in encoder.parameters())
    assert all(torch.equal(a, b) for a, b in zip(weights, encoder.parameters(), strict=True))


def test_frozen_bn_eval_keeps_the_pretrained_statistics():
    encoder, head = _models()
    setup = apply_protocol("frozen", encoder, head, frozen_bn="eval")
    assert not any(m.training for m in encoder.modules()) and head.training
    before = encoder.adapter[1].running_mean.clone()
    _step(encoder, head)
    assert torch.equal(encoder.adapter[1].running_mean, before)
    encoder.train()  # an epoch loop calling .train() ...
    set_train_mode(setup, encoder, head)  # ... must restore the protocol's modes
    assert not encoder.training
    with pytest.raises(ValueError, match="frozen_bn"):
        apply_protocol("frozen", encoder, head, frozen_bn="fixed")


def test_adapter_trains_adapter_and_head_only():
    encoder, head = _models()
    setup = apply_protocol("adapter", encoder, head, frozen_bn="eval")
    assert (setup.trainable_encoder, setup.trainable_head, setup.total_encoder) == (
        ADAPTER,
        HEAD,
        ADAPTER + BODY,
    )
    assert _trainable(encoder.body) == 0 and _trainable(encoder.adapter) == ADAPTER
    assert [g["name"] for g in setup.param_groups] == ["adapter", "head"]
    assert all(m.training for m in encoder.adapter.modules())
    assert not any(m.training for m in encoder.body.modules())
    apply_protocol("adapter", encoder, head)
    assert all(m.training for m in encoder.modules()), "published: the frozen body trains its BatchNorm"


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
    setup = apply_protocol("adapter", encoder, head, frozen_bn="eval")
    assert _trainable(encoder) == ADAPTER
    encoder.train()
    set_train_mode(setup, encoder, head)
    assert not encoder.body.training and encoder.adapter.training
    set_train_mode("adapter", encoder, head, frozen_bn="eval")  # by name: the same modes
    assert not encoder.body.training and encoder.adapter.training
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


class _PublishedResNet(nn.Module):
    """The published Spec. ResNet-50 layout (``spectral_adapter``/``adapter``, ``resnet.layer1..4``)
    at a few parameters per stage."""

    def __init__(self) -> None:
        super().__init__()
        self.spectral_adapter = nn.Sequential(nn.Conv2d(6, 4, 1), nn.BatchNorm2d(4))
        self.adapter = self.spectral_adapter
        self.resnet = nn.Module()
        for i in range(1, 5):
            setattr(self.resnet, f"layer{i}", nn.Sequential(nn.Conv2d(4, 4, 1), nn.BatchNorm2d(4)))


class _PublishedViT(nn.Module):
    """The published Spec. ViT layout (``vit_core.{cls_token,pos_embed,patch_embed,blocks,norm}``)."""

    def __init__(self, depth: int = 3) -> None:
        super().__init__()
        self.spectral_adapter = nn.Sequential(nn.Conv2d(6, 4, 1), nn.BatchNorm2d(4))
        self.adapter = self.spectral_adapter
        self.vit_core = nn.Module()
        self.vit_core.cls_token = nn.Parameter(torch.zeros(1, 1, 8))
        self.vit_core.pos_embed = nn.Parameter(torch.zeros(1, 5, 8))
        self.vit_core.patch_embed = nn.Module()
        self.vit_core.patch_embed.proj = nn.Conv2d(4, 8, 2, 2)
        self.vit_core.blocks = nn.ModuleList(nn.Linear(8, 8) for _ in range(depth))
        self.vit_core.norm = nn.LayerNorm(8)


def _trainable_names(encoder: nn.Module) -> set[str]:
    return {name for name, p in encoder.named_parameters() if p.requires_grad}


def test_first_n_layers_of_the_published_resnet_train_from_the_input():
    encoder, head = _PublishedResNet(), nn.Linear(4, 3)
    assert [name for name, _ in encoder_layers(encoder)] == [
        "adapter",
        "layer1",
        "layer2",
        "layer3",
        "layer4",
    ]
    setup = apply_protocol("first_2", encoder, head, frozen_bn="eval")
    assert setup.protocol == "first_2"
    assert {
        n.split(".")[0] + "." + n.split(".")[1] for n in _trainable_names(encoder) if n.startswith("resnet")
    } == {"resnet.layer1"}
    assert any(n.startswith("spectral_adapter") for n in _trainable_names(encoder))
    assert setup.trainable_encoder == count_parameters(
        [*encoder.adapter.parameters(), *encoder.resnet.layer1.parameters()]
    )
    assert encoder.resnet.layer1.training and not encoder.resnet.layer2.training
    assert [g["name"] for g in setup.param_groups] == ["adapter", "layer1", "head"]
    # n = number of layers (or more) is full fine-tuning.
    assert apply_protocol("first_5", encoder, head).trainable_encoder == count_parameters(
        encoder.parameters()
    )
    assert apply_protocol("first_9", encoder, head).trainable_encoder == count_parameters(
        encoder.parameters()
    )


def test_first_n_layers_of_the_published_vit_count_patch_embed_then_blocks():
    encoder, head = _PublishedViT(depth=3), nn.Linear(8, 3)
    names = [name for name, _ in encoder_layers(encoder)]
    assert names == ["adapter", "patch_embed", "blocks.0", "blocks.1", "blocks.2"]
    apply_protocol("first_2", encoder, head)
    trained = _trainable_names(encoder)
    assert {"vit_core.cls_token", "vit_core.pos_embed", "vit_core.patch_embed.proj.weight"} <= trained
    assert not any(n.startswith("vit_core.blocks") or n.startswith("vit_core.norm") for n in trained)
    apply_protocol("first_4", encoder, head)
    trained = _trainable_names(encoder)
    assert "vit_core.blocks.1.weight" in trained and "vit_core.blocks.2.weight" not in trained
    assert "vit_core.norm.weight" not in trained, "the final norm goes with the last block"
    apply_protocol("first_5", encoder, head)
    assert _trainable_names(encoder) == {n for n, _ in encoder.named_parameters()}


def test_every_parameter_of_a_registry_vit_is_in_exactly_one_layer():
    encoder = build_encoder("spec_vit", 6, embed_dim=16, depth=2, num_heads=2, mlp_dim=32)
    layers = encoder_layers(encoder)
    assert len(layers) == 2 + 2
    ids = [id(p) for _, modules in layers for m in modules for p in m.parameters()]
    assert len(ids) == len(set(ids)) and set(ids) == {id(p) for p in encoder.parameters()}


def test_bad_first_n_names_are_refused():
    encoder, head = _PublishedResNet(), nn.Linear(4, 3)
    for name in ("first_0", "first_x", "first_"):
        with pytest.raises(ValueError, match="unknown protocol"):
            apply_protocol(name, encoder, head)
    with pytest.raises(AttributeError, match="does not know its layers"):
        apply_protocol("first_1", TinyEncoder(), head)
