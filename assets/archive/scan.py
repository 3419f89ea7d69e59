"""Scan the archive into the tile catalog, re-reading only what is new or changed.

A scan lists the containers (product folders, ZIP files and delivery tarballs; a stat each),
compares each with the fingerprint it had at the last scan (for a tarball, also with the manifest
of its staged copy, a small JSON read), and reads only the new and changed ones, in parallel through
whatever ``map_fn`` the caller passes (a Dask client in the asset, a process pool in the
benchmark, plain ``map`` in tests). Rows of unchanged products are carried over as they are, so
their ids and values never move.

Then the acceptance policy runs over all readable products, every time (it is cheap and its
settings may change): one row per tile id (the newest processing wins; the same product twice
keeps the path seen first), cloud cover under the limit. Products that left the archive keep
their rows with ``status = "missing"``; products still there that can no longer be read, or
whose files' content changed under the same name (:mod:`assets.archive.content_hash`), keep their
last good rows with ``status = "broken"`` and the reason.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import geopandas as gpd
import pandas as pd

from assets.archive.catalog_io import (
    read_quarantine,
    read_tiles,
    records_frame,
    refusals_frame,
    write_quarantine,
    write_tiles,
)
from assets.archive.deliveries import IGNORED_KINDS, current_staging, remove_stale_staging
from assets.archive.reader import ContainerResult, RecordedSources, read_container
from assets.archive.record import Refusal
from assets.archive.sources import TAR, Container, find_containers, staged_folder
from assets.atomic_files import make_folders
from assets.environment_faults import writing_under
from assets.object_store import check_reachable
from storage_schemas.catalog import (
    IN_ARCHIVE,
    STAGE_POLICY,
    STAGE_READ,
    STATUS_BROKEN,
    STATUS_MISSING,
    STATUS_PRESENT,
    ZIP_SEPARATOR,
)
from storage_schemas.patch_store import recorded_sources
from storage_schemas.paths import DataLayout, sensor_paths, staging_root
from storage_schemas.sensors import ENMAP, Sensor, sensor_named

MapFn = Callable[[Callable, Sequence], Iterable]
BATCH = 32
"""Containers per task: big enough to hide task overhead, small enough to balance two workers."""


class ArchiveError(RuntimeError):
    """The archive as a whole cannot be scanned: missing root, or nothing usable in it."""


@dataclass(frozen=True)
class CatalogPolicy:
    """What the catalog accepts. SpectralEarth kept tiles under ~10% cloud cover."""

    max_cloud_cover: float = 10.0


@dataclass
class ScanResult:
    products: gpd.GeoDataFrame
    tiles: gpd.GeoDataFrame
    quarantine: pd.DataFrame
    stats: dict[str, float] = field(default_factory=dict)


def container_of(product_path: str) -> str:
    return product_path.split(ZIP_SEPARATOR, 1)[0]


def read_batch(
    root: Path,
    batch: Sequence[tuple[Container, str | None, Sequence[RecordedSources]]],
    sensor: Sensor = ENMAP,
) -> list[ContainerResult]:
    """Read a batch of containers (the unit of parallel work)."""
    return [read_container(root, c, checksum, sensor, recorded) for c, checksum, recorded in batch]


def scan_archive(
    layout: DataLayout,
    policy: CatalogPolicy | None = None,
    map_fn: MapFn = map,
    write: bool = True,
    full: bool = False,
) -> ScanResult:
    """Scan ``layout.archive`` (products of ``layout.sensor``) against the previous catalog;
    write products, tiles, quarantine.

    ``full`` ignores the previous fingerprints and re-reads everything (ids stay the same: they
    come from the product names).
    """
    policy = policy or CatalogPolicy()
    started = time.perf_counter()
    now = pd.Timestamp.now(tz="UTC").floor("us")
    root = layout.archive
    sensor = sensor_named(layout.sensor)
    check_reachable(root, f"the {sensor.mission} archive")
    if not root.is_dir():
        raise ArchiveError(
            f"the archive root {root} does not exist or is not a folder "
            f"(set {sensor_paths(layout.sensor).archive_env})"
        )
    containers = list(find_containers(root, sensor))
    listed = time.perf_counter()

    prev_products = read_tiles(layout.products)
    prev_failures = read_quarantine(layout.quarantine)
    prev_failures = prev_failures[prev_failures["stage"] == STAGE_READ]
    previous = _previous_fingerprints(prev_products, prev_failures)

    keep, to_read = [], []
    ignored: dict[str, dict[str, int]] = {}
    """Delivery tarball -> its members ignored on purpose, per kind."""
    refused_whole = set(prev_failures["product_path"])
    for c in containers:
        fp = previous.get(c.path)
        staged = current_staging(staged_folder(root, c.path), c.size, c.mtime_ns) if c.kind == TAR else None
        # a tarball's rows stand for its staged copy: kept only while that copy is there
        in_place = c.kind != TAR or staged is not None or c.path in refused_whole
        if fp is not None and not full and (fp[0], fp[1]) == (c.size, c.mtime_ns) and in_place:
            keep.append(c.path)
            if staged is not None:
                ignored[c.path] = staged.ignored
        else:
            to_read.append((c, None if full or fp is None else fp[2]))
    to_read = _with_recorded_sources(to_read, prev_products, layout.store)
    # a tarball is unpacked as it is read (seconds per GB): one per task, so that workers share them
    small = [item for item in to_read if item[0].kind != TAR]
    batches = [[item] for item in to_read if item[0].kind == TAR]
    batches += [small[i : i + BATCH] for i in range(0, len(small), BATCH)]
    results = [r for batch in map_fn(partial(read_batch, root, sensor=sensor), batches) for r in batch]
    position = {c.path: i for i, (c, _, _) in enumerate(to_read)}
    results.sort(key=lambda r: position[r.container.path])  # in listing order, however batched
    read_done = time.perf_counter()

    ignored |= {r.container.path: r.ignored for r in results if r.container.kind == TAR}
    unchanged = {r.container.path: r.container for r in results if r.unchanged}
    kept_paths = set(keep) | set(unchanged)
    records = [rec for r in results for rec in r.records]
    read_refusals = [q for r in results for q in r.refusals]

    prev_containers = prev_products["product_path"].map(container_of)
    carried = _refresh_stats(prev_products[prev_containers.isin(kept_paths)].copy(), unchanged)

    fresh = records_frame(records)
    fresh_keys = set(zip(fresh["product_path"], fresh["product_name"], strict=True))
    not_kept = prev_products[~prev_containers.isin(kept_paths)]
    reread = [k in fresh_keys for k in zip(not_kept["product_path"], not_kept["product_name"], strict=True)]
    gone = not_kept[~pd.Series(reread, index=not_kept.index, dtype=bool)].copy()

    failures_kept = prev_failures[prev_failures["product_path"].map(container_of).isin(kept_paths)]
    failures_kept = _refresh_stats(failures_kept.copy(), unchanged)
    new_failures = refusals_frame(read_refusals, now, STAGE_READ)
    failures = _concat([failures_kept, new_failures], new_failures)

    in_archive = {c.path for c in containers}
    carried = _mark_status(carried, failures, in_archive, STATUS_PRESENT)
    gone = _mark_status(gone, failures, in_archive, STATUS_MISSING)
    left = gone["status"] != STATUS_BROKEN
    newly_missing = left & (gone["status"] != STATUS_MISSING)
    gone.loc[newly_missing, "missing_since"] = now
    gone.loc[left, "status"] = STATUS_MISSING

    products = gpd.GeoDataFrame(_concat([carried, fresh, gone], fresh), geometry="geometry", crs=fresh.crs)
    tiles, policy_refusals = apply_policy(products, policy, prev_products)
    quarantine = _concat([failures, refusals_frame(policy_refusals, now, STAGE_POLICY)], failures)

    stats = {
        "containers": len(containers),
        "containers_read": len(to_read),
        "products_hashed": sum(len(recorded) for _, _, recorded in to_read),
        "containers_unchanged": len(keep) + len(unchanged),
        "products_found": int((products["status"] == STATUS_PRESENT).sum()) + len(failures),
        "accepted": int((tiles["status"] == STATUS_PRESENT).sum()),
        "quarantined": len(quarantine),
        "missing": int((tiles["status"] == STATUS_MISSING).sum()),
        "newly_missing": int(newly_missing.sum()),
        "broken": int((tiles["status"] == STATUS_BROKEN).sum()),
        "deliveries": sum(c.kind == TAR for c in containers),
        "delivery_members_ignored": sum(sum(counts.values()) for counts in ignored.values()),
        **{
            f"delivery_ignored_{kind}": sum(counts.get(kind, 0) for counts in ignored.values())
            for kind in IGNORED_KINDS
        },
        "list_s": listed - started,
        "read_s": read_done - listed,
    }
    if write:
        with writing_under(layout.catalog_dir, "the catalog"):  # a full disk is not a product's fault
            make_folders(layout.catalog_dir)
            write_tiles(products, layout.products)
            write_tiles(tiles, layout.tiles)
            write_quarantine(quarantine, layout.quarantine)
        if containers:  # an archive that lists nothing is refused below, its staged copies kept
            tarballs = {c.path for c in containers if c.kind == TAR}
            with writing_under(staging_root(root), "the staging folder"):
                stats["staged_removed"] = len(remove_stale_staging(staging_root(root), tarballs))
    stats["total_s"] = time.perf_counter() - started
    result = ScanResult(products=products, tiles=tiles, quarantine=quarantine, stats=stats)
    if not containers:
        raise ArchiveError(
            f"the archive root {root} holds no {sensor.mission} products (folders, ZIPs or tarballs)"
        )
    if stats["accepted"] == 0:
        raise ArchiveError(
            f"none of the {stats['products_found']} products under {root} is usable: "
            f"all {len(quarantine)} are quarantined, see {layout.quarantine}"
        )
    return result


def _with_recorded_sources(
    to_read: list[tuple[Container, str | None]], previous: pd.DataFrame, store: Path
) -> list[tuple[Container, str | None, list[RecordedSources]]]:
    """Each container to read again, with the file digests the tile step recorded for the products
    it held (a container that changed size or mtime is hashed whole against them)."""
    if not previous.empty:
        previous = previous[previous["status"].isin(IN_ARCHIVE)]
    by_container: dict[str, list[RecordedSources]] = {}
    for path, name, tile in zip(
        previous["product_path"], previous["product_name"], previous["tile_id"], strict=True
    ):
        if sources := recorded_sources(store, tile, name):
            by_container.setdefault(container_of(path), []).append((path, name, sources))
    return [(c, checksum, by_container.get(c.path, [])) for c, checksum in to_read]


def delivery_ignored(stats: dict[str, float]) -> dict[str, int]:
    """Members of the delivery tarballs ignored on purpose, per kind (iif, readme, tools, ...)."""
    return {kind: int(stats[f"delivery_ignored_{kind}"]) for kind in IGNORED_KINDS}


def _broken(rows: pd.DataFrame, failures: pd.DataFrame, listed: set[str]) -> pd.Series:
    """Why each row's product is broken (None where it is not): its container is still listed
    but was refused at read, as a whole or this product of it; the refusal's file and reason."""
    reasons: dict[tuple[str, str | None], str] = {}
    for f in failures.itertuples():
        reason = f.reason if not f.file or str(f.file) in f.reason else f"{f.file}: {f.reason}"
        reasons[(f.product_path, f.product_name if isinstance(f.product_name, str) else None)] = reason
    found = [
        (reasons.get((path, name)) or reasons.get((path, None)) or reasons.get((container_of(path), None)))
        if container_of(path) in listed
        else None
        for path, name in zip(rows["product_path"], rows["product_name"], strict=True)
    ]
    return pd.Series(found, index=rows.index, dtype=object)


def _mark_status(
    rows: pd.DataFrame, failures: pd.DataFrame, listed: set[str], otherwise: str
) -> pd.DataFrame:
    """``broken`` with its reason where :func:`_broken` finds one, else ``otherwise``."""
    rows = rows.copy()
    if rows.empty:
        return rows
    why = _broken(rows, failures, listed)
    broken = why.notna()
    rows.loc[broken, "status"] = STATUS_BROKEN
    rows.loc[broken, "status_reason"] = why[broken]
    rows.loc[~broken, "status_reason"] = None
    if otherwise == STATUS_PRESENT:
        rows.loc[~broken, ["status", "missing_since"]] = (STATUS_PRESENT, None)
    return rows


def _refresh_stats(frame: pd.DataFrame, unchanged: dict[str, Container]) -> pd.DataFrame:
    """Touched but identical containers: take over the new size and mtime, keep everything else."""
    if unchanged and len(frame):
        containers = frame["product_path"].map(container_of)
        for path, c in unchanged.items():
            frame.loc[containers == path, ["source_size", "source_mtime_ns"]] = (c.size, c.mtime_ns)
    return frame


def _concat(frames: list[pd.DataFrame], empty: pd.DataFrame) -> pd.DataFrame:
    """Concatenate the non-empty frames (pandas warns about, and mistypes, empty ones)."""
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else empty


def _previous_fingerprints(products: pd.DataFrame, failures: pd.DataFrame) -> dict[str, tuple[int, int, str]]:
    out: dict[str, tuple[int, int, str]] = {}
    for frame in (products[products["status"] == STATUS_PRESENT], failures):
        for path, size, mtime, checksum in zip(
            frame["product_path"],
            frame["source_size"],
            frame["source_mtime_ns"],
            frame["checksum"],
            strict=True,
        ):
            out[container_of(path)] = (int(size), int(mtime), checksum)
    return out


def apply_policy(
    products: gpd.GeoDataFrame, policy: CatalogPolicy, previous: pd.DataFrame
) -> tuple[gpd.GeoDataFrame, list[Refusal]]:
    """The accepted tiles and the refusals of the readable products that are not accepted."""
    refusals: list[Refusal] = []
    if products.empty:
        return products, refusals
    seen_before = set(previous["product_path"] + "|" + previous["product_name"]) if len(previous) else set()
    order = products.assign(
        _present=(products["status"] == STATUS_PRESENT),
        _seen=(products["product_path"] + "|" + products["product_name"]).isin(seen_before),
    ).sort_values(
        ["tile_id", "_present", "processor_version", "processed", "_seen", "product_path"],
        ascending=[True, False, False, False, False, True],
        kind="stable",
    )
    winners = order.drop_duplicates("tile_id", keep="first")
    winner_of = winners.set_index("tile_id")
    losers = order.loc[~order.index.isin(winners.index)]
    for row in losers[losers["_present"]].itertuples():
        best = winner_of.loc[row.tile_id]
        if row.product_name == best.product_name:
            reason = f"the same product also lies at {best.product_path}, which the catalog uses"
        else:
            reason = f"superseded by the newer processing {best.product_name} at {best.product_path}"
        refusals.append(
            Refusal(row.product_path, reason, file=row.product_path, product_name=row.product_name)
        )

    cloud = winners["cloud_cover"]
    too_cloudy = cloud.isna() | (cloud > policy.max_cloud_cover)
    for row in winners[too_cloudy & winners["_present"]].itertuples():
        what = "not assessed" if pd.isna(row.cloud_cover) else f"{row.cloud_cover:.1f}%"
        refusals.append(
            Refusal(
                row.product_path,
                f"cloud cover {what} (METADATA.XML cloudCover) exceeds the limit of "
                f"{policy.max_cloud_cover:g}%",
                file=row.product_path,
                product_name=row.product_name,
            )
        )
    tiles = winners[~too_cloudy].drop(columns=["_present", "_seen"])
    return gpd.GeoDataFrame(tiles, geometry="geometry", crs=products.crs), refusals
