"""How each self-supervised method is fed: which items it reads, how they become views, and what
runs after an optimiser step. The methods themselves live in ``training/methods/``.

Views are augmented where the model runs (on the GPU when there is one: a batch of 256 patches of
202 bands is 3.4 GB per view).

- ``moco``: two views per location (two acquisitions where the location has them), MoCo-v2's
  augmentations without colour jitter; the key encoder follows by momentum after each step.
- ``dino``: DINO's multi-crop over the two acquisitions; the teacher follows by momentum.
- ``mae`` and ``spectral_mae``: one image per location, cropped and flipped; 90% of tokens masked
  inside the method.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from training.augment import Augment, MultiCrop, two_views


@dataclass(frozen=True)
class Recipe:
    pairs: bool
    """Whether the method reads two acquisitions per location."""
    build: Callable[..., nn.Module]
    loss: Callable[[nn.Module, dict, torch.Generator, int, torch.device], torch.Tensor]
    after_step: str | None
    """Method attribute to call after each optimiser step (momentum updates), if any."""


def _moco_loss(method, batch, generator, image_px, device):
    augment = Augment(size=image_px)
    view1, view2 = two_views(batch["view1"].to(device), batch["view2"].to(device), augment, generator)
    return method(view1, view2)


def _dino_loss(method, batch, generator, image_px, device):
    crops = MultiCrop(global_size=image_px, local_size=max(8, image_px * 3 // 8))
    globals_, locals_ = crops(batch["view1"].to(device), batch["view2"].to(device), generator)
    return method(globals_, locals_)


def _mae_loss(method, batch, generator, image_px, device):
    augment = Augment(size=image_px, scale=(0.2, 1.0), blur_p=0.0, rotate=False)
    return method(augment(batch["image"].to(device), generator))


def _build_moco(encoder, **kw):
    from training.methods.moco import MoCoV2

    return MoCoV2(encoder, **kw)


def _build_dino(encoder, **kw):
    from training.methods.dino import DINO

    return DINO(encoder, **kw)


def _build_mae(encoder, **kw):
    from training.methods.mae import MAE

    return MAE(encoder, **kw)


def _build_spectral_mae(encoder, **kw):
    from training.methods.spectral_mae import SpectralMAE

    return SpectralMAE(encoder, **kw)


RECIPES: dict[str, Recipe] = {
    "moco": Recipe(True, _build_moco, _moco_loss, "step_end"),
    "dino": Recipe(True, _build_dino, _dino_loss, "step_end"),
    "mae": Recipe(False, _build_mae, _mae_loss, None),
    "spectral_mae": Recipe(False, _build_spectral_mae, _mae_loss, None),
}


def recipe(name: str) -> Recipe:
    if name not in RECIPES:
        raise ValueError(f"unknown method {name!r}; known: {', '.join(RECIPES)}")
    return RECIPES[name]


def after_step(method: nn.Module, recipe_: Recipe, **kw: Any) -> None:
    if recipe_.after_step:
        getattr(method, recipe_.after_step)(**kw)
