"""The published downstream recipe (RECIPE.md "Downstream protocols"), as plain functions.

- Optimisation: AdamW at lr 1e-3, cosine annealing over the epochs to 0 (stepped once per epoch,
  as Lightning's default ``interval: epoch``); weight decay 1e-5 for EnMAP-CORINE and 1e-4 for
  the segmentation datasets; global batch CORINE 128, NLCD 64, CDL 32, DESIS-CDL 32, split over the
  DDP processes (``per_process_batch``, as pretraining splits its 256).
- Augmentation: RandomResizedCrop back to the patch size, scale (0.6, 1) for CORINE, (0.2, 1) for
  CDL and NLCD, (0.4, 1) for DESIS-CDL, then horizontal and vertical flips. A segmentation mask gets
  the same box (resampled nearest) and the same flips as its image (``augment``).
- Mixed precision on GPU: bfloat16 autocast where the GPU has it (no loss scaling needed), else
  float16 with a ``GradScaler``; full precision on CPU (``Precision``).
- Selection: a validation pass every epoch; the weights of the epoch with the lowest validation
  loss are the ones tested (``BestEpoch``).

Order of augmentation and normalisation: the published code normalises after augmenting. Our
label datasets hand over normalised patches, and we augment those; that is the same thing, because
the normalisation is a per-band affine map, which commutes with flips, with nearest resampling and
with bilinear resampling (its weights sum to 1), except that nodata was already set to the band mean
before resampling, so it is never blended into its neighbours as a raw fill value.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from training.augment import random_flip, random_resized_crop

__all__ = [
    "PUBLISHED",
    "BestEpoch",
    "DownstreamRecipe",
    "Precision",
    "augment",
    "cosine_schedule",
    "per_process_batch",
    "recipe_for",
]


@dataclass(frozen=True)
class DownstreamRecipe:
    """One dataset's published settings."""

    batch_size: int
    """Global batch (over all DDP processes)."""
    weight_decay: float
    crop_scale: tuple[float, float]
    """RandomResizedCrop area fraction."""


PUBLISHED: dict[str, DownstreamRecipe] = {
    "enmap_corine": DownstreamRecipe(128, 1e-5, (0.6, 1.0)),
    "enmap_nlcd": DownstreamRecipe(64, 1e-4, (0.2, 1.0)),
    "enmap_cdl": DownstreamRecipe(32, 1e-4, (0.2, 1.0)),
    "desis_cdl": DownstreamRecipe(32, 1e-4, (0.4, 1.0)),
}
"""The published settings per label dataset (RECIPE.md)."""

_BY_TASK = {"multilabel": PUBLISHED["enmap_corine"], "segmentation": PUBLISHED["enmap_cdl"]}
"""A dataset the paper has no settings for takes those of its task (CORINE's, CDL's)."""


def recipe_for(dataset: str, task: str) -> DownstreamRecipe:
    """The published settings of ``dataset``, or of its task's published dataset."""
    if dataset in PUBLISHED:
        return PUBLISHED[dataset]
    if task not in _BY_TASK:
        raise ValueError(f"{dataset}: no downstream recipe for task {task!r} (known: {', '.join(_BY_TASK)})")
    return _BY_TASK[task]


def per_process_batch(global_batch: int, world: int) -> int:
    """The batch of each of ``world`` processes for a global batch (they must divide)."""
    if global_batch < world or global_batch % world:
        raise ValueError(
            f"a global batch of {global_batch} does not split over {world} processes: "
            f"set a batch_size that is a multiple of {world}"
        )
    return global_batch // world


def augment(
    images: Tensor,
    target: Tensor | None,
    scale: tuple[float, float],
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor | None]:
    """RandomResizedCrop (back to the input size, bilinear) with area ``scale`` and H/V flips of a
    (B, bands, H, W) batch; a (B, H, W) class mask ``target`` gets the same boxes (nearest) and the
    same flips. A multi-label target (B, C) is returned as it is."""
    size = tuple(images.shape[-2:])
    mask = target if target is not None and target.dim() == 3 else None
    if mask is None:
        images = random_resized_crop(images, size, scale, generator=generator)
        return random_flip(images, generator=generator), target
    images, mask = random_resized_crop(images, size, scale, generator=generator, mask=mask)
    images, mask = random_flip(images, generator=generator, mask=mask)
    return images, mask


def cosine_schedule(optimizer: torch.optim.Optimizer, epochs: int) -> torch.optim.lr_scheduler.LRScheduler:
    """Cosine annealing from the optimiser's lr to 0 over ``epochs``; call ``step()`` once per epoch."""
    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, epochs), eta_min=0.0)


class Precision:
    """Autocast and loss scaling for one device: bfloat16 on a GPU that has it, else float16 with a
    ``GradScaler``; nothing on CPU or with ``enabled=False``."""

    def __init__(self, device: torch.device, enabled: bool = True) -> None:
        self.device = device
        on_gpu = enabled and device.type == "cuda"
        self.dtype: torch.dtype | None = None
        if on_gpu:
            self.dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        self.scaler = torch.amp.GradScaler("cuda") if self.dtype == torch.float16 else None

    @property
    def name(self) -> str:
        return {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(self.dtype, "fp32")

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def step(self, loss: Tensor, optimizer: torch.optim.Optimizer) -> None:
        """Backward and optimiser step, through the scaler when there is one."""
        optimizer.zero_grad(set_to_none=True)
        if self.scaler is None:
            loss.backward()
            optimizer.step()
            return
        self.scaler.scale(loss).backward()
        self.scaler.step(optimizer)
        self.scaler.update()


class BestEpoch:
    """Keeps the weights and buffers of the modules at the epoch with the lowest validation loss.

    The whole state is kept, not only the trainable parameters: with ``frozen_bn: train`` the frozen
    parts' BatchNorm statistics change every epoch too, and the tested model is the one validated.
    Kept on the CPU, so a GPU holds one copy of the model. A NaN loss never counts as lowest; the
    first finite one does. ``epoch`` is 1-based (None until a finite loss is seen)."""

    def __init__(self, *modules: nn.Module) -> None:
        self.modules = modules
        self.epoch: int | None = None
        self.loss = float("inf")
        self._states: list[dict] | None = None

    def update(self, epoch: int, loss: float) -> bool:
        """Record epoch ``epoch``'s validation loss; True when it is the new lowest."""
        if not loss < self.loss:  # NaN compares False
            return False
        self.epoch, self.loss = epoch, loss
        self._states = [
            {k: v.detach().to("cpu", copy=True) for k, v in m.state_dict().items()} for m in self.modules
        ]
        return True

    def restore(self) -> None:
        """Load the kept state back into the modules (no-op when no epoch was kept)."""
        if self._states is None:
            return
        for module, state in zip(self.modules, self._states, strict=True):
            module.load_state_dict(state)
