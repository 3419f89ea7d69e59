"""The spectral adapter of SpectralEarth, as its public code builds it: any band count in, 128 out.

Source: the published backbone code (``../shared/RECIPE.md``, "Backbones"): an ``nn.Sequential`` of

    Conv3d(1 -> 32,  k (7,1,1), s (5,1,1), padding (1,0,0)), BatchNorm3d, ReLU,
    Conv3d(32 -> 64, k (7,1,1), s (5,1,1), padding (1,0,0)), BatchNorm3d, ReLU,
    Conv3d(64 -> 128, k (5,1,1), s (3,1,1), padding (1,0,0)), BatchNorm3d, ReLU,
    AdaptiveAvgPool3d((1, None, None))

on a ``(B, 1, bands, H, W)`` view of the image, so its state-dict keys are ``{0,1,3,4,6,7}.*`` (the
ReLUs and the pool have no tensors) -- exactly the released ``spectral_adapter.*`` keys once an
encoder holds it as ``spectral_adapter``. The kernels are ``(k, 1, 1)``: each pixel's spectrum is
filtered on its own, with no spatial mixing, which the rest of the package relies on:

- the adapter works for any band count (202 for EnMAP, 235 for DESIS, 150 for Hyperview): only the
  length of the remaining spectral axis changes, and the pool averages it;
- masking for MAE can happen after the adapter without leaking information between patches.

Remaining spectral length with the published padding of 1 on each side of the spectral axis:
202 -> 40 -> 8 -> 2 (then the mean); 235 -> 47 -> 9 -> 3; 150 -> 30 -> 6 -> 2. A stage needs its
padded input to be at least its kernel long, so the published adapter needs >= 75 bands
(75 -> 15 -> 3 -> 1). For fewer bands (tests, multispectral inputs) a stage zero-pads the spectral
axis further, symmetrically, up to its kernel length. This is a no-op for every band count >= 75 and
therefore does not change the published model; zeros are the mean of standardised reflectances and
the value of a ReLU output that is "off", so the padding adds no signal.

Parameter count (conv weights and biases, BN affine): 1*32*7+32 + 2*32 + 32*64*7+64 + 2*64 +
64*128*5+128 + 2*128 = 56,192, the paper's "56K".
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

#: (out_channels, kernel, stride) of the three blocks, as published.
ADAPTER_BLOCKS: tuple[tuple[int, int, int], ...] = ((32, 7, 5), (64, 7, 5), (128, 5, 3))

#: Zero padding on each side of the spectral axis in every Conv3d, as published.
SPECTRAL_PADDING = 1

#: Fewest bands the published adapter takes without extra padding (75 -> 15 -> 3 -> 1).
MIN_BANDS_UNPADDED = 75


class SpectralAdapter(nn.Sequential):
    """(B, bands, H, W) with any band count -> (B, 128, H, W), spatial size unchanged.

    An ``nn.Sequential`` laid out as the published module (Conv3d, BN3d, ReLU three times, then
    ``AdaptiveAvgPool3d((1, None, None))``), so released weights load key for key.
    """

    def __init__(
        self,
        blocks: tuple[tuple[int, int, int], ...] = ADAPTER_BLOCKS,
        padding: int = SPECTRAL_PADDING,
    ) -> None:
        layers: list[nn.Module] = []
        in_channels = 1
        for out_channels, kernel, stride in blocks:
            layers += [
                nn.Conv3d(
                    in_channels, out_channels, (kernel, 1, 1), stride=(stride, 1, 1), padding=(padding, 0, 0)
                ),
                nn.BatchNorm3d(out_channels),
                nn.ReLU(inplace=True),
            ]
            in_channels = out_channels
        layers.append(nn.AdaptiveAvgPool3d((1, None, None)))
        super().__init__(*layers)
        self.blocks = blocks
        self.padding = padding
        self.out_channels = in_channels

    @staticmethod
    def spectral_length(
        bands: int,
        blocks: tuple[tuple[int, int, int], ...] = ADAPTER_BLOCKS,
        padding: int = SPECTRAL_PADDING,
    ) -> int:
        """Length of the spectral axis left before the pool, for ``bands`` input bands."""
        length = bands
        for _, kernel, stride in blocks:
            length = (max(length + 2 * padding, kernel) - kernel) // stride + 1
        return length

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        if x.ndim != 4:
            raise ValueError(f"SpectralAdapter expects (B, bands, H, W), got shape {tuple(x.shape)}")
        y = x.unsqueeze(1)
        for layer in self:
            if isinstance(layer, nn.Conv3d):
                missing = layer.kernel_size[0] - (y.shape[2] + 2 * self.padding)
                if missing > 0:  # too few bands for this stage: zero-pad up to its kernel
                    # F.pad pads the last dims first: (W_l, W_r, H_l, H_r, D_l, D_r).
                    y = F.pad(y, (0, 0, 0, 0, missing // 2, missing - missing // 2))
            y = layer(y)
        return y.squeeze(2)  # (B, 128, 1, H, W) -> (B, 128, H, W)
