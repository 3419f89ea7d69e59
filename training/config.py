"""Run configurations of the training entry points: YAML files, one dataclass each.

A config names its data by the data root and the release (or label dataset) it reads, never by a
copy: the run records the versions it found there, so a checkpoint is tied to the exact release.
Unknown keys are refused with their names (a typo must not silently fall back to a default).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


@dataclass
class PretrainConfig:
    data_root: str = "data"
    sensor: str = "enmap"
    release: str = "latest"
    """A release version under ``<data_root>/releases/<dataset>/``, or ``latest``."""
    model: str = "spec_resnet50"
    method: str = "moco"
    """``moco``, ``dino``, ``mae`` or ``spectral_mae``."""
    epochs: int = 100
    batch_size: int = 256
    """The GLOBAL batch (the paper's 256 = 64 per GPU x 4 GPUs): split over the DDP processes, so it
    must divide by their number; the per-process size is logged."""
    lr: float = 1e-3
    weight_decay: float = 0.05
    optimizer: str = "adamw"
    """``adamw`` (DINO, MAE) or ``sgd`` (MoCo-v2, with ``momentum``)."""
    momentum: float = 0.9
    """SGD momentum (ignored by AdamW)."""
    schedule: str = "cosine"
    """Learning rate per epoch: ``cosine`` (linear warm-up over ``warmup_epochs``, then cosine to 0 at
    ``epochs``) or ``multistep`` (``lr`` times ``gamma`` at each epoch of ``milestones``)."""
    warmup_epochs: int = 0
    milestones: list[int] = field(default_factory=list)
    gamma: float = 0.1
    sync_bn: bool = True
    """SyncBatchNorm across the DDP processes on GPUs (as published); CPU Gloo cannot run it, so CPU
    runs keep per-process BatchNorm and say so in the log."""
    augment: dict[str, Any] = field(default_factory=dict)
    """Overrides of the method's published view augmentation (``training.recipes``), e.g.
    ``{scale: [0.08, 1.0], blur_p: 0.5}``; keys are fields of ``training.augment.Augment`` (MoCo, MAE)
    or ``MultiCrop`` (DINO)."""
    workers: int = 4
    seed: int = 0
    out_dir: str = "data/runs/pretrain"
    max_locations: int | None = None
    """Use only the first N locations (smoke runs)."""
    image_px: int = 128
    """Side of the augmented views (smaller crops make CPU smoke runs fast)."""
    init_from: str | None = None
    """A checkpoint to start the encoder from: progressive pretraining (SpectralGPT) continues a run
    on another dataset."""
    device: str = "auto"
    amp: bool = True
    """Mixed precision (bfloat16 autocast) on GPU; ignored on CPU."""
    model_args: dict[str, Any] = field(default_factory=dict)
    method_args: dict[str, Any] = field(default_factory=dict)


@dataclass
class BenchmarkConfig:
    """The downstream benchmark (``training.benchmark``); the defaults are the published recipe
    (``training.downstream``, RECIPE.md "Downstream protocols")."""

    data_root: str = "data"
    encoder: str = "data/runs/pretrain/encoder.pt"
    """The pretrained encoder checkpoint (``none``: random initialisation, the paper's baseline)."""
    datasets: list[str] = field(default_factory=lambda: ["enmap_corine", "enmap_cdl", "enmap_nlcd"])
    protocols: list[str] = field(default_factory=lambda: ["frozen", "adapter", "full"])
    """``frozen``, ``adapter``, ``full``, or ``first_<n>`` (the first n layers train)."""
    unfreeze_first: list[int] = field(default_factory=list)
    """Progressive unfreezing (paper Fig. 9): one ``first_<n>`` protocol per entry."""
    random_init: list[str] = field(default_factory=list)
    """Random-initialisation baselines: model names (``spec_resnet50``, ``spec_vit_s`` ...) or
    ``encoder`` (the benchmarked encoder's architecture); one row per protocol each."""
    epochs: int = 100
    batch_size: int | None = None
    """The GLOBAL batch, split over DDP processes; None: the published one per dataset (CORINE 128,
    NLCD 64, CDL 32, DESIS-CDL 32)."""
    lr: float = 1e-3
    """AdamW, cosine annealing to 0 over ``epochs``."""
    weight_decay: float | None = None
    """None: the published one per dataset (1e-5 CORINE, 1e-4 segmentation)."""
    frozen_bn: str = "train"
    """BatchNorm of the frozen parts: ``train`` (published: statistics re-adapt) or ``eval``."""
    normalisation: str | None = None
    """Per-band statistics the inputs are normalised with: ``release`` (the label dataset's release)
    or ``published`` (the published SpectralEarth statistics, ``training.normalisation``); None:
    ``published`` for an imported encoder, ``release`` otherwise. Recorded in every result row."""
    workers: int = 4
    seed: int = 0
    out_dir: str = "data/runs/benchmark"
    limit: int | None = None
    """Use only the first N samples of each split (smoke runs)."""
    release_mismatch: str = "refuse"
    """A label dataset built from another release than the encoder's: ``refuse`` or ``warn``."""
    device: str = "auto"
    amp: bool = True
    """Mixed precision on GPU (bfloat16 autocast, or float16 with loss scaling); off on CPU."""


def load_config(path: str | Path, cls: type, overrides: dict[str, Any] | None = None):
    """``cls`` from a YAML file, with ``overrides`` on top; unknown keys are an error."""
    data = yaml.safe_load(Path(path).read_text()) or {}
    data.update(overrides or {})
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"{path}: unknown keys {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return cls(**data)


def as_dict(config) -> dict[str, Any]:
    return dataclasses.asdict(config)
