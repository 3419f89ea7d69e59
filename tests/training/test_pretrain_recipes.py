"""The published pretraining recipes (../shared/RECIPE.md, "Pretraining") as our configs and loop
run them: every ``pretrain_paper_*.yaml`` carries the published numbers (written out here, not read
from the code), each schedule gives the published learning rate at given epochs, the global batch is
split over the DDP processes, and SyncBatchNorm is used only where it can run."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from training.config import PretrainConfig
from training.distributed import Placement
from training.pretrain import (
    RecipeError,
    build_optimizer,
    check_recipe,
    learning_rate,
    per_process_batch,
    synchronised,
)
from training.recipes import recipe

RUN_CONFIGS = Path(__file__).parents[2] / "deploy" / "run_configs"

COMMON = {"batch_size": 256, "image_px": 128, "sync_bn": True}
MOCO = {
    **COMMON,
    "method": "moco",
    "method_args": {"queue_size": 32768, "momentum": 0.999, "temperature": 0.1, "dim": 128, "hidden": 2048},
    "epochs": 100,
    "optimizer": "sgd",
    "momentum": 0.9,
    "lr": 0.001,
    "weight_decay": 1e-4,
    "schedule": "multistep",
    "milestones": [60, 80],
    "gamma": 0.1,
    "warmup_epochs": 0,
    "augment": {
        "scale": [0.08, 1.0],
        "blur_p": 0.5,
        "blur_kernel": 13,
        "blur_sigma": [0.1, 2.0],
        "p_horizontal": 0.5,
        "p_vertical": 0.5,
        "rotate": False,
    },
}
DINO = {
    **COMMON,
    "method": "dino",
    "method_args": {
        "out_dim": 128,
        "hidden": 2048,
        "bottleneck": 256,
        "teacher_temp": 0.04,
        "student_temp": 0.1,
        "center_momentum": 0.9,
        "momentum": 0.996,
        "freeze_last_layer": 1,
    },
    "epochs": 100,
    "optimizer": "adamw",
    "lr": 0.001,
    "weight_decay": 1e-5,
    "schedule": "cosine",
    "warmup_epochs": 20,
    "augment": {"n_local": 0, "global_scale": [0.05, 1.0], "global_blur_p": [0.5, 0.5], "blur_kernel": 13,
                "rotate": False},
}  # fmt: skip
MAE = {
    **COMMON,
    "method": "mae",
    "method_args": {"mask_ratio": 0.9, "decoder_dim": 512, "decoder_depth": 1, "decoder_heads": 16,
                    "norm_pix_loss": True},
    "epochs": 200,
    "optimizer": "adamw",
    "lr": 1e-4,
    "weight_decay": 0.01,
    "schedule": "cosine",
    "warmup_epochs": 0,
    "augment": {"scale": [0.4, 1.0], "blur_p": 0.0, "p_horizontal": 0.5, "p_vertical": 0.5, "rotate": False},
}  # fmt: skip
PAPER = {
    "pretrain_paper_moco_resnet50.yaml": {**MOCO, "model": "spec_resnet50"},
    "pretrain_paper_moco_vit_s.yaml": {**MOCO, "model": "spec_vit_s"},
    "pretrain_paper_dino_resnet50.yaml": {**DINO, "model": "spec_resnet50"},
    "pretrain_paper_dino_vit_s.yaml": {**DINO, "model": "spec_vit_s"},
    "pretrain_paper_mae_vit_s.yaml": {**MAE, "model": "spec_vit_s"},
}


def _paper(name: str) -> PretrainConfig:
    return PretrainConfig(
        **yaml.safe_load((RUN_CONFIGS / name).read_text())["ops"]["pretrained_encoder"]["config"]
    )


@pytest.mark.parametrize("name", sorted(PAPER))
def test_every_paper_config_carries_the_published_settings(name):
    cfg = _paper(name)
    for key, expected in PAPER[name].items():
        assert getattr(cfg, key) == expected, key
    check_recipe(cfg)
    views = recipe(cfg.method).views(cfg.image_px, cfg.augment)
    for key, value in cfg.augment.items():  # the views built from the config hold the numbers
        assert getattr(views, key) == (tuple(value) if isinstance(value, list) else value)


def test_there_is_a_paper_config_for_each_published_method_and_backbone():
    assert sorted(p.name for p in RUN_CONFIGS.glob("pretrain_paper_*.yaml")) == sorted(PAPER)


def test_the_moco_schedule_drops_tenfold_at_epochs_60_and_80():
    cfg = _paper("pretrain_paper_moco_resnet50.yaml")
    lrs = {e: learning_rate(cfg, e) for e in (0, 59, 60, 79, 80, 99)}
    assert lrs == pytest.approx({0: 1e-3, 59: 1e-3, 60: 1e-4, 79: 1e-4, 80: 1e-5, 99: 1e-5})


def test_the_dino_schedule_warms_up_20_epochs_then_follows_a_cosine():
    cfg = _paper("pretrain_paper_dino_vit_s.yaml")
    assert learning_rate(cfg, 0) == pytest.approx(1e-3 / 20)
    assert learning_rate(cfg, 9) == pytest.approx(1e-3 / 2)
    assert learning_rate(cfg, 19) == pytest.approx(1e-3)
    assert learning_rate(cfg, 20) == pytest.approx(1e-3)
    assert learning_rate(cfg, 60) == pytest.approx(0.5e-3)  # half-way through the 80 cosine epochs
    assert 0 < learning_rate(cfg, 99) < 1e-6


def test_the_mae_schedule_is_a_cosine_over_200_epochs_without_warm_up():
    cfg = _paper("pretrain_paper_mae_vit_s.yaml")
    assert learning_rate(cfg, 0) == pytest.approx(1e-4)
    assert learning_rate(cfg, 100) == pytest.approx(0.5e-4)
    assert 0 < learning_rate(cfg, 199) < 1e-8


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("pretrain_paper_moco_resnet50.yaml", torch.optim.SGD),
        ("pretrain_paper_dino_vit_s.yaml", torch.optim.AdamW),
        ("pretrain_paper_mae_vit_s.yaml", torch.optim.AdamW),
    ],
)
def test_each_recipe_gets_its_optimiser(name, kind):
    cfg = _paper(name)
    opt = build_optimizer(cfg, [torch.nn.Parameter(torch.zeros(3))])
    group = opt.param_groups[0]
    assert type(opt) is kind and (group["lr"], group["weight_decay"]) == (cfg.lr, cfg.weight_decay)
    if kind is torch.optim.SGD:
        assert group["momentum"] == 0.9


@pytest.mark.parametrize(("world", "per"), [(1, 256), (2, 128), (4, 64)])
def test_the_global_batch_is_split_over_the_processes(world, per):
    assert per_process_batch(256, world) == per


def test_a_global_batch_that_does_not_divide_is_refused_with_the_fix():
    with pytest.raises(RecipeError, match="batch_size 6 is the global batch and must divide by the 4"):
        per_process_batch(6, 4)
    with pytest.raises(RecipeError, match=r"moco needs at least 2 per process.*raise batch_size to 4"):
        per_process_batch(2, 2, "moco")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"optimizer": "lamb"}, "optimizer 'lamb'"),
        ({"schedule": "step"}, "schedule 'step'"),
        ({"schedule": "multistep", "warmup_epochs": 5}, "no warm-up"),
        ({"augment": {"crop": 1}}, "unknown keys crop"),
    ],
)
def test_a_recipe_the_loop_cannot_run_is_refused(change, message):
    with pytest.raises(RecipeError, match=message):
        check_recipe(PretrainConfig(**change))


class _Log:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, line: str) -> None:
        self.lines.append(line)


def _bn_model() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))


def _has_sync(module: torch.nn.Module) -> bool:
    return any(isinstance(m, torch.nn.SyncBatchNorm) for m in module.modules())


def test_sync_batchnorm_only_on_gpu_ddp_and_the_log_says_why_not():
    cfg, log = PretrainConfig(), _Log()
    assert not _has_sync(synchronised(_bn_model(), cfg, Placement(0, 1, torch.device("cpu")), log))
    assert not _has_sync(synchronised(_bn_model(), cfg, Placement(0, 2, torch.device("cpu")), log))
    assert "CPU Gloo cannot run torch.nn.SyncBatchNorm" in log.lines[-1]
    # On GPUs the conversion is the module tree's (no GPU needed to convert, only to run).
    assert _has_sync(synchronised(_bn_model(), cfg, Placement(0, 4, torch.device("cuda", 0)), log))
    off = PretrainConfig(sync_bn=False)
    assert not _has_sync(synchronised(_bn_model(), off, Placement(0, 4, torch.device("cuda", 0)), log))
