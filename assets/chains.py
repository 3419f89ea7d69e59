"""The names of one sensor's asset chain (catalog -> plan -> store -> tile patches -> release).

Every stage's ``defs.py`` builds its assets once per sensor from a :class:`Chain`, so EnMAP and
DESIS run the same code under different asset keys, partitions, jobs and data layouts. EnMAP
keeps the unprefixed keys it always had (``tile_catalog``, ..., ``spectral_earth``) and the
``enmap_tiles`` partitions; DESIS gets the ``desis/`` key prefix, ``desis_tiles`` partitions
and ``desis_``-prefixed jobs. No Dagster import here: the names are plain data.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Chain:
    sensor: str
    """``storage_schemas.sensors`` name; also the ``DataLayout`` sensor."""
    prefix: tuple[str, ...]
    """Asset key prefix (empty for EnMAP)."""
    partitions: str
    """Name of the dynamic partitions of per-tile assets."""
    release: str
    """Name (last key part) of the release asset."""
    archive: str
    """Name of the external archive asset."""

    @property
    def key_prefix(self) -> list[str] | None:
        return list(self.prefix) or None

    def key(self, name: str) -> list[str]:
        """Asset key path of one of the chain's assets."""
        return [*self.prefix, name]

    def job(self, name: str) -> str:
        """Name of a job, schedule or sensor of this chain (EnMAP: unprefixed)."""
        return "_".join([*self.prefix, name])

    def group(self, stage: str) -> str:
        """Asset group in the UI: one per stage and sensor."""
        return self.job(stage)

    def asset_args(self, name: str, stage: str, code_version: str) -> dict:
        """What every asset decorator of the chain says the same way: its name under the chain's
        key prefix, the stage's group and the stage's code version."""
        return {
            "name": name,
            "key_prefix": self.key_prefix,
            "group_name": self.group(stage),
            "code_version": code_version,
        }


ENMAP_CHAIN = Chain("enmap", (), "enmap_tiles", "spectral_earth", "enmap_archive")
DESIS_CHAIN = Chain("desis", ("desis",), "desis_tiles", "release", "archive")
CHAINS = {c.sensor: c for c in (ENMAP_CHAIN, DESIS_CHAIN)}
