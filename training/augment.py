"""Batched, seeded spatial augmentations for hyperspectral patches of shape (B, bands, H, W).

SpectralEarth pretrains MoCo-v2 and DINO with "the augmentations from SimCLR without color-jittering
and gray-scale ... to avoid distorting spectral information" (section 5.1). The published code
(``../shared/RECIPE.md``, "Pretraining") runs, per method:

- MoCo-v2: RandomResizedCrop scale (0.08, 1), Gaussian blur 13 px, sigma 0.1-2, p 0.5, horizontal
  and vertical flips (``MOCO_*``; the defaults of :class:`Augment`);
- DINO: two global views only, RandomResizedCrop scale (0.05, 1), blur p 0.5, flips (``DINO_*``;
  :class:`MultiCrop` with ``n_local=0``; DINO's own multi-crop stays available through its fields);
- MAE: RandomResizedCrop scale (0.4, 1) and flips (``MAE_SCALE``, no blur).

No rotations in the published recipes (``rotate=True`` adds 90-degree turns, our earlier variant).
Nothing here touches one band differently from another:

- crops resize with ``"bilinear"`` (default) or ``"nearest"`` interpolation. Nearest returns values
  that all occur in the input; bilinear returns, per pixel, one convex combination of neighbouring
  pixels applied identically to every band (a mixture of neighbouring spectra, never a rescaled band);
- blur uses one normalised kernel for all bands of a sample, so a spatially uniform spectrum is
  returned unchanged;
- flips and rotations are exact permutations of pixels.

Every random draw comes from an optional ``torch.Generator`` (CPU, or on the data's device), so a
seeded generator reproduces the same views.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "Augment",
    "MultiCrop",
    "gaussian_blur",
    "random_flip",
    "random_resized_crop",
    "random_rot90",
    "sample_crop_boxes",
    "two_views",
]

# The published MoCo-v2 view (see module docstring).
MOCO_SCALE: tuple[float, float] = (0.08, 1.0)
CROP_RATIO: tuple[float, float] = (3.0 / 4.0, 4.0 / 3.0)
BLUR_SIGMA: tuple[float, float] = (0.1, 2.0)
BLUR_KERNEL = 13
BLUR_P = 0.5
# The published DINO views: two global crops, no local crops. The local-crop numbers are DINO's own
# (scale (0.05, 0.4) at 96/224 of the side: 56 px for 128 px patches), used only with n_local > 0.
DINO_GLOBAL_SCALE: tuple[float, float] = (0.05, 1.0)
DINO_LOCAL_SCALE: tuple[float, float] = (0.05, 0.4)
DINO_GLOBAL_SIZE = 128
DINO_LOCAL_SIZE = 56
DINO_N_LOCAL = 0
# The published MAE view: crop and flips only.
MAE_SCALE: tuple[float, float] = (0.4, 1.0)


def _rand(n: int, generator: torch.Generator | None, device: torch.device) -> Tensor:
    """``n`` uniform numbers drawn from ``generator`` (on its own device), moved to ``device``."""
    gen_device = generator.device if generator is not None else torch.device("cpu")
    return torch.rand(n, generator=generator, device=gen_device).to(device)


def _randint(high: int, n: int, generator: torch.Generator | None, device: torch.device) -> Tensor:
    gen_device = generator.device if generator is not None else torch.device("cpu")
    return torch.randint(high, (n,), generator=generator, device=gen_device).to(device)


def sample_crop_boxes(
    batch: int,
    height: int,
    width: int,
    scale: tuple[float, float] = MOCO_SCALE,
    ratio: tuple[float, float] = CROP_RATIO,
    generator: torch.Generator | None = None,
    attempts: int = 10,
) -> Tensor:
    """Integer crop boxes ``(top, left, h, w)`` per sample, as (batch, 4) int64, RandomResizedCrop-style.

    Area fraction uniform in ``scale``, aspect ratio log-uniform in ``ratio``; each sample takes its
    first of ``attempts`` draws that fits in the image, else the whole image (the usual fallback).
    """
    area = height * width
    u = _rand(batch * attempts * 4, generator, torch.device("cpu")).view(4, batch, attempts)
    target_area = area * (scale[0] + (scale[1] - scale[0]) * u[0])
    log_r = (math.log(ratio[0]), math.log(ratio[1]))
    aspect = torch.exp(log_r[0] + (log_r[1] - log_r[0]) * u[1])
    w = torch.round(torch.sqrt(target_area * aspect)).long()
    h = torch.round(torch.sqrt(target_area / aspect)).long()
    ok = (w >= 1) & (h >= 1) & (w <= width) & (h <= height)
    first = torch.where(ok.any(1), ok.float().argmax(1), torch.full((batch,), -1))
    idx = first.clamp(min=0).unsqueeze(1)
    h = torch.where(first >= 0, h.gather(1, idx).squeeze(1), torch.full((batch,), height))
    w = torch.where(first >= 0, w.gather(1, idx).squeeze(1), torch.full((batch,), width))
    top = torch.floor(u[2, :, 0] * (height - h + 1)).long().clamp(max=height - h)
    left = torch.floor(u[3, :, 0] * (width - w + 1)).long().clamp(max=width - w)
    return torch.stack([top, left, h, w], dim=1)


def _crop_grid(boxes: Tensor, height: int, width: int, size: tuple[int, int], device: torch.device) -> Tensor:
    """``grid_sample`` grid (align_corners=False) that maps each box onto an output of ``size``.

    Output pixel k samples the input at box_start + (k + 0.5) * box_len / out_len (pixel-edge
    coordinates), so a box as large as the output is copied exactly.
    """
    out_h, out_w = size
    b = boxes.to(device=device, dtype=torch.float32)
    ys = (torch.arange(out_h, device=device, dtype=torch.float32) + 0.5) / out_h
    xs = (torch.arange(out_w, device=device, dtype=torch.float32) + 0.5) / out_w
    y = b[:, 0:1] + ys.unsqueeze(0) * b[:, 2:3]  # (B, out_h) in input pixel-edge units
    x = b[:, 1:2] + xs.unsqueeze(0) * b[:, 3:4]
    y = y / height * 2 - 1
    x = x / width * 2 - 1
    grid_y = y.unsqueeze(2).expand(-1, out_h, out_w)
    grid_x = x.unsqueeze(1).expand(-1, out_h, out_w)
    return torch.stack([grid_x, grid_y], dim=-1)


def random_resized_crop(
    x: Tensor,
    size: int | tuple[int, int],
    scale: tuple[float, float] = MOCO_SCALE,
    ratio: tuple[float, float] = CROP_RATIO,
    generator: torch.Generator | None = None,
    interpolation: str = "bilinear",
    mask: Tensor | None = None,
) -> Tensor | tuple[Tensor, Tensor]:
    """Crop a random box per sample and resize it to ``size``; one ``grid_sample`` for the batch.

    ``interpolation`` is ``"bilinear"`` or ``"nearest"`` (see module docstring for what each does
    to the values). ``mask`` (B, H, W) integer labels, if given, gets the same boxes with nearest
    resizing and is returned as the second element.
    """
    if interpolation not in ("bilinear", "nearest"):
        raise ValueError(f"interpolation must be 'bilinear' or 'nearest', not {interpolation!r}")
    size_hw = (size, size) if isinstance(size, int) else tuple(size)
    batch, _, height, width = x.shape
    boxes = sample_crop_boxes(batch, height, width, scale, ratio, generator)
    grid = _crop_grid(boxes, height, width, size_hw, x.device)
    work = x if x.is_floating_point() else x.float()
    out = F.grid_sample(
        work, grid.to(work.dtype), mode=interpolation, padding_mode="border", align_corners=False
    )
    if mask is None:
        return out
    m = F.grid_sample(
        mask.unsqueeze(1).to(torch.float32), grid, mode="nearest", padding_mode="border", align_corners=False
    )
    return out, m.squeeze(1).round().to(mask.dtype)


def random_flip(
    x: Tensor,
    p_horizontal: float = 0.5,
    p_vertical: float = 0.5,
    generator: torch.Generator | None = None,
    mask: Tensor | None = None,
) -> Tensor | tuple[Tensor, Tensor]:
    """Flip each sample left-right with ``p_horizontal`` and up-down with ``p_vertical`` (exact)."""
    batch = x.shape[0]
    u = _rand(2 * batch, generator, x.device)
    flip_h = (u[:batch] < p_horizontal).view(batch, 1, 1, 1)
    flip_v = (u[batch:] < p_vertical).view(batch, 1, 1, 1)
    out = torch.where(flip_h, x.flip(-1), x)
    out = torch.where(flip_v, out.flip(-2), out)
    if mask is None:
        return out
    m = torch.where(flip_h[:, 0], mask.flip(-1), mask)
    m = torch.where(flip_v[:, 0], m.flip(-2), m)
    return out, m


def random_rot90(
    x: Tensor, generator: torch.Generator | None = None, mask: Tensor | None = None
) -> Tensor | tuple[Tensor, Tensor]:
    """Rotate each sample by k * 90 degrees, k uniform in {0, 1, 2, 3} (exact; needs H == W)."""
    if x.shape[-1] != x.shape[-2]:
        raise ValueError(f"90-degree rotations need square images, got {tuple(x.shape[-2:])}")
    k = _randint(4, x.shape[0], generator, x.device).view(-1, 1, 1, 1)
    out = x
    m = mask
    for turns in (1, 2, 3):
        out = torch.where(k == turns, torch.rot90(x, turns, dims=(-2, -1)), out)
        if mask is not None:
            m = torch.where(k[:, 0] == turns, torch.rot90(mask, turns, dims=(-2, -1)), m)
    return out if mask is None else (out, m)


def blur_kernel_size(side: int) -> int:
    """SimCLR's kernel: about 10% of the image side, odd, at least 3."""
    k = max(3, round(0.1 * side))
    return k if k % 2 == 1 else k + 1


def gaussian_blur(
    x: Tensor,
    p: float = 0.5,
    sigma: tuple[float, float] = BLUR_SIGMA,
    kernel_size: int | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Blur each sample with probability ``p``, sigma uniform in ``sigma`` (pixels), reflect padding.

    One separable, normalised kernel per sample, shared by all its bands: spectra are mixed only
    with their spatial neighbours' spectra, with weights summing to one. A kernel wider than the
    image (13 px on a smoke run's 8 px crop) is narrowed to the widest odd size reflect padding allows.
    """
    batch, bands, height, width = x.shape
    k = kernel_size or blur_kernel_size(min(height, width))
    k = min(k, 2 * ((min(height, width) - 1) // 2) + 1)
    u = _rand(2 * batch, generator, x.device)
    apply = u[:batch] < p
    if p <= 0 or not bool(apply.any()):
        return x
    s = sigma[0] + (sigma[1] - sigma[0]) * u[batch:]
    r = torch.arange(k, device=x.device, dtype=x.dtype) - (k - 1) / 2
    kernel = torch.exp(-(r.unsqueeze(0) ** 2) / (2 * s.to(x.dtype).unsqueeze(1) ** 2))
    kernel = kernel / kernel.sum(1, keepdim=True)  # (B, k)
    weight = kernel.repeat_interleave(bands, dim=0)  # (B*bands, k)
    pad = k // 2
    flat = x.reshape(1, batch * bands, height, width)
    flat = F.pad(flat, (pad, pad, 0, 0), mode="reflect")
    flat = F.conv2d(flat, weight.view(-1, 1, 1, k), groups=batch * bands)
    flat = F.pad(flat, (0, 0, pad, pad), mode="reflect")
    flat = F.conv2d(flat, weight.view(-1, 1, k, 1), groups=batch * bands)
    blurred = flat.view(batch, bands, height, width)
    return torch.where(apply.view(batch, 1, 1, 1), blurred, x)


@dataclass(frozen=True)
class Augment:
    """One augmentation pipeline: crop -> blur -> flips -> rotations, all batched.

    Defaults are the published MoCo-v2 view for 128 px patches (see module docstring); a crop-and-flip
    view is ``Augment(scale=..., blur_p=0.0)``. ``blur_kernel`` None: about 10% of the side (SimCLR's
    rule, 13 px at 128 px).
    """

    size: int = 128
    scale: tuple[float, float] = MOCO_SCALE
    ratio: tuple[float, float] = CROP_RATIO
    interpolation: str = "bilinear"
    blur_p: float = BLUR_P
    blur_sigma: tuple[float, float] = BLUR_SIGMA
    blur_kernel: int | None = BLUR_KERNEL
    p_horizontal: float = 0.5
    p_vertical: float = 0.5
    rotate: bool = False

    def __call__(
        self, x: Tensor, generator: torch.Generator | None = None, mask: Tensor | None = None
    ) -> Tensor | tuple[Tensor, Tensor]:
        """Augment ``x`` (B, bands, H, W); with ``mask`` (B, H, W) return (image, mask) moved alike
        (the mask is never blurred)."""
        out = random_resized_crop(
            x, self.size, self.scale, self.ratio, generator, self.interpolation, mask=mask
        )
        if mask is not None:
            out, mask = out
        out = gaussian_blur(out, self.blur_p, self.blur_sigma, self.blur_kernel, generator=generator)
        out = random_flip(out, self.p_horizontal, self.p_vertical, generator, mask=mask)
        if mask is not None:
            out, mask = out
        if self.rotate:
            out = random_rot90(out, generator, mask=mask)
        return out


def two_views(
    a: Tensor,
    b: Tensor | None = None,
    augment: Augment | None = None,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """Two independently augmented views: of ``a`` and ``b`` (two acquisitions of one location, the
    temporal positives of section 5.1) or, when ``b`` is None, of ``a`` twice."""
    aug = augment or Augment()
    return aug(a, generator), aug(a if b is None else b, generator)


@dataclass(frozen=True)
class MultiCrop:
    """DINO's views: two global crops and ``n_local`` local crops per sample.

    Defaults are the published SpectralEarth DINO views: two global crops, scale (0.05, 1), each
    blurred with p 0.5, flips, no local crops. DINO's own multi-crop is ``n_local=8``,
    ``global_scale=(0.4, 1.0)``, ``global_blur_p=(1.0, 0.1)`` (solarisation, a colour operation,
    is left out). With two acquisitions, global crop 1 comes from ``a`` and global crop 2 from ``b``,
    and local crops alternate between them, so every student/teacher pair of different views that
    crosses acquisitions is a temporal positive.
    """

    global_size: int = DINO_GLOBAL_SIZE
    local_size: int = DINO_LOCAL_SIZE
    n_local: int = DINO_N_LOCAL
    global_scale: tuple[float, float] = DINO_GLOBAL_SCALE
    local_scale: tuple[float, float] = DINO_LOCAL_SCALE
    interpolation: str = "bilinear"
    global_blur_p: tuple[float, float] = (BLUR_P, BLUR_P)
    local_blur_p: float = BLUR_P
    blur_kernel: int | None = BLUR_KERNEL
    rotate: bool = False

    def __call__(
        self, a: Tensor, b: Tensor | None = None, generator: torch.Generator | None = None
    ) -> tuple[list[Tensor], list[Tensor]]:
        """Return ``(global_views, local_views)``, lists of (B, bands, size, size) tensors."""
        sources = (a, a if b is None else b)
        globals_ = [
            Augment(self.global_size, self.global_scale, interpolation=self.interpolation,
                    blur_p=self.global_blur_p[i], blur_kernel=self.blur_kernel,
                    rotate=self.rotate)(sources[i], generator)
            for i in range(2)
        ]  # fmt: skip
        local_aug = Augment(
            self.local_size, self.local_scale, interpolation=self.interpolation,
            blur_p=self.local_blur_p, blur_kernel=self.blur_kernel, rotate=self.rotate,
        )  # fmt: skip
        locals_ = [local_aug(sources[i % 2], generator) for i in range(self.n_local)]
        return globals_, locals_
