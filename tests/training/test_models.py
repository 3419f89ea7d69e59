"""Encoders, adapter and heads: shapes at tiny sizes, the earlier variants' parameter counts.

The published models' counts, stage sizes and state-dict keys are in test_published_models.py.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from training.models.adapter import MIN_BANDS_UNPADDED, SpectralAdapter
from training.models.heads import FCNHead, LinearHead, MLPHead, UpsamplingHead
from training.models.registry import (
    ClassificationModel,
    RegressionModel,
    SegmentationModel,
    build_encoder,
    build_head,
    count_parameters,
    encoder_names,
)
from training.models.resnet import SpecResNet
from training.models.spectralgpt import SpectralGPTEncoder
from training.models.vit import SpecViT, sincos_2d

TINY_VIT = {"embed_dim": 64, "depth": 2, "num_heads": 4}
TINY_GPT = {"embed_dim": 64, "depth": 2, "num_heads": 4, "num_groups": 2, "img_size": 16}
TINY_RESNET = {"layers": (1, 1, 1, 1), "widths": (8, 16, 32, 64)}


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


# --- spectral adapter -------------------------------------------------------------------------


@pytest.mark.parametrize("bands", [202, 235, 150, 7, 1])
def test_adapter_maps_any_band_count_to_128_channels(bands: int) -> None:
    adapter = SpectralAdapter()
    out = adapter(torch.randn(2, bands, 8, 8))
    assert out.shape == (2, 128, 8, 8)
    assert torch.isfinite(out).all()


def test_adapter_remaining_spectral_length() -> None:
    # Published padding 1: 202 -> 40 -> 8 -> 2 (EnMAP), 235 -> 47 -> 9 -> 3 (DESIS); padded below 75.
    assert SpectralAdapter.spectral_length(202) == 2
    assert SpectralAdapter.spectral_length(235) == 3
    assert SpectralAdapter.spectral_length(MIN_BANDS_UNPADDED) == 1
    assert SpectralAdapter.spectral_length(7) == 1


def test_adapter_extra_padding_only_below_the_published_minimum() -> None:
    """At >= 75 bands the adapter is exactly the published Sequential (no extra padding)."""
    adapter = SpectralAdapter().eval()
    x = torch.randn(1, MIN_BANDS_UNPADDED, 3, 3)
    plain = nn.Sequential(*adapter)(x.unsqueeze(1)).squeeze(2)
    assert torch.equal(adapter(x), plain)
    with pytest.raises(RuntimeError):
        nn.Sequential(*adapter)(torch.randn(1, 1, MIN_BANDS_UNPADDED - 1, 3, 3))


def test_adapter_parameter_count_matches_paper() -> None:
    """SpectralEarth 6.2: fine-tuning the adapter "corresponds to 56K trainable parameters"."""
    n = count_parameters(SpectralAdapter())
    print(f"adapter trainable parameters: {n}")
    assert n == 56_192  # conv weights+biases and BN affine; 0.3 % off the rounded 56K
    assert abs(n - 56_000) / 56_000 < 0.01


def test_adapter_filters_each_pixel_on_its_own() -> None:
    """No spatial mixing: changing one pixel changes only that pixel's features (eval mode)."""
    adapter = SpectralAdapter().eval()
    x = torch.randn(1, 202, 6, 6)
    y = x.clone()
    y[0, :, 2, 3] += 1.0
    diff = (adapter(x) - adapter(y)).abs().sum(dim=1)[0]
    changed = diff > 0
    assert changed[2, 3]
    changed[2, 3] = False
    assert not changed.any()


# --- encoders: shapes -------------------------------------------------------------------------


def test_spec_resnet50_output_strides() -> None:
    x = torch.randn(1, 7, 32, 32)
    plain = build_encoder("spec_resnet50", 7)
    assert isinstance(plain, SpecResNet) and plain.adapter is not None
    assert plain.output_stride == 16 and plain.out_channels == 2048
    assert plain.forward_features(x).shape == (1, 2048, 2, 2)
    assert plain(x).shape == (1, 2048)
    dilated = build_encoder("spec_resnet50_dilated", 7, **TINY_RESNET)
    assert dilated.output_stride == 1
    assert dilated.forward_features(x).shape == (1, 256, 32, 32)
    # A 3-tuple dilates layer2..4 torchvision-style; layer1 keeps its stride 2.
    os2 = build_encoder("spec_resnet50_dilated", 7, dilated=(True, True, True), **TINY_RESNET)
    assert os2.output_stride == 2
    assert os2.forward_features(x).shape == (1, 256, 16, 16)
    assert [m.conv2.dilation[0] for m in (os2.layer2[0], os2.layer3[0], os2.layer4[0])] == [2, 4, 8]
    os4 = build_encoder("spec_resnet50_dilated", 7, dilated=(False, True, True), **TINY_RESNET)
    assert os4.output_stride == 4
    assert [m.conv2.dilation[0] for m in (os4.layer2[-1], os4.layer3[-1], os4.layer4[-1])] == [1, 2, 4]
    os8 = build_encoder("spec_resnet50_os8", 7)
    assert os8.output_stride == 8
    assert os8.forward_features(x).shape == (1, 2048, 4, 4)
    with pytest.raises(ValueError, match="dilated"):
        build_encoder("spec_resnet50_dilated", 7, dilated=(True, False))


def test_spec_resnet_stage_layout() -> None:
    with torch.device("meta"):
        model = build_encoder("spec_resnet50", 202)
    assert [len(s) for s in (model.layer1, model.layer2, model.layer3, model.layer4)] == [3, 4, 6, 3]
    assert model.layer1[0].conv1.in_channels == 128  # the first bottleneck takes the adapter's 128
    assert model.layer1[0].conv1.out_channels == 256  # published: the wide first block
    assert not any(isinstance(m, nn.MaxPool2d) for m in model.modules())  # no stem pooling


@pytest.mark.parametrize("bands", [202, 235, 7])
def test_tiny_vit_shapes(bands: int) -> None:
    model = build_encoder("spec_vit", bands, **TINY_VIT)
    assert isinstance(model, SpecViT) and model.adapter is not None
    x = torch.randn(2, bands, 16, 16)
    assert model.forward_tokens(x).shape == (2, 16, 64)
    assert model.forward_features(x).shape == (2, 64, 4, 4)
    assert model.output_stride == 4 and model.out_channels == 64


def test_vit_s_on_a_small_image() -> None:
    """Another grid than the table's 32 x 32: the learned positions are resampled."""
    model = build_encoder("spec_vit_s", 7)
    assert model.forward_features(torch.randn(1, 7, 8, 8)).shape == (1, 384, 2, 2)
    assert model.pos_embed(2, 3).shape == (1, 6, 384)
    assert torch.equal(model.pos_embed(32, 32), model.vit_core.pos_embed[:, 1:])


def test_sincos_variant_has_no_class_token_and_pools_the_tokens() -> None:
    model = build_encoder("spec_vit_s_sincos", 7, depth=2).eval()
    assert model.cls_token is None and model.vit_core.pos_embed is None
    x = torch.randn(2, 7, 16, 16)
    assert torch.allclose(model(x), model.forward_tokens(x).mean(dim=1), atol=1e-6)
    assert torch.equal(model.pos_embed(4, 4), sincos_2d(384, 4, 4).unsqueeze(0))


def test_vit_tokens_for_published_patch_size() -> None:
    """128 px with 4x4 patches gives a 32 x 32 token map (shape only, on the meta device)."""
    with torch.device("meta"):
        model = build_encoder("spec_vit", 202, **TINY_VIT)
        tokens, h, w = model.embed(torch.empty(1, 202, 128, 128))
    assert (h, w) == (32, 32) and tokens.shape == (1, 1024, 64)


def test_sincos_position_embedding() -> None:
    pos = sincos_2d(64, 4, 5)
    assert pos.shape == (20, 64)
    assert torch.unique(pos, dim=0).shape[0] == 20  # every position distinct
    assert torch.allclose(pos[:, :16].pow(2) + pos[:, 16:32].pow(2), torch.ones(20, 16))
    # MAE's order: the first half encodes the column (x), the second half the row (y).
    assert torch.equal(pos[0, :32], pos[5, :32]) and not torch.equal(pos[0, :32], pos[1, :32])
    assert torch.equal(pos[0, 32:], pos[1, 32:]) and not torch.equal(pos[0, 32:], pos[5, 32:])


def test_tiny_spectralgpt_shapes() -> None:
    model = build_encoder("spectralgpt_s", 7, **TINY_GPT)
    assert isinstance(model, SpectralGPTEncoder) and model.adapter is None
    assert model.spectral_group == 4 and model.num_groups == 2  # 7 bands -> 2 groups of 4 (1 repeated)
    x = torch.randn(2, 7, 16, 16)
    assert model.forward_tokens(x).shape == (2, 2 * 2 * 2, 64)
    assert model.forward_features(x).shape == (2, 64, 2, 2)
    # another image size: the learned spatial table is interpolated (progressive training)
    assert model.forward_features(torch.randn(1, 7, 32, 32)).shape == (1, 64, 4, 4)


def test_spectralgpt_group_sizes_for_sensors() -> None:
    with torch.device("meta"):
        enmap = build_encoder("spectralgpt_s", 202)
        desis = build_encoder("spectralgpt_s", 235)
        s2 = build_encoder("spectralgpt_b", 12, spectral_group=3)
    assert (enmap.spectral_group, enmap.num_groups) == (26, 8)
    assert (desis.spectral_group, desis.num_groups) == (30, 8)
    assert (s2.spectral_group, s2.num_groups, s2.patch_size) == (3, 4, 8)  # the paper's 8x8x3


def test_spectralgpt_patchify_matches_token_projection() -> None:
    """The 3D tokens of ``patchify`` are exactly what the Conv3d projects (same order and layout)."""
    model = build_encoder("spectralgpt_s", 7, **TINY_GPT)
    x = torch.randn(2, 7, 16, 16)
    conv = model.patch_embed(model.pad_bands(x).unsqueeze(1))  # (B, D, G, h, w)
    weight = model.patch_embed.weight.reshape(64, -1)
    linear = model.patchify(x) @ weight.T + model.patch_embed.bias
    assert torch.allclose(conv.permute(0, 2, 3, 4, 1), linear, atol=1e-5)


def test_unknown_encoder_name() -> None:
    with pytest.raises(KeyError, match="spec_vit_s"):
        build_encoder("vit_tiny", 202)
    assert "spec_resnet50_dilated" in encoder_names()


# --- parameter counts of the earlier variants (meta device, nothing is allocated) -----------------


def test_earlier_variant_parameter_counts() -> None:
    """Published counts are in test_published_models.py; these are the kept earlier variants."""
    with torch.device("meta"):
        os8 = build_encoder("spec_resnet50_os8", 202)
        sincos = build_encoder("spec_vit_s_sincos", 202)
    # torchvision ResNet-50 without fc 23,508,032 - stem 9,536 + 20,480 (128-ch input) + adapter.
    assert count_parameters(os8) == 23_508_032 - 9_536 + 4_096 + 16_384 + 56_192 == 23_575_168
    # The published ViT-S less its class token (384) and position table (1025 * 384).
    assert count_parameters(sincos) == 22_531_328 - 384 - 1025 * 384


# --- heads and task models ------------------------------------------------------------------------


def test_heads_shapes() -> None:
    feats = torch.randn(2, 32, 4, 4)
    assert LinearHead(32, 19)(feats).shape == (2, 19)
    assert MLPHead(32, 4, hidden=16)(feats).shape == (2, 4)
    assert LinearHead(32, 19)(feats.mean(dim=(-2, -1))).shape == (2, 19)  # a pooled embedding
    assert FCNHead(32, 15)(feats, size=(16, 16)).shape == (2, 15, 16, 16)
    assert UpsamplingHead(32, 15, scale=4, hidden=16)(feats).shape == (2, 15, 16, 16)
    assert UpsamplingHead(32, 15, scale=4, hidden=16)(feats, size=(18, 18)).shape == (2, 15, 18, 18)


def test_build_head_picks_by_task_and_family() -> None:
    resnet = SpecResNet(bands=7, **TINY_RESNET)
    vit = build_encoder("spec_vit", 7, **TINY_VIT)
    gpt = build_encoder("spectralgpt_s", 7, **TINY_GPT)
    assert isinstance(build_head("multilabel", resnet, 19), LinearHead)
    assert isinstance(build_head("segmentation", resnet, 15), FCNHead)
    assert isinstance(build_head("segmentation", vit, 15), UpsamplingHead)
    assert isinstance(build_head("segmentation", gpt, 15), UpsamplingHead)
    assert isinstance(build_head("regression", vit, 4), MLPHead)
    with pytest.raises(KeyError):
        build_head("detection", vit, 3)


@pytest.mark.parametrize(
    ("name", "kw"),
    [
        ("spec_resnet50_dilated", {"layers": (1, 1, 1, 1), "widths": (8, 16, 32, 64)}),
        ("spec_resnet50", {"layers": (1, 1, 1, 1), "widths": (8, 16, 32, 64)}),
        ("spec_vit", TINY_VIT),
        ("spectralgpt_s", TINY_GPT),
    ],
)
def test_task_models_return_logits_at_input_resolution(name: str, kw: dict) -> None:
    x = torch.randn(2, 7, 16, 16)
    seg = SegmentationModel.build(name, 7, 15, **kw)
    logits = seg(x)
    assert logits.shape == (2, 15, 16, 16)
    logits.mean().backward()
    assert seg.encoder.forward_features(x).shape[1] == seg.encoder.out_channels
    assert ClassificationModel.build(name, 7, 19, **kw)(x).shape == (2, 19)
    assert RegressionModel.build(name, 7, 4, **kw)(x).shape == (2, 4)
