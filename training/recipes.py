"""How each self-supervised method is fed: which items it reads, how they become views, and what
runs around an optimiser step. The methods themselves live in ``training/methods/``; the optimiser
and the learning-rate schedule come from the run's config (``training.pretrain``).

Views are augmented where the model runs (on the GPU when there is one: a batch of 256 patches of
202 bands is 3.4 GB per view). Each recipe's views are the published ones (``../shared/RECIPE.md``,
``training.augment``); a run's ``augment`` config overrides any field of them.

- ``moco``: two views per location (two acquisitions where the location has them, else the same
  patch twice), RandomResizedCrop (0.08, 1), blur 13 px p 0.5, flips; the key encoder follows by
  momentum 0.999 after each step.
- ``dino``: two global views of the two acquisitions, no local crops, RandomResizedCrop (0.05, 1),
  blur p 0.5, flips; the prototypes are frozen in the first epoch and the teacher follows with a
  momentum rising from 0.996 to 1 on a cosine over all steps of the run.
- ``mae`` and ``spectral_mae``: one image per location, RandomResizedCrop (0.4, 1) and flips; 90% of
  tokens masked inside the method.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from training.augment import MAE_SCALE, Augment, MultiCrop, two_views

ViewMaker = Callable[[dict, torch.Generator, torch.device], Any]


@dataclass(frozen=True)
class Recipe:
    pairs: bool
    """Whether the method reads two acquisitions per location."""
    build: Callable[..., nn.Module]
    """``build(encoder, bands=None, **method_args)``; ``bands``: the band count of the release
    (MAE reconstructs them; None: the encoder's)."""
    views: Callable[[int, dict[str, Any]], Any]
    """``views(image_px, overrides)``: the published augmentation (an ``Augment`` or ``MultiCrop``)
    at ``image_px``, with the config's ``augment`` fields on top."""
    loss: Callable[[nn.Module, Any, dict, torch.Generator, torch.device], torch.Tensor]
    """``loss(method, views, batch, generator, device)``."""
    steps: frozenset[str] = field(default_factory=frozenset)
    """What the method does around a step: ``momentum`` (``step_end`` after the optimiser step, with
    a cosine-scheduled momentum when ``cosine_momentum``), ``freeze`` (``before_optimizer_step``)."""


def _views(cls: type, published: dict[str, Any]) -> Callable[[int, dict[str, Any]], Any]:
    def make(image_px: int, overrides: dict[str, Any]) -> Any:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ValueError(
                f"augment: unknown keys {', '.join(unknown)} for {cls.__name__}; "
                f"known: {', '.join(sorted(known))}"
            )
        fields = {**published, **overrides}
        fields = {k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()}
        return cls(**fields)

    return make


def _moco_views(image_px: int, overrides: dict[str, Any]) -> Augment:
    return _views(Augment, {"size": image_px})(image_px, overrides)


def _dino_views(image_px: int, overrides: dict[str, Any]) -> MultiCrop:
    local = max(8, image_px * 7 // 16 // 4 * 4)  # DINO's 96/224 of the side, a multiple of 4
    return _views(MultiCrop, {"global_size": image_px, "local_size": local})(image_px, overrides)


def _mae_views(image_px: int, overrides: dict[str, Any]) -> Augment:
    return _views(Augment, {"size": image_px, "scale": MAE_SCALE, "blur_p": 0.0})(image_px, overrides)


def _moco_loss(method, views, batch, generator, device):
    view1, view2 = two_views(batch["view1"].to(device), batch["view2"].to(device), views, generator)
    return method(view1, view2)


def _dino_loss(method, views, batch, generator, device):
    globals_, locals_ = views(batch["view1"].to(device), batch["view2"].to(device), generator)
    return method(globals_, locals_)


def _mae_loss(method, views, batch, generator, device):
    return method(views(batch["image"].to(device), generator))


def _build_moco(encoder, bands=None, **kw):
    from training.methods.moco import MoCoV2

    return MoCoV2(encoder, **kw)


def _build_dino(encoder, bands=None, **kw):
    from training.methods.dino import DINO

    return DINO(encoder, **kw)


def _build_mae(encoder, bands=None, **kw):
    from training.methods.mae import MAE

    if bands is not None:
        kw.setdefault("bands", bands)
    return MAE(encoder, **kw)


def _build_spectral_mae(encoder, bands=None, **kw):
    from training.methods.spectral_mae import SpectralMAE

    return SpectralMAE(encoder, **kw)


RECIPES: dict[str, Recipe] = {
    "moco": Recipe(True, _build_moco, _moco_views, _moco_loss, frozenset({"momentum"})),
    "dino": Recipe(
        True, _build_dino, _dino_views, _dino_loss, frozenset({"momentum", "cosine_momentum", "freeze"})
    ),
    "mae": Recipe(False, _build_mae, _mae_views, _mae_loss),
    "spectral_mae": Recipe(False, _build_spectral_mae, _mae_views, _mae_loss),
}


def recipe(name: str) -> Recipe:
    if name not in RECIPES:
        raise ValueError(f"unknown method {name!r}; known: {', '.join(RECIPES)}")
    return RECIPES[name]


def before_step(method: nn.Module, recipe_: Recipe, epoch: int) -> None:
    """Between ``backward`` and ``optimizer.step()`` (DINO: no prototype update in the first epoch)."""
    if "freeze" in recipe_.steps:
        method.before_optimizer_step(epoch)


def after_step(method: nn.Module, recipe_: Recipe, step: int, total_steps: int) -> None:
    """After ``optimizer.step()``: the momentum encoder's update; ``step`` counts the run's steps
    from 0 (resumed runs included), so DINO's momentum schedule is the same for a resumed run."""
    if "momentum" not in recipe_.steps:
        return
    if "cosine_momentum" in recipe_.steps:
        from training.methods.dino import teacher_momentum

        method.step_end(teacher_momentum(method.momentum, step, total_steps))
    else:
        method.step_end()
