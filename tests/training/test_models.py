"""Encoders, adapter and heads: shapes at tiny sizes, published parameter counts on the meta device."""

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
    # 202 -> 40 -> 7 -> 1 (EnMAP), 235 -> 46 -> 8 -> 2 (DESIS), padded below 137 bands.
    assert SpectralAdapter.spectral_length(202) == 1
    assert SpectralAdapter.spectral_length(235) == 2
    assert SpectralAdapter.spectral_length(MIN_BANDS_UNPADDED) == 1
    assert SpectralAdapter.spectral_length(7) == 1


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
    x = torch.randn(1, 7, 16, 16)
    plain = build_encoder("spec_resnet50", 7)
    assert isinstance(plain, SpecResNet) and plain.adapter is not None
    assert plain.output_stride == 8 and plain.out_channels == 2048
    assert plain.forward_features(x).shape == (1, 2048, 2, 2)
    dilated = build_encoder("spec_resnet50_dilated", 7)
    assert dilated.output_stride == 1
    assert dilated.forward_features(x).shape == (1, 2048, 16, 16)
    os2 = build_encoder("spec_resnet50_dilated", 7, dilated=(False, True, True))
    assert os2.output_stride == 2
    assert os2.forward_features(x).shape == (1, 2048, 8, 8)


def test_spec_resnet_stage_layout() -> None:
    with torch.device("meta"):
        model = build_encoder("spec_resnet50", 202)
    assert [len(s) for s in (model.layer1, model.layer2, model.layer3, model.layer4)] == [3, 4, 6, 3]
    assert model.layer1[0].conv1.in_channels == 128  # the first bottleneck takes the adapter's 128
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
    model = build_encoder("spec_vit_s", 7)
    assert model.forward_features(torch.randn(1, 7, 8, 8)).shape == (1, 384, 2, 2)


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


# --- parameter counts (meta device, nothing is allocated) -----------------------------------------

# Transformer blocks of the usual ViTs (no patch embedding, no class token), in millions:
# S 21.3, B 85.1, L 302.3, H 629.8, g/14 1010.0 (ViT-S/16 22.1M, B 86.6M, L 304M, H 632M, g 1011M with
# their 3-channel patch embeddings). Ours add the adapter (56K) and a 4x4x128 patch embedding.
PARAM_RANGES_M = {
    "spec_vit_s": (21.5, 22.6),
    "spec_vit_b": (86.0, 87.5),
    "spec_vit_l": (303.0, 306.0),
    "spec_vit_h": (630.0, 635.0),
    "spec_vit_g": (1005.0, 1020.0),
}


@pytest.mark.parametrize("name", sorted(PARAM_RANGES_M))
def test_vit_parameter_counts(name: str) -> None:
    with torch.device("meta"):
        model = build_encoder(name, 202)
    n = count_parameters(model)
    embed = 128 * 16 * model.embed_dim + model.embed_dim
    print(f"{name}: {n:,} parameters (adapter 56,192, patch embedding {embed:,})")
    low, high = PARAM_RANGES_M[name]
    assert low * 1e6 <= n <= high * 1e6
    assert count_parameters(model.adapter) == 56_192


def test_spec_resnet50_parameter_count() -> None:
    """torchvision ResNet-50 without fc: 23,508,032; - stem 9,536 + 20,480 (128-ch input) + adapter."""
    with torch.device("meta"):
        plain = build_encoder("spec_resnet50", 202)
        dilated = build_encoder("spec_resnet50_dilated", 202)
    n = count_parameters(plain)
    print(f"spec_resnet50: {n:,} parameters")
    assert n == 23_508_032 - 9_536 + 4_096 + 16_384 + 56_192 == 23_575_168
    assert count_parameters(dilated) == n  # dilation changes no weights
    assert count_parameters(plain.adapter) / n == pytest.approx(0.0024, abs=1e-4)  # paper: "0.3%"


# --- heads and task models ------------------------------------------------------------------------


def test_heads_shapes() -> None:
    feats = torch.randn(2, 32, 4, 4)
    assert LinearHead(32, 19)(feats).shape == (2, 19)
    assert MLPHead(32, 4, hidden=16)(feats).shape == (2, 4)
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
