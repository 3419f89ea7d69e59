"""Resample a segmentation dataset towards a more balanced class distribution (EnMAP-CDL).

The paper only says that CDL's strong imbalance was "resampled to a more balanced
representation". Here each patch is grouped by its *dominant* class (the class with most pixels,
background aside; patches without any crop form their own group), and every group larger than
the median group is cut down to the median, keeping the patches first in a seeded order of their
ids. Rare crops keep every patch they have; the crops that fill most of the US Midwest (corn,
soybeans) lose the most. Nothing is duplicated, so no patch appears twice in a split.
"""

from __future__ import annotations

import hashlib

import numpy as np


def balance_by_dominant_class(
    sample_ids: list[str], dominant: np.ndarray, seed: int = 0
) -> tuple[np.ndarray, int]:
    """A keep-mask over the samples and the per-group cap (the median group size)."""
    dominant = np.asarray(dominant)
    if len(dominant) == 0:
        return np.zeros(0, dtype=bool), 0
    groups, counts = np.unique(dominant, return_counts=True)
    cap = int(np.ceil(np.median(counts)))
    rank = np.argsort(
        [hashlib.blake2b(f"{seed}:{s}".encode(), digest_size=8).digest() for s in sample_ids], kind="stable"
    )
    keep = np.zeros(len(dominant), dtype=bool)
    taken = dict.fromkeys(groups.tolist(), 0)
    for i in rank:
        group = int(dominant[i])
        if taken[group] < cap:
            taken[group] += 1
            keep[i] = True
    return keep, cap
