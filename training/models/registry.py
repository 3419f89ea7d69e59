"""Encoders and heads by name, and the task models that combine them.

Every encoder exposes ``adapter`` (the :class:`~training.models.adapter.SpectralAdapter`, or ``None``
for SpectralGPT), ``out_channels``, ``output_stride``, ``forward(x)`` (the pooled embedding the
published models give: (B, 2048) for Spec. ResNet-50, the class token after the final norm for a
Spec. ViT) and ``forward_features(x) -> (B, C, h, w)`` (the map the segmentation heads use), so
protocols (frozen encoder, fine-tune adapter only, full fine-tuning; SpectralEarth 5.3) and heads
need not know which family they hold.

The default names are the published architectures (``../shared/RECIPE.md``); their ``state_dict()``
keys are the released backbone keys (``spectral_adapter.*``, ``resnet.layer*.*``, ``vit_core.*``).
Costs: forward multiply-accumulates per 128 x 128 x 202 image, ``benchmarks/macs.py`` (adapter
3.37 GMAC of each); "os" is the output stride.

===========================  ===================================================  ==  =========  =======
name                         model                                                os  params     GMAC
===========================  ===================================================  ==  =========  =======
``spec_resnet50``            Spec. ResNet-50 as published: wide stride-2 block1   16  24.2 M     11.6
``spec_resnet50_dilated``    same weights, strides -> dilation 1/2/4/8 (segm.)     1  24.2 M     398
``spec_resnet50_os8``        earlier variant: usual stride-1 first bottleneck      8  23.6 M     24.4
``spec_vit_s``               Spec. ViT-S as published (cls token, learned pos.)    4  22.5 M     35.6
``spec_vit_b``               Spec. ViT-B as published                              4  87.5 M     111
``spec_vit_l``               Spec. ViT-L as published                              4  305.5 M    367
``spec_vit_h``               Spec. ViT-H as published                              4  633.7 M    737
``spec_vit_g``               Spec. ViT-g as published: 1536 wide, 40 deep, 24 h.   4  1,138.0 M  1,296
``spec_vit_<size>_sincos``   earlier variant: no cls token, fixed sin-cos, mean    4  S 22.1 M   S 35.6
``spec_vit``                 Spec. ViT with explicit sizes (``embed_dim`` ...)     4
``spectralgpt_s`` .. ``_h``  SpectralGPT encoder, 8x8 x (bands/8) 3D tokens        8  S 22.0 M   S 83.5
===========================  ===================================================  ==  =========  =======
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
    names = ["spec_resnet50", "spec_resnet50_dilated", "spec_resnet50_os8", "spec_vit"]
    names += [f"spec_vit_{s}" for s in VIT_SIZES]
    names += [f"spec_vit_{s}_sincos" for s in VIT_SIZES]
    names += [f"spectralgpt_{s}" for s in VIT_SIZES if s != "g"]
    return names


def build_encoder(name: str, bands: int, **kw: Any) -> Encoder:
    """Build an encoder by name for ``bands`` input bands; ``kw`` goes to the model's constructor.

    Examples: ``build_encoder("spec_vit_s", 202)``; a tiny test model
    ``build_encoder("spec_vit", 7, embed_dim=64, depth=2, num_heads=4)``;
    ``build_encoder("spec_resnet50_dilated", 235, dilated=(True, True, True))`` for output stride 2
    (layer1's stride kept, layer2..4 dilated 2, 4, 8; the published ``dilated=True`` is stride 1).
    """
    key = name.lower()
    if key == "spec_resnet50":
        return spec_resnet50(bands=bands, **kw)
    if key == "spec_resnet50_dilated":
        kw.setdefault("dilated", True)
        return spec_resnet50(bands=bands, **kw)
    if key == "spec_resnet50_os8":
        kw.setdefault("wide_first_block", False)
        return spec_resnet50(bands=bands, **kw)
    if key == "spec_vit":
        return SpecViT(bands=bands, **kw)
    if key.startswith("spec_vit_") and key.endswith("_sincos"):
        size = key.removeprefix("spec_vit_").removesuffix("_sincos")
        if size in VIT_SIZES:
            kw.setdefault("class_token", False)
            kw.setdefault("pos", "sincos")
            return spec_vit(size, bands=bands, **kw)
    if key.startswith("spec_vit_") and key.removeprefix("spec_vit_") in VIT_SIZES:
        return spec_vit(key.removeprefix("spec_vit_"), bands=bands, **kw)
    if key.startswith("spectralgpt_") and key.removeprefix("spectralgpt_") in VIT_SIZES:
        return spectralgpt(key.removeprefix("spectralgpt_"), bands=bands, **kw)
    raise KeyError(f"unknown encoder {name!r}; known: {', '.join(encoder_names())}")


def build_head(task: str, encoder: Encoder, num_classes: int, **kw: Any) -> nn.Module:
    """Head for ``task`` on ``encoder``'s feature map.

    - ``classification`` / ``multilabel``: :class:`LinearHead` on the pooled embedding, logits
      (B, classes).
    - ``segmentation``: the published :class:`FCNHead` for a ResNet (logits up-sampled bilinearly to
      the input), the published :class:`UpsamplingHead` for a ViT/SpectralGPT
      (``log2(output_stride)`` 2x stages).
    - ``regression``: :class:`MLPHead` (two linear layers on the pooled embedding).
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


def task_logits(encoder: nn.Module, head: nn.Module, images: torch.Tensor, task: str) -> torch.Tensor:
    """The head's logits for ``task``: a segmentation head reads the feature map, every other head
    the pooled embedding ``encoder(images)`` (the class token of a published ViT, as published)."""
    features = encoder.forward_features(images) if task in SEGMENTATION_TASKS else encoder(images)
    return head(features, size=tuple(images.shape[-2:]))


class TaskModel(nn.Module):
    """Encoder + head; ``forward(images)`` returns the head's logits (see subclasses).

    Classification and regression heads get the encoder's pooled embedding ``encoder(images)`` (the
    class token for a published ViT, as the published models), segmentation heads the feature map.
    """

    task = "classification"

    def __init__(self, encoder: Encoder, head: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = head

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return task_logits(self.encoder, self.head, images, self.task)


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
