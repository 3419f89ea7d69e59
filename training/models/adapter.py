"""The spectral adapter of SpectralEarth: 1D convolutions over the spectral axis, any band count in.

Source: SpectralEarth (Braham et al.), section 4.2 and supplementary section 8.1: "three
(1D Conv + BN + ReLU) layers. The kernel sizes for the 1D convolutions are 7, 7, and 5, with
strides of 5, 5, and 3, respectively. The resulting feature maps have 128 channels. [...] we use a
global pooling layer to aggregate the remaining spectral dimensions (if any)." Section 6.2 says
fine-tuning the adapter means "56K trainable parameters".

The convolutions are written as ``Conv3d`` with kernels ``(k, 1, 1)`` over a ``(B, 1, bands, H, W)``
view of the image: each pixel's spectrum is filtered on its own, with no spatial mixing. Two
consequences the rest of the package relies on:

- the adapter works for any band count (202 for EnMAP as released by SpectralEarth, 235 for DESIS,
  150 for Hyperview): only the length of the remaining spectral axis changes, and it is averaged;
- masking for MAE can happen after the adapter without leaking information between patches.

Remaining spectral length for the published kernels/strides (no padding):
202 bands -> 40 -> 7 -> 1; 235 -> 46 -> 8 -> 2; 150 -> 29 -> 5 -> 1. Without help a stage needs at
least its kernel length, so the adapter as published needs >= 137 bands. For fewer bands (tests,
multispectral inputs) each stage zero-pads the spectral axis symmetrically up to its kernel length
before convolving. This is a no-op for every band count >= 137 and therefore does not change the
published model; zeros are the mean of standardised reflectances and the value of a ReLU output that
is "off", so padding adds no signal.

Parameter count (with conv biases, as ``nn.Conv3d`` has by default, and BN affine weights):
1*32*7+32 + 2*32 + 32*64*7+64 + 2*64 + 64*128*5+128 + 2*128 = 56,192, i.e. the paper's "56K".
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

#: (out_channels, kernel, stride) of the three blocks, from the SpectralEarth supplement (8.1).
ADAPTER_BLOCKS: tuple[tuple[int, int, int], ...] = ((32, 7, 5), (64, 7, 5), (128, 5, 3))

#: Fewest bands the published adapter takes without padding (137 -> 27 -> 5 -> 1).
MIN_BANDS_UNPADDED = 137


class SpectralBlock(nn.Module):
    """Conv over the spectral axis only (kernel ``(k, 1, 1)``, stride ``(s, 1, 1)``), BN3d, ReLU.

    Pads the spectral axis with zeros (symmetrically) up to ``k`` when it is shorter, so that any
    band count gives at least one output step.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int) -> None:
        super().__init__()
        self.kernel = kernel
        self.conv = nn.Conv3d(in_channels, out_channels, (kernel, 1, 1), stride=(stride, 1, 1))
        self.bn = nn.BatchNorm3d(out_channels)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        length = x.shape[2]
        if length < self.kernel:
            missing = self.kernel - length
            # F.pad pads the last dims first: (W_l, W_r, H_l, H_r, D_l, D_r).
            x = F.pad(x, (0, 0, 0, 0, missing // 2, missing - missing // 2))
        return self.act(self.bn(self.conv(x)))


class SpectralAdapter(nn.Module):
    """(B, bands, H, W) with any band count -> (B, 128, H, W), spatial size unchanged.

    Three :class:`SpectralBlock` (channels 32, 64, 128; kernels 7, 7, 5; strides 5, 5, 3) then the
    mean over what is left of the spectral axis (SpectralEarth, supplement 8.1).
    """

    def __init__(self, blocks: tuple[tuple[int, int, int], ...] = ADAPTER_BLOCKS) -> None:
        super().__init__()
        layers = []
        in_channels = 1
        for out_channels, kernel, stride in blocks:
            layers.append(SpectralBlock(in_channels, out_channels, kernel, stride))
            in_channels = out_channels
        self.blocks = nn.Sequential(*layers)
        self.out_channels = in_channels

    @staticmethod
    def spectral_length(bands: int, blocks: tuple[tuple[int, int, int], ...] = ADAPTER_BLOCKS) -> int:
        """Length of the spectral axis left before pooling, for ``bands`` input bands."""
        length = bands
        for _, kernel, stride in blocks:
            length = (max(length, kernel) - kernel) // stride + 1
        return length

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4:
            raise ValueError(f"SpectralAdapter expects (B, bands, H, W), got shape {tuple(x.shape)}")
        y = self.blocks(x.unsqueeze(1))  # (B, 128, L, H, W)
        return y.mean(dim=2)
