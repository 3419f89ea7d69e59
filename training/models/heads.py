"""Task heads on top of an encoder's feature map (B, C, h, w).

Sources: SpectralEarth section 5.2: "We append a linear layer to the pretrained encoders" for the
multi-label EnMAP-CORINE task (:class:`LinearHead`, on the encoder's pooled embedding: the class
token for a ViT); for Hyperview regression "two fully connected layers" (:class:`MLPHead`). The two
segmentation heads are the published code's (``../shared/RECIPE.md``, "Backbones"):
:class:`FCNHead` on the dilated Spec. ResNet-50 (Conv3x3 C -> C/8 without bias, BN, ReLU, Conv1x1 ->
K, no dropout) and :class:`UpsamplingHead` on the ViT's 32 x 32 patch-token map ([Upsample x2
bilinear, Conv3x3 D -> 128, BN, ReLU], [Upsample x2 bilinear, Conv3x3 128 -> K]).

Heads take either a feature map (B, C, h, w), which the classification and regression heads average
over space, or an already pooled embedding (B, C) (``encoder(x)``), which they use as it is.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def pooled(features: torch.Tensor) -> torch.Tensor:
    """(B, C) as it is; (B, C, h, w) averaged over space."""
    return features if features.ndim == 2 else features.mean(dim=(-2, -1))


def _to_size(logits: torch.Tensor, size: tuple[int, int] | None) -> torch.Tensor:
    """Bilinear resize of logits to ``size`` when given and different."""
    if size is not None and tuple(logits.shape[-2:]) != tuple(size):
        logits = F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
    return logits


class LinearHead(nn.Module):
    """One linear layer on the pooled embedding: (B, C) or (B, C, h, w) -> (B, num_classes) logits.

    For multi-label classification (EnMAP-CORINE, 19 classes) train with BCE-with-logits.
    """

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.fc = nn.Linear(in_channels, num_classes)

    def forward(self, features: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
        return self.fc(pooled(features))


class MLPHead(nn.Module):
    """Two fully connected layers on the pooled embedding (SpectralEarth's Hyperview regression)."""

    def __init__(self, in_channels: int, num_outputs: int, hidden: int = 512) -> None:
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(in_channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, num_outputs)
        )

    def forward(self, features: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
        return self.mlp(pooled(features))


class FCNHead(nn.Module):
    """The published FCN head: Conv3x3 (C -> C / ``reduction``, no bias), BN, ReLU, [dropout], Conv1x1.

    Published: ``reduction=8``, no dropout (torchvision's FCN head has 4 and 0.1). The logits are
    bilinearly up-sampled to ``size`` when the feature map is smaller (output stride > 1).
    """

    def __init__(self, in_channels: int, num_classes: int, reduction: int = 8, dropout: float = 0.0) -> None:
        super().__init__()
        inter = max(in_channels // reduction, 1)
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, inter, 3, padding=1, bias=False),
            nn.BatchNorm2d(inter),
            nn.ReLU(inplace=True),
        ]
        if dropout:
            layers.append(nn.Dropout(dropout))
        layers.append(nn.Conv2d(inter, num_classes, 1))
        self.block = nn.Sequential(*layers)

    def forward(self, features: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
        return _to_size(self.block(features), size)


class UpsamplingHead(nn.Module):
    """The published ViT segmentation head, from the patch-token map back to full resolution.

    For ``scale=4`` (4x4 patches: 32 -> 128 px) exactly the published two stages,
    [Upsample x2 bilinear, Conv3x3 C -> ``hidden``, BN, ReLU] and [Upsample x2 bilinear, Conv3x3
    ``hidden`` -> K]. Another power of two adds or drops [Upsample, Conv3x3, BN, ReLU] stages
    (SpectralGPT's 8x8 patches: three). Any remaining size mismatch (scale not a power of two, odd
    input size) is closed by bilinear interpolation of the logits.
    """

    def __init__(self, in_channels: int, num_classes: int, scale: int = 4, hidden: int = 128) -> None:
        super().__init__()
        n_stages = max(int(math.log2(scale)), 0) if scale >= 1 else 0
        layers: list[nn.Module] = []
        channels = in_channels
        for _ in range(n_stages - 1):
            layers += [
                nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                nn.Conv2d(channels, hidden, 3, padding=1),
                nn.BatchNorm2d(hidden),
                nn.ReLU(inplace=True),
            ]
            channels = hidden
        if n_stages:
            layers.append(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False))
        layers.append(nn.Conv2d(channels, num_classes, 3, padding=1))
        self.up = nn.Sequential(*layers)

    def forward(self, features: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
        return _to_size(self.up(features), size)
