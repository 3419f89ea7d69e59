"""The published SpectralEarth backbones (../shared/RECIPE.md "Backbones"): counts, stages, keys, heads.

The expected key lists are written here from RECIPE.md's description, not taken from the models, so
a renamed or extra tensor fails. Large models are built and run on the ``meta`` device (shapes only,
nothing allocated).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from training.models.heads import FCNHead, UpsamplingHead
from training.models.registry import (
    ClassificationModel,
    SegmentationModel,
    build_encoder,
    build_head,
    count_parameters,
)

BANDS = 202
PX = 128

#: RECIPE.md: parameters with class token and position table (ViT), without fc (ResNet).
PUBLISHED_PARAMETERS = {
    "spec_resnet50": 24_202_624,
    "spec_resnet50_dilated": 24_202_624,
    "spec_vit_s": 22_531_328,
    "spec_vit_b": 87_473_792,
    "spec_vit_l": 305_516_416,
    "spec_vit_h": 633_672_832,
    "spec_vit_g": 1_138_043_264,  # RECIPE.md: "about 1,138 M"
}

#: RECIPE.md: width, depth, heads (MLP 4x width).
VIT_PUBLISHED = {
    "s": (384, 12, 6),
    "b": (768, 12, 12),
    "l": (1024, 24, 16),
    "h": (1280, 32, 16),
    "g": (1536, 40, 24),
}

BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def _meta(name: str, **kw) -> nn.Module:
    with torch.device("meta"):
        return build_encoder(name, BANDS, **kw)


def adapter_keys() -> set[str]:
    """``spectral_adapter.{0,3,6}`` Conv3d (weight, bias), ``{1,4,7}`` BatchNorm3d."""
    keys = {f"spectral_adapter.{i}.{p}" for i in (0, 3, 6) for p in ("weight", "bias")}
    return keys | {f"spectral_adapter.{i}.{p}" for i in (1, 4, 7) for p in BN}


def resnet_keys() -> set[str]:
    """timm resnet50 ``layer1..4`` ([3, 4, 6, 3] bottlenecks; the first of each with downsample)."""
    keys = adapter_keys()
    for stage, blocks in enumerate((3, 4, 6, 3), start=1):
        for j in range(blocks):
            prefix = f"resnet.layer{stage}.{j}"
            keys |= {f"{prefix}.conv{c}.weight" for c in (1, 2, 3)}
            keys |= {f"{prefix}.bn{c}.{p}" for c in (1, 2, 3) for p in BN}
            if j == 0:
                keys |= {f"{prefix}.downsample.0.weight"} | {f"{prefix}.downsample.1.{p}" for p in BN}
    return keys


def vit_keys(depth: int) -> set[str]:
    """timm VisionTransformer under ``vit_core`` without ``head``."""
    keys = adapter_keys() | {"vit_core.cls_token", "vit_core.pos_embed"}
    keys |= {"vit_core.patch_embed.proj.weight", "vit_core.patch_embed.proj.bias"}
    keys |= {"vit_core.norm.weight", "vit_core.norm.bias"}
    parts = ("norm1", "attn.qkv", "attn.proj", "norm2", "mlp.fc1", "mlp.fc2")
    return keys | {
        f"vit_core.blocks.{i}.{m}.{p}" for i in range(depth) for m in parts for p in ("weight", "bias")
    }


# --- parameter counts -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(PUBLISHED_PARAMETERS))
def test_published_parameter_counts(name: str) -> None:
    model = _meta(name)
    n = count_parameters(model)
    print(f"{name}: {n:,} parameters")
    assert n == PUBLISHED_PARAMETERS[name]
    assert count_parameters(model.adapter) == 56_192


def test_vit_g_rounds_to_the_published_1138m() -> None:
    assert round(PUBLISHED_PARAMETERS["spec_vit_g"] / 1e6) == 1138


# --- state-dict keys: exactly the released backbone layout ----------------------------------------


@pytest.mark.parametrize("name", ["spec_resnet50", "spec_resnet50_dilated"])
def test_resnet_state_dict_keys_are_the_published(name: str) -> None:
    assert set(_meta(name).state_dict()) == resnet_keys()


@pytest.mark.parametrize("size", sorted(VIT_PUBLISHED))
def test_vit_state_dict_keys_and_shapes_are_the_published(size: str) -> None:
    width, depth, heads = VIT_PUBLISHED[size]
    model = _meta(f"spec_vit_{size}")
    state = model.state_dict()
    assert set(state) == vit_keys(depth)
    assert state["vit_core.cls_token"].shape == (1, 1, width)
    assert state["vit_core.pos_embed"].shape == (1, 1025, width)
    assert state["vit_core.patch_embed.proj.weight"].shape == (width, 128, 4, 4)
    assert state["vit_core.blocks.0.attn.qkv.bias"].shape == (3 * width,)
    assert state["vit_core.blocks.0.mlp.fc1.weight"].shape == (4 * width, width)
    assert model.blocks[0].attn.num_heads == heads
    assert model.norm.eps == model.blocks[0].norm1.eps == 1e-6


def test_released_state_dict_loads_ignoring_only_the_classifier() -> None:
    """A released backbone (our keys plus ``resnet.fc``) loads with strict=False, missing nothing."""
    source = build_encoder("spec_resnet50", BANDS)
    released = dict(source.state_dict())
    released["resnet.fc.weight"], released["resnet.fc.bias"] = torch.zeros(1000, 2048), torch.zeros(1000)
    target = build_encoder("spec_resnet50", BANDS)
    result = target.load_state_dict(released, strict=False)
    assert result.missing_keys == []
    assert sorted(result.unexpected_keys) == ["resnet.fc.bias", "resnet.fc.weight"]


# --- adapter, stages and forward shapes -----------------------------------------------------------


def test_published_adapter_layout_and_spectral_lengths() -> None:
    adapter = build_encoder("spec_resnet50", BANDS).adapter
    convs = [m for m in adapter if isinstance(m, nn.Conv3d)]
    assert [(c.kernel_size[0], c.stride[0], c.padding) for c in convs] == [
        (7, 5, (1, 0, 0)),
        (7, 5, (1, 0, 0)),
        (5, 3, (1, 0, 0)),
    ]
    assert isinstance(adapter[9], nn.AdaptiveAvgPool3d)
    # 202 -> 40 -> 8 -> 2 -> mean, step by step through the published Sequential.
    lengths, y = [], torch.randn(1, 1, BANDS, 2, 2)
    for layer in adapter:
        y = layer(y)
        if isinstance(layer, nn.Conv3d):
            lengths.append(y.shape[2])
    assert lengths == [40, 8, 2] and y.shape == (1, 128, 1, 2, 2)


def test_resnet50_stages_and_output_stride_16() -> None:
    model = _meta("spec_resnet50")
    wide = model.layer1[0]
    assert (wide.conv1.out_channels, wide.conv2.stride, wide.conv3.out_channels) == (256, (2, 2), 256)
    assert wide.downsample[0].stride == (2, 2) and wide.downsample[0].in_channels == 128
    assert [m.conv2.stride for m in (model.layer2[0], model.layer3[0], model.layer4[0])] == [(2, 2)] * 3
    with torch.device("meta"):
        maps = model.stage_features(torch.empty(2, BANDS, PX, PX))
        pooled = model(torch.empty(2, BANDS, PX, PX))
    assert [tuple(m.shape[1:]) for m in maps] == [(256, 64, 64), (512, 32, 32), (1024, 16, 16), (2048, 8, 8)]
    assert model.output_stride == 16 and pooled.shape == (2, 2048)


def test_resnet50_pooled_embedding_is_the_mean_of_layer4() -> None:
    model = build_encoder("spec_resnet50", BANDS).eval()
    x = torch.randn(1, BANDS, PX, PX)
    with torch.no_grad():
        assert torch.allclose(model(x), model.forward_features(x).mean(dim=(-2, -1)))


def test_segmentation_resnet_is_dilated_1_2_4_8_at_full_resolution() -> None:
    model = _meta("spec_resnet50_dilated")
    for stage, dilation in zip(
        (model.layer1, model.layer2, model.layer3, model.layer4), (1, 2, 4, 8), strict=True
    ):
        assert all(block.conv2.dilation == (dilation, dilation) for block in stage)
        assert all(block.conv2.stride == (1, 1) for block in stage)
        assert stage[0].downsample[0].stride == (1, 1)
    with torch.device("meta"):
        maps = model.stage_features(torch.empty(1, BANDS, PX, PX))
    assert [tuple(m.shape[1:]) for m in maps] == [(c, PX, PX) for c in (256, 512, 1024, 2048)]
    assert model.output_stride == 1


@pytest.mark.parametrize("size", sorted(VIT_PUBLISHED))
def test_vit_forward_shapes(size: str) -> None:
    width = VIT_PUBLISHED[size][0]
    model = _meta(f"spec_vit_{size}")
    with torch.device("meta"):
        x = torch.empty(2, BANDS, PX, PX)
        pooled, features = model(x), model.forward_features(x)
    assert pooled.shape == (2, width) and features.shape == (2, width, 32, 32)


def _reference_vit(state: dict[str, torch.Tensor], x: torch.Tensor, depth: int, heads: int) -> torch.Tensor:
    """timm's VisionTransformer.forward_features + token pooling, written out on the state dict."""
    tokens = F.conv2d(
        x, state["vit_core.patch_embed.proj.weight"], state["vit_core.patch_embed.proj.bias"], stride=4
    )
    tokens = tokens.flatten(2).transpose(1, 2)
    b, _, d = tokens.shape
    tokens = (
        torch.cat([state["vit_core.cls_token"].expand(b, -1, -1), tokens], dim=1)
        + state["vit_core.pos_embed"]
    )

    def ln(t: torch.Tensor, name: str) -> torch.Tensor:
        return F.layer_norm(t, (d,), state[f"{name}.weight"], state[f"{name}.bias"], eps=1e-6)

    for i in range(depth):
        p = f"vit_core.blocks.{i}"
        q, k, v = F.linear(
            ln(tokens, f"{p}.norm1"), state[f"{p}.attn.qkv.weight"], state[f"{p}.attn.qkv.bias"]
        ).chunk(3, -1)
        q, k, v = (t.reshape(b, -1, heads, d // heads).transpose(1, 2) for t in (q, k, v))
        attn = (q @ k.transpose(-2, -1) / (d // heads) ** 0.5).softmax(-1) @ v
        attn = attn.transpose(1, 2).reshape(b, -1, d)
        tokens = tokens + F.linear(attn, state[f"{p}.attn.proj.weight"], state[f"{p}.attn.proj.bias"])
        hidden = F.gelu(
            F.linear(ln(tokens, f"{p}.norm2"), state[f"{p}.mlp.fc1.weight"], state[f"{p}.mlp.fc1.bias"])
        )
        tokens = tokens + F.linear(hidden, state[f"{p}.mlp.fc2.weight"], state[f"{p}.mlp.fc2.bias"])
    return ln(tokens, "vit_core.norm")


def test_vit_embedding_is_the_class_token_after_the_final_norm() -> None:
    """Against a written-out timm forward: class token + learned table, final norm, token 0 pooled."""
    torch.manual_seed(0)
    model = build_encoder("spec_vit", 7, embed_dim=32, depth=2, num_heads=4, img_size=32).eval()
    x = torch.randn(2, 7, 32, 32)
    state = model.state_dict()
    with torch.no_grad():
        reference = _reference_vit(state, model.adapter(x), depth=2, heads=4)
        assert torch.allclose(model(x), reference[:, 0], atol=1e-5)
        tokens = reference[:, 1:].transpose(1, 2).reshape(2, 32, 8, 8)
        assert torch.allclose(model.forward_features(x), tokens, atol=1e-5)


def test_vit_initialisation_as_timm() -> None:
    torch.manual_seed(0)
    model = build_encoder("spec_vit_s", BANDS)
    pos, cls = model.vit_core.pos_embed, model.vit_core.cls_token
    assert pos.std().item() == pytest.approx(0.02, rel=0.05) and pos.abs().max() <= 2.0
    assert cls.abs().max() < 1e-4
    assert model.blocks[0].attn.qkv.weight.std().item() == pytest.approx(0.02, rel=0.05)
    assert torch.count_nonzero(model.blocks[0].attn.qkv.bias) == 0


# --- published segmentation heads -----------------------------------------------------------------


def test_fcn_head_is_the_published() -> None:
    head = build_head("segmentation", _meta("spec_resnet50_dilated"), 15)
    assert isinstance(head, FCNHead)
    layers = list(head.block)
    assert [type(m) for m in layers] == [nn.Conv2d, nn.BatchNorm2d, nn.ReLU, nn.Conv2d]
    assert (layers[0].in_channels, layers[0].out_channels, layers[0].kernel_size) == (2048, 256, (3, 3))
    assert layers[0].bias is None and layers[3].kernel_size == (1, 1) and layers[3].out_channels == 15
    logits = head(torch.randn(2, 2048, 8, 8))
    assert logits.shape == (2, 15, 8, 8)


def test_vit_segmentation_head_is_the_published() -> None:
    encoder = _meta("spec_vit_s")
    head = build_head("segmentation", encoder, 15)
    assert isinstance(head, UpsamplingHead)
    layers = list(head.up)
    assert [type(m) for m in layers] == [
        nn.Upsample,
        nn.Conv2d,
        nn.BatchNorm2d,
        nn.ReLU,
        nn.Upsample,
        nn.Conv2d,
    ]
    assert all(m.scale_factor == 2 and m.mode == "bilinear" for m in layers if isinstance(m, nn.Upsample))
    assert (layers[1].in_channels, layers[1].out_channels, layers[1].kernel_size) == (384, 128, (3, 3))
    assert (layers[5].in_channels, layers[5].out_channels, layers[5].kernel_size) == (128, 15, (3, 3))
    assert head(torch.randn(2, 384, 32, 32)).shape == (2, 15, PX, PX)


def test_segmentation_models_give_full_resolution_logits() -> None:
    with torch.device("meta"):
        x = torch.empty(1, BANDS, PX, PX)
        vit = SegmentationModel.build("spec_vit_s", BANDS, 15)
        resnet = SegmentationModel.build("spec_resnet50_dilated", BANDS, 15)
        assert vit(x).shape == resnet(x).shape == (1, 15, PX, PX)


def test_adapter_alias_adds_no_keys_and_classification_uses_the_pooled_embedding() -> None:
    """``encoder.adapter`` is the published ``spectral_adapter``; the linear head reads ``encoder(x)``."""
    torch.manual_seed(0)
    model = ClassificationModel.build(
        "spec_vit", 7, 19, embed_dim=32, depth=1, num_heads=4, img_size=16
    ).eval()
    assert model.encoder.adapter is model.encoder.spectral_adapter
    assert not any(k.startswith("encoder.adapter.") for k in model.state_dict())
    x = torch.randn(2, 7, 16, 16)
    with torch.no_grad():
        expected = model.head.fc(model.encoder(x))  # the class token, not the mean of the patch tokens
        assert torch.allclose(model(x), expected)
        assert not torch.allclose(
            model(x), model.head.fc(model.encoder.forward_features(x).mean(dim=(-2, -1)))
        )
