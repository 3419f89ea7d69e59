"""Spec. ResNet-50 as published: the spectral adapter, a wide first block with stride 2, then ResNet-50.

Source: the published backbone code (``../shared/RECIPE.md``, "Backbones"): the adapter (128
channels at full resolution) replaces the stem; ``resnet.layer1[0]`` is a *wide* block -- conv1 1x1
128 -> 256, conv2 3x3 256 -> 256 with **stride 2**, conv3 1x1 256 -> 256, each with BN, and a
projection shortcut Conv1x1(128 -> 256, stride 2) + BN; then ResNet-50's ``layer1[1:]`` and
``layer2..4`` (torchvision-style "v1.5" bottlenecks: 1x1 reduce, 3x3 with the stride, 1x1 expand x4,
BN after each conv), and global average pooling. Stages for a 128 px patch: 64^2 x 256, 32^2 x 512,
16^2 x 1024, 8^2 x 2048, i.e. **output stride 16**.

Segmentation (``dilated=True``, published ``replace_stride_with_dilation=[True] * 4``): every stride
is removed and every block of stage i is dilated 1, 2, 4, 8, so all four stages run at 128^2
(memory-heavy, as published). A 3-tuple ``dilated=(l2, l3, l4)`` dilates only those stages
torchvision-style (the dilation doubles for each stride removed) and keeps layer1's stride 2:
``(True, True, True)`` gives output stride 2 (64^2), ``(False, True, True)`` 4.

Weights live under ``self.resnet.layer{1..4}`` and the adapter under ``self.spectral_adapter``, so
``state_dict()`` has exactly the released backbone keys (``spectral_adapter.*``, ``resnet.layer*.*``;
the released ``resnet.fc.*`` classifier is not part of the encoder).

Parameter count: torchvision ResNet-50 without fc 23,508,032, minus the stem (9,536), minus the
usual layer1[0] (75,008), plus the wide block (722,944), plus the adapter (56,192): 24,202,624.

Earlier variant kept as ``spec_resnet50_os8`` (``wide_first_block=False``): a usual bottleneck
128 -> 64 -> 256 with stride 1 as the first block (23,575,168 parameters), output stride 8 and about
twice the compute; it is what this package trained before the published code was read.
"""

from __future__ import annotations

import torch
from torch import nn

from training.models.adapter import SpectralAdapter


class Bottleneck(nn.Module):
    """1x1 -> 3x3 (stride, dilation) -> 1x1, each with BN; identity or projection (``downsample``) add.

    ``out_channels`` defaults to ``4 * width`` (the usual expansion); the published wide first block
    has ``width = out_channels = 256``.
    """

    def __init__(
        self,
        in_channels: int,
        width: int,
        stride: int = 1,
        dilation: int = 1,
        out_channels: int | None = None,
    ) -> None:
        super().__init__()
        out_channels = 4 * width if out_channels is None else out_channels
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


class ResNetStages(nn.Module):
    """The four bottleneck stages, named ``layer1..4`` as in the published ``resnet`` submodule."""

    def __init__(self, stages: list[nn.Sequential]) -> None:
        super().__init__()
        self.layer1, self.layer2, self.layer3, self.layer4 = stages

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


def _stage_plan(
    dilated: bool | tuple[bool, ...], first_stride: int
) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int], tuple[int, int]]:
    """(stride, dilation) of the blocks of each stage.

    ``True`` is the published segmentation plan: strides 1, dilations 1, 2, 4, 8. A 3-tuple dilates
    layer2..4 torchvision-style; a 4-tuple also removes layer1's stride (its dilation stays 1).
    """
    if dilated is True:
        return (1, 1), (1, 2), (1, 4), (1, 8)
    flags = (False,) * 4 if dilated is False else tuple(dilated)
    if len(flags) == 3:
        flags = (False, *flags)
    if len(flags) != 4:
        raise ValueError(f"dilated must be a bool or a tuple of 3 or 4 bools, got {dilated!r}")
    plan = [(1, 1) if flags[0] else (first_stride, 1)]
    dilation = 1
    for flag in flags[1:]:
        if flag:
            dilation *= 2
            plan.append((1, dilation))
        else:
            plan.append((2, dilation))
    return tuple(plan)  # type: ignore[return-value]


class SpecResNet(nn.Module):
    """Spectral adapter (any band count -> 128 channels, no downsampling) + bottleneck stages.

    Args:
        bands: nominal band count (recorded; the adapter accepts any).
        layers: blocks per stage, ``(3, 4, 6, 3)`` for ResNet-50.
        widths: bottleneck widths per stage (outputs are 4x these); ``(64, 128, 256, 512)`` as usual,
            smaller for tiny test models.
        dilated: ``True`` for the published segmentation variant (see the module docstring).
        wide_first_block: the published wide, stride-2 ``layer1[0]`` (default); ``False`` gives the
            earlier output-stride-8 variant (a usual bottleneck with stride 1).
        adapter: use the spectral adapter (default); without it a 3x3 conv maps ``bands`` to 128
            channels at full resolution (a stand-in for the paper's "w/o adapter" ablation).

    ``forward(x)`` is the pooled embedding (B, 4 * widths[-1]); ``forward_features`` the layer4 map
    (B, 4 * widths[-1], H / s, W / s), s = ``output_stride``; ``stage_features`` all four maps.
    """

    def __init__(
        self,
        bands: int = 202,
        layers: tuple[int, ...] = (3, 4, 6, 3),
        widths: tuple[int, ...] = (64, 128, 256, 512),
        dilated: bool | tuple[bool, ...] = False,
        wide_first_block: bool = True,
        adapter: bool = True,
    ) -> None:
        super().__init__()
        if len(layers) != 4 or len(widths) != 4:
            raise ValueError("SpecResNet needs four stages")
        self.bands = bands
        self.spectral_adapter: SpectralAdapter | None = SpectralAdapter() if adapter else None
        self.stem: nn.Module = nn.Identity()
        in_channels = 128
        if not adapter:
            self.stem = nn.Sequential(
                nn.Conv2d(bands, in_channels, 3, padding=1, bias=False),
                nn.BatchNorm2d(in_channels),
                nn.ReLU(inplace=True),
            )
        plan = _stage_plan(dilated, first_stride=2 if wide_first_block else 1)
        stages = []
        for i, (n_blocks, width, (stride, dilation)) in enumerate(zip(layers, widths, plan, strict=True)):
            out_channels = 4 * width
            if i == 0 and wide_first_block:
                first = Bottleneck(in_channels, out_channels, stride, dilation, out_channels=out_channels)
            else:
                first = Bottleneck(in_channels, width, stride, dilation)
            rest = [Bottleneck(out_channels, width, dilation=dilation) for _ in range(n_blocks - 1)]
            stages.append(nn.Sequential(first, *rest))
            in_channels = out_channels
        self.resnet = ResNetStages(stages)
        self.out_channels = in_channels
        self.output_stride = 1
        for stride, _ in plan:
            self.output_stride *= stride
        self._init_weights()

    @property
    def adapter(self) -> SpectralAdapter | None:
        """The spectral adapter (the protocols fine-tune it); ``None`` without one."""
        return self.spectral_adapter

    @property
    def layer1(self) -> nn.Sequential:
        return self.resnet.layer1

    @property
    def layer2(self) -> nn.Sequential:
        return self.resnet.layer2

    @property
    def layer3(self) -> nn.Sequential:
        return self.resnet.layer3

    @property
    def layer4(self) -> nn.Sequential:
        return self.resnet.layer4

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

    def stage_features(self, images: torch.Tensor) -> list[torch.Tensor]:
        """The outputs of layer1..4, (B, 4 * widths[i], H / s_i, W / s_i) each."""
        x = self.spectral_adapter(images) if self.spectral_adapter is not None else self.stem(images)
        maps = []
        for stage in (self.layer1, self.layer2, self.layer3, self.layer4):
            x = stage(x)
            maps.append(x)
        return maps

    def forward_features(self, images: torch.Tensor) -> torch.Tensor:
        """(B, bands, H, W) -> (B, out_channels, H / output_stride, W / output_stride)."""
        x = self.spectral_adapter(images) if self.spectral_adapter is not None else self.stem(images)
        return self.resnet(x)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, bands, H, W) -> (B, out_channels): the globally average-pooled layer4 map."""
        return self.forward_features(images).mean(dim=(-2, -1))


def spec_resnet50(bands: int = 202, dilated: bool | tuple[bool, ...] = False, **kw: object) -> SpecResNet:
    """Spec. ResNet-50 (stages [3, 4, 6, 3]) as published; ``dilated=True`` for segmentation.

    ``kw`` goes to :class:`SpecResNet` and may override ``layers``/``widths`` for tiny test models.
    """
    kw.setdefault("layers", (3, 4, 6, 3))
    return SpecResNet(bands=bands, dilated=dilated, **kw)  # type: ignore[arg-type]
