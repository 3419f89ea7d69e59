"""A tiny stand-in encoder for method and protocol tests: the interface of ``training.models``
(``adapter``, ``out_channels``, ``forward_features``) at a few hundred parameters, so the tests
exercise the methods and protocols, not the real backbones."""

from __future__ import annotations

from torch import Tensor, nn


class TinyEncoder(nn.Module):
    """1x1 conv "spectral adapter" (bands -> 4) then a 3x3 conv body, each with BatchNorm."""

    def __init__(self, bands: int = 6, width: int = 8) -> None:
        super().__init__()
        self.adapter = nn.Sequential(nn.Conv2d(bands, 4, 1), nn.BatchNorm2d(4), nn.ReLU())
        self.body = nn.Sequential(nn.Conv2d(4, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU())
        self.out_channels = width

    def forward_features(self, x: Tensor) -> Tensor:
        return self.body(self.adapter(x))

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_features(x).mean(dim=(-2, -1))
