"""Task heads on top of an encoder's feature map (B, C, h, w).

Sources: SpectralEarth section 5.2: "We append a linear layer to the pretrained encoders" for the
multi-label EnMAP-CORINE task; for segmentation the ResNet gets atrous convolutions and "two final
convolutional layers" (:class:`FCNHead`, the torchvision FCN head: 3x3 conv, BN, ReLU, dropout 0.1,
1x1 conv), and the ViT "reshape[s] the tokens from the last layer and add[s] two additional
convolutional layers with upscaling to recover the full spatial resolution" (:class:`UpsamplingHead`);
for Hyperview regression "two fully connected layers" (:class:`MLPHead`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class LinearHead(nn.Module):
    """Global average pooling + one linear layer: (B, C, h, w) -> (B, num_classes) logits.

    For multi-label classification (EnMAP-CORINE, 19 classes) train with BCE-with-logits.
    """

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.fc = nn.Linear(in_channels, num_classes)

    def forward(self, features: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
        return self.fc(features.mean(dim=(-2, -1)))


class MLPHead(nn.Module):
    """Global average pooling + two fully connected layers (SpectralEarth's Hyperview regression)."""

    def __init__(self, in_channels: int, num_outputs: int, hidden: int = 512) -> None:
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(in_channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, num_outputs)
        )

    def forward(self, features: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
        return self.mlp(features.mean(dim=(-2, -1)))


class FCNHead(nn.Module):
    """FCN head for the (dilated) Spec. ResNet: 3x3 conv (C -> C/4), BN, ReLU, dropout, 1x1 conv.

    The logits are bilinearly up-sampled to ``size`` (the input resolution) when the feature map is
    smaller (output stride > 1).
    """

    def __init__(self, in_channels: int, num_classes: int, dropout: float = 0.1) -> None:
        super().__init__()
        inter = max(in_channels // 4, 1)
        self.block = nn.Sequential(
            nn.Conv2d(in_channels, inter, 3, padding=1, bias=False),
            nn.BatchNorm2d(inter),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Conv2d(inter, num_classes, 1),
        )

    def forward(self, features: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
        logits = self.block(features)
        if size is not None and tuple(logits.shape[-2:]) != tuple(size):
            logits = F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
        return logits


class UpsamplingHead(nn.Module):
    """Convolutional up-sampling from the ViT token map (32 x 32 for 128 px) to full resolution.

    ``log2(scale)`` stages of 2x transposed convolution (kernel 2, stride 2) + BN + ReLU, halving the
    width each time from ``hidden`` (for scale 4: 32 -> 64 -> 128 px, the paper's "two additional
    convolutional layers with upscaling"), then a 1x1 conv to the classes. Any remaining size
    mismatch (scale not a power of two, odd input size) is closed by bilinear interpolation.
    """

    def __init__(self, in_channels: int, num_classes: int, scale: int = 4, hidden: int = 256) -> None:
        super().__init__()
        n_stages = max(int(math.log2(scale)), 0) if scale >= 1 else 0
        layers: list[nn.Module] = []
        channels = in_channels
        width = hidden
        for _ in range(n_stages):
            layers += [
                nn.ConvTranspose2d(channels, width, kernel_size=2, stride=2, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
            ]
            channels, width = width, max(width // 2, 8)
        self.up = nn.Sequential(*layers)
        self.classifier = nn.Conv2d(channels, num_classes, 1)

    def forward(self, features: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
        logits = self.classifier(self.up(features))
        if size is not None and tuple(logits.shape[-2:]) != tuple(size):
            logits = F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
        return logits
