"""Which catalog tiles still need a partition or a run, in which batches, and which have left the
archive.

The sensor that keeps a chain's tile partitions in step with the catalog and the patch store is a
thin Dagster shell around these functions, so the bookkeeping is tested without Dagster.

Why the store decides: ``tile_catalog`` writes the catalog before the plan and the store have
given its new tiles their slots. A tile run started in between would commit a tile with no
patches, show green, and never be asked for again. So a tile is registered (and run) only once
the store has taken it into account: either the store's allocation is newer than every step
upstream of it (then every present tile of the catalog is planned, with or without patches), or
the tile already has slots. And every tile whose slots lack a commit is requested again when the
store changes, which repairs whatever went wrong before.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise

import pandas as pd

from storage_schemas.catalog import STATUS_BROKEN, STATUS_MISSING, STATUS_PRESENT


@dataclass(frozen=True)
class Registration:
    new_tiles: list[str]
    """Present tiles without a partition that the store has taken into account, oldest
    acquisition first (at most ``limit``)."""
    batches: list[list[str]]
    """``new_tiles`` cut into consecutive runs of at most ``batch_size``."""
    missing: list[str]
    """Tiles that have a partition but whose product has left the archive."""
    pending: int
    """Registrable tiles left for the next tick (over ``limit``)."""
    waiting: int = 0
    """Present tiles without a partition that the store has not allocated yet."""
    broken: list[str] = field(default_factory=list)
    """Tiles that have a partition and whose product is in the archive but broken (not run: the
    catalog says why; their committed patches stay)."""


def plan_registration(
    tiles: pd.DataFrame,
    registered: Iterable[str],
    batch_size: int,
    limit: int,
    allocated: Collection[str] | None = None,
) -> Registration:
    """Compare the catalog with the registered partition keys. ``allocated``: the tiles the store
    has slots for, when the store is older than the catalog (only those may run yet); None when
    the store is up to date with the catalog."""
    known = set(registered)
    present = tiles[tiles["status"] == STATUS_PRESENT].sort_values(["acquired", "tile_id"], kind="stable")
    unregistered = [t for t in present["tile_id"] if t not in known]
    ready = unregistered if allocated is None else [t for t in unregistered if t in allocated]
    new = ready[:limit]
    missing = sorted(t for t in tiles.loc[tiles["status"] == STATUS_MISSING, "tile_id"] if t in known)
    broken = sorted(t for t in tiles.loc[tiles["status"] == STATUS_BROKEN, "tile_id"] if t in known)
    return Registration(
        new_tiles=new,
        batches=_cut(new, batch_size),
        missing=missing,
        broken=broken,
        pending=len(ready) - len(new),
        waiting=len(unregistered) - len(ready),
    )


def store_is_current(latest: Sequence[int | None]) -> bool:
    """Whether the last allocation of the store came after the last write of every step upstream
    of it. ``latest``: storage ids of the last materialisations, catalog first, store last (None:
    never materialised)."""
    if any(i is None for i in latest):
        return False
    return all(a < b for a, b in pairwise(latest))


def redo_batches(
    needs_patches: Iterable[str],
    present: Collection[str],
    registered: Sequence[str],
    busy: Collection[str],
    batch_size: int,
) -> list[list[str]]:
    """Registered, present tiles whose slots lack a commit and that no run is writing now, as
    batches of consecutive partitions (a run takes a partition range, so a batch never spans a
    tile that needs nothing)."""
    wanted = {t for t in needs_patches if t in present and t not in busy}
    blocks: list[list[str]] = []
    previous = None
    for position, tile in enumerate(registered):
        if tile not in wanted:
            continue
        if previous is None or position != previous + 1:
            blocks.append([])
        blocks[-1].append(tile)
        previous = position
    return [batch for block in blocks for batch in _cut(block, batch_size)]


def tiles_of_runs(ranges: Iterable[Mapping[str, str]], registered: Sequence[str]) -> set[str]:
    """The partitions that runs target, from their tags (``dagster/partition`` or a range)."""
    position = {t: i for i, t in enumerate(registered)}
    tiles: set[str] = set()
    for tags in ranges:
        if "dagster/partition" in tags:
            tiles.add(tags["dagster/partition"])
        start = position.get(tags.get("dagster/asset_partition_range_start", ""))
        end = position.get(tags.get("dagster/asset_partition_range_end", ""))
        if start is not None and end is not None:
            tiles.update(registered[start : end + 1])
    return tiles


def _cut(items: list[str], size: int) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]
