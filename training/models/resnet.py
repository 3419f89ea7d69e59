"""Spec. ResNet-50: the spectral adapter in place of the ResNet stem, then bottleneck stages [3, 4, 6, 3].

Source: SpectralEarth section 4.2 and supplement 8.1: "(a) We replace the stem layers with the
spectral adapter without downscaling; (b) The first bottleneck block is adjusted to take an input
feature map of 128 channels, as opposed to the ResNet-50's 64-channel input at this stage."
Bottleneck design (1x1 reduce, 3x3, 1x1 expand x4, stride on the 3x3, projection shortcut when the
shape changes, BN after each conv) as in He et al. 2016 / torchvision's "ResNet v1.5".

Output stride (input pixels per feature-map pixel):

- classification (``dilated=False``): the stem's 4x downsampling is gone, so only layer2, layer3
  and layer4 stride by 2: output stride 8, a 16 x 16 x 2048 map for a 128 px patch.
- segmentation (``dilated=True``): SpectralEarth 5.2 "We remove all strides from convolutions,
  replace them with atrous convolutions": the strides of layer2-4 become dilations 2, 4, 8 (the
  DeepLab recipe, as torchvision's ``replace_stride_with_dilation``): output stride 1, a
  128 x 128 x 2048 map. This is memory-heavy; ``dilated=(False, True, True)`` keeps layer2's stride
  for output stride 2 (64 x 64), ``(False, False, True)`` gives 4.

Parameter count: torchvision ResNet-50 without its fc is 23,508,032; minus the stem (7x7 conv + BN,
9,536), plus 4,096 + 16,384 for the 128-channel first bottleneck (its 1x1 reduce and its projection
shortcut), plus the adapter (56,192): 23,575,168.
"""

from __future__ import annotations

import torch
from torch import nn

from training.models.adapter import SpectralAdapter


class Bottleneck(nn.Module):
    """1x1 -> 3x3 (stride, dilation) -> 1x1 (x4 expansion), each with BN; identity or projection add."""

    expansion = 4

    def __init__(self, in_channels: int, width: int, stride: int = 1, dilation: int = 1) -> None:
        super().__init__()
        out_channels = width * self.expansion
        self.conv1 = nn.Conv2d(in_channels, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(
            width, width, 3, stride=stride, padding=dilation, dilation=dilation, bias=False
        )
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class SpecResNet(nn.Module):
    """Spectral adapter (any band count -> 128 channels, no downsampling) + bottleneck stages.

    Args:
        bands: nominal band count (recorded; the adapter accepts any).
        layers: blocks per stage, ``(3, 4, 6, 3)`` for ResNet-50.
        widths: bottleneck widths per stage (outputs are 4x these); ``(64, 128, 256, 512)`` as usual,
            smaller for tiny test models.
        dilated: ``True`` replaces the strides of layer2, layer3 and layer4 by dilation (output
            stride 1, as SpectralEarth's segmentation models); a tuple of three booleans chooses per
            stage like torchvision's ``replace_stride_with_dilation``.
        adapter: use the spectral adapter (default); without it a 3x3 conv maps ``bands`` to 128
            channels at full resolution (a stand-in for the paper's "w/o adapter" ablation).

    ``forward_features`` returns the layer4 map (B, 4 * widths[-1], H / s, W / s), s = ``output_stride``.
    """

    def __init__(
        self,
        bands: int = 202,
        layers: tuple[int, ...] = (3, 4, 6, 3),
        widths: tuple[int, ...] = (64, 128, 256, 512),
        dilated: bool | tuple[bool, bool, bool] = False,
        adapter: bool = True,
    ) -> None:
        super().__init__()
        if len(layers) != 4 or len(widths) != 4:
            raise ValueError("SpecResNet needs four stages")
        dilate = (dilated, dilated, dilated) if isinstance(dilated, bool) else tuple(dilated)
        self.bands = bands
        if adapter:
            self.adapter: SpectralAdapter | None = SpectralAdapter()
            self.stem: nn.Module = nn.Identity()
            in_channels = self.adapter.out_channels
        else:
            self.adapter = None
            in_channels = 128
            self.stem = nn.Sequential(
                nn.Conv2d(bands, in_channels, 3, padding=1, bias=False),
                nn.BatchNorm2d(in_channels),
                nn.ReLU(inplace=True),
            )
        stride_total, dilation = 1, 1
        stages = []
        for i, (n_blocks, width) in enumerate(zip(layers, widths, strict=True)):
            stride = 1 if i == 0 else 2
            first_dilation = dilation
            if i > 0 and dilate[i - 1]:
                dilation *= stride
                stride = 1
            blocks = [Bottleneck(in_channels, width, stride=stride, dilation=first_dilation)]
            in_channels = width * Bottleneck.expansion
            blocks += [Bottleneck(in_channels, width, dilation=dilation) for _ in range(n_blocks - 1)]
            stages.append(nn.Sequential(*blocks))
            stride_total *= stride
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.out_channels = in_channels
        self.output_stride = stride_total
        self._init_weights()

    def _init_weights(self) -> None:
        """Kaiming-normal convs (fan-out), unit BN, and zero last BN per block (torchvision option)."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d | nn.BatchNorm3d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        for m in self.modules():
            if isinstance(m, Bottleneck):
                nn.init.zeros_(m.bn3.weight)

    def forward_features(self, images: torch.Tensor) -> torch.Tensor:
        """(B, bands, H, W) -> (B, out_channels, H / output_stride, W / output_stride)."""
        x = self.adapter(images) if self.adapter is not None else self.stem(images)
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        return self.layer4(x)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.forward_features(images)


def spec_resnet50(
    bands: int = 202, dilated: bool | tuple[bool, bool, bool] = False, **kw: object
) -> SpecResNet:
    """Spec. ResNet-50 (stages [3, 4, 6, 3]); ``dilated=True`` for the segmentation variant.

    ``kw`` goes to :class:`SpecResNet` and may override ``layers``/``widths`` for tiny test models.
    """
    kw.setdefault("layers", (3, 4, 6, 3))
    return SpecResNet(bands=bands, dilated=dilated, **kw)  # type: ignore[arg-type]
