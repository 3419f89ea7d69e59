"""Which per-band statistics a benchmark normalises with: the release's, or the published ones.

Published SpectralEarth encoders were trained on inputs normalised with the authors' per-band mean
and standard deviation (RECIPE.md; ``storage_schemas/enmap_l2a_bands.csv`` carries them for the
202 SpectralEarth bands). An imported encoder therefore sees its training distribution only with
those statistics, while an encoder pretrained here was trained with its release's. ``published``
matches the dataset's bands to the published ones by wavelength; a dataset whose bands are not all
among them (DESIS-CDL, another band selection) cannot be normalised so and keeps its release's
statistics, which the result rows record.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

import numpy as np

from training.data import BandStatistics

CHOICES = ("published", "release")
BAND_TABLE = "enmap_l2a_bands.csv"
WAVELENGTH_TOLERANCE_NM = 0.05
"""Release statistics store wavelengths as float32 (418.200012 for 418.2)."""


@dataclass(frozen=True)
class Normalisation:
    stats: BandStatistics
    used: str
    """``published`` or ``release``: what the rows record."""
    why: str = ""
    """Why ``published`` was asked for and ``release`` used ("" otherwise)."""


@cache
def published_table() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(wavelength_nm, mean, std) of the 202 SpectralEarth bands, in their published order."""
    rows = []
    with resources.files("storage_schemas").joinpath(BAND_TABLE).open() as f:
        for row in csv.DictReader(line for line in f if not line.startswith("#")):
            if row["spectralearth_index"]:
                rows.append(
                    (
                        int(row["spectralearth_index"]),
                        *map(float, (row["wavelength_nm"], row["mean"], row["std"])),
                    )
                )
    rows.sort()
    table = np.array([r[1:] for r in rows], dtype=np.float64)
    return table[:, 0], table[:, 1].astype(np.float32), table[:, 2].astype(np.float32)


def published_statistics(release_stats: BandStatistics) -> BandStatistics | None:
    """The published mean and std for each band of ``release_stats`` (by wavelength); ``None``
    when a band has no published statistics."""
    wavelengths, mean, std = published_table()
    distance = np.abs(np.asarray(release_stats.wavelength_nm, np.float64)[:, None] - wavelengths[None, :])
    nearest = distance.argmin(axis=1)
    if not bool((distance[np.arange(len(nearest)), nearest] <= WAVELENGTH_TOLERANCE_NM).all()):
        return None
    return BandStatistics(mean[nearest], std[nearest], release_stats.wavelength_nm)


def normalisation_for(choice: str, release: Path, dataset: str) -> Normalisation:
    """The statistics ``dataset`` (built from ``release``) is normalised with under ``choice``."""
    if choice not in CHOICES:
        raise LookupError(f"normalisation {choice!r}: use one of {', '.join(CHOICES)}")
    own = BandStatistics.of_release(release)
    if choice == "release":
        return Normalisation(own, "release")
    published = published_statistics(own)
    if published is None:
        span = f"{own.wavelength_nm[0]:.0f}-{own.wavelength_nm[-1]:.0f} nm"
        why = (
            f"{dataset}'s {len(own.mean)} bands ({span}) are not all among the {len(published_table()[0])} "
            f"published SpectralEarth bands: normalised with release {release.name}'s statistics"
        )
        return Normalisation(own, "release", why)
    return Normalisation(published, "published")
