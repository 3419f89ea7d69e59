"""Encoders and heads by name, and the task models that combine them.

Every encoder exposes ``adapter`` (the :class:`~training.models.adapter.SpectralAdapter`, or ``None``
for SpectralGPT), ``out_channels``, ``output_stride`` and ``forward_features(x) -> (B, C, h, w)``, so
protocols (frozen encoder, fine-tune adapter only, full fine-tuning; SpectralEarth 5.3) and heads
need not know which family they hold.

Names:

============================  ===========================================================  ==========
name                          model                                                        out. stride
============================  ===========================================================  ==========
``spec_resnet50``             Spec. ResNet-50 (classification)                             8
``spec_resnet50_dilated``     Spec. ResNet-50, strides -> dilation (segmentation)          1
``spec_vit_s`` .. ``_g``      Spec. ViT S/B/L/H/g, 4x4 patches                             4
``spec_vit``                  Spec. ViT with explicit sizes (``embed_dim``, ``depth`` ...)  4
``spectralgpt_s`` .. ``_h``   SpectralGPT encoder, 8x8 x (bands/8) 3D tokens               8
============================  ===========================================================  ==========
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from training.models.heads import FCNHead, LinearHead, MLPHead, UpsamplingHead
from training.models.resnet import SpecResNet, spec_resnet50
from training.models.spectralgpt import SpectralGPTEncoder, spectralgpt
from training.models.vit import VIT_SIZES, SpecViT, spec_vit

Encoder = SpecResNet | SpecViT | SpectralGPTEncoder

#: Task names accepted by :func:`build_head` and the kind of output each gives.
CLASSIFICATION_TASKS = ("classification", "multilabel")
SEGMENTATION_TASKS = ("segmentation",)
REGRESSION_TASKS = ("regression",)


def encoder_names() -> list[str]:
    """All names :func:`build_encoder` accepts."""
    names = ["spec_resnet50", "spec_resnet50_dilated", "spec_vit"]
    names += [f"spec_vit_{s}" for s in VIT_SIZES]
    names += [f"spectralgpt_{s}" for s in VIT_SIZES if s != "g"]
    return names


def build_encoder(name: str, bands: int, **kw: Any) -> Encoder:
    """Build an encoder by name for ``bands`` input bands; ``kw`` goes to the model's constructor.

    Examples: ``build_encoder("spec_vit_s", 202)``; a tiny test model
    ``build_encoder("spec_vit", 7, embed_dim=64, depth=2, num_heads=4)``;
    ``build_encoder("spec_resnet50_dilated", 235, dilated=(False, True, True))`` for output stride 2.
    """
    key = name.lower()
    if key == "spec_resnet50":
        return spec_resnet50(bands=bands, **kw)
    if key == "spec_resnet50_dilated":
        kw.setdefault("dilated", True)
        return spec_resnet50(bands=bands, **kw)
    if key == "spec_vit":
        return SpecViT(bands=bands, **kw)
    if key.startswith("spec_vit_") and key.removeprefix("spec_vit_") in VIT_SIZES:
        return spec_vit(key.removeprefix("spec_vit_"), bands=bands, **kw)
    if key.startswith("spectralgpt_") and key.removeprefix("spectralgpt_") in VIT_SIZES:
        return spectralgpt(key.removeprefix("spectralgpt_"), bands=bands, **kw)
    raise KeyError(f"unknown encoder {name!r}; known: {', '.join(encoder_names())}")


def build_head(task: str, encoder: Encoder, num_classes: int, **kw: Any) -> nn.Module:
    """Head for ``task`` on ``encoder``'s feature map.

    - ``classification`` / ``multilabel``: :class:`LinearHead` (GAP + linear), logits (B, classes).
    - ``segmentation``: :class:`FCNHead` for a ResNet (logits up-sampled bilinearly to the input),
      :class:`UpsamplingHead` for a ViT/SpectralGPT (``log2(output_stride)`` learned 2x stages).
    - ``regression``: :class:`MLPHead` (GAP + two linear layers), ``num_classes`` outputs.
    """
    task = task.lower()
    channels = encoder.out_channels
    if task in CLASSIFICATION_TASKS:
        return LinearHead(channels, num_classes)
    if task in REGRESSION_TASKS:
        return MLPHead(channels, num_classes, **kw)
    if task in SEGMENTATION_TASKS:
        if isinstance(encoder, SpecResNet):
            return FCNHead(channels, num_classes, **kw)
        return UpsamplingHead(channels, num_classes, scale=encoder.output_stride, **kw)
    raise KeyError(f"unknown task {task!r}; known: classification, multilabel, segmentation, regression")


class TaskModel(nn.Module):
    """Encoder + head; ``forward(images)`` returns the head's logits (see subclasses)."""

    task = "classification"

    def __init__(self, encoder: Encoder, head: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = head

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        features = self.encoder.forward_features(images)
        return self.head(features, size=tuple(images.shape[-2:]))


class ClassificationModel(TaskModel):
    """(B, bands, H, W) -> (B, num_classes) logits (multi-label: apply sigmoid / BCE-with-logits)."""

    task = "classification"

    @classmethod
    def build(cls, encoder_name: str, bands: int, num_classes: int, **kw: Any) -> ClassificationModel:
        encoder = build_encoder(encoder_name, bands, **kw)
        return cls(encoder, build_head(cls.task, encoder, num_classes))


class SegmentationModel(TaskModel):
    """(B, bands, H, W) -> (B, num_classes, H, W) logits at input resolution."""

    task = "segmentation"

    @classmethod
    def build(cls, encoder_name: str, bands: int, num_classes: int, **kw: Any) -> SegmentationModel:
        encoder = build_encoder(encoder_name, bands, **kw)
        return cls(encoder, build_head(cls.task, encoder, num_classes))


class RegressionModel(TaskModel):
    """(B, bands, H, W) -> (B, num_outputs) values (Hyperview soil parameters)."""

    task = "regression"

    @classmethod
    def build(cls, encoder_name: str, bands: int, num_outputs: int, **kw: Any) -> RegressionModel:
        encoder = build_encoder(encoder_name, bands, **kw)
        return cls(encoder, build_head(cls.task, encoder, num_outputs))


def count_parameters(module: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters; works on ``meta``-device models."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)
