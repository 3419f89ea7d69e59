"""Checkpoints: written whole or not at all, and resumed to the same result.

``checkpoint-last.pt`` holds everything a resumed run needs (model, optimiser, scheduler, epoch,
the history so far and every random state); it is written under a temporary name and renamed,
so a run killed while writing keeps the previous epoch's checkpoint. Each epoch draws its random
numbers from seeds of (seed, epoch), so an epoch restarted from its checkpoint repeats exactly
what the uninterrupted run did. ``encoder.pt`` is the deliverable: the encoder's weights and
what produced them, with its SHA-256 recorded beside it.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import torch

from storage_schemas.source_versions import source_version

TRAINING_ROOT = Path(__file__).resolve().parent
"""The training package, whose sources are its code version."""
LAST = "checkpoint-last.pt"
ENCODER = "encoder.pt"


def save_atomically(obj: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def load(path: Path) -> dict[str, Any]:
    return torch.load(path, map_location="cpu", weights_only=False)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def seed_epoch(seed: int, epoch: int) -> torch.Generator:
    """Seed torch's global generator for one epoch (dropout, masking inside the methods) and
    return a generator of its own for the augmentations."""
    torch.manual_seed(seed * 1_000_003 + epoch)
    generator = torch.Generator()
    generator.manual_seed(seed * 1_000_033 + epoch + 1)
    return generator


def code_version(root: Path | None = None) -> str:
    """A hash of the training code (every ``*.py`` under ``training/``): the version a checkpoint
    records, and the Dagster code version of the assets that run it."""
    return source_version(root or TRAINING_ROOT)
