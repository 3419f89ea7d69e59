"""Which catalog tiles still need a partition, in which batches, and which have left the archive.

The sensor that keeps the ``enmap_tiles`` partitions in step with the catalog is a thin Dagster
shell around :func:`plan_registration`, so the bookkeeping is tested without Dagster.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd

from storage_schemas.catalog import STATUS_MISSING, STATUS_PRESENT


@dataclass(frozen=True)
class Registration:
    new_tiles: list[str]
    """Present tiles without a partition, oldest acquisition first (at most ``limit``)."""
    batches: list[list[str]]
    """``new_tiles`` cut into consecutive runs of at most ``batch_size``."""
    missing: list[str]
    """Tiles that have a partition but whose product has left the archive."""
    pending: int
    """Present tiles without a partition left for the next tick (over ``limit``)."""


def plan_registration(
    tiles: pd.DataFrame, registered: Iterable[str], batch_size: int, limit: int
) -> Registration:
    """Compare the catalog with the registered partition keys."""
    known = set(registered)
    present = tiles[tiles["status"] == STATUS_PRESENT].sort_values(["acquired", "tile_id"], kind="stable")
    unregistered = [t for t in present["tile_id"] if t not in known]
    new = unregistered[:limit]
    missing = sorted(t for t in tiles.loc[tiles["status"] == STATUS_MISSING, "tile_id"] if t in known)
    return Registration(
        new_tiles=new,
        batches=[new[i : i + batch_size] for i in range(0, len(new), batch_size)],
        missing=missing,
        pending=len(unregistered) - len(new),
    )
