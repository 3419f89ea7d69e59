"""``spectralforge validate STORE``: does a folder hold a patch store of this layout, intact?

It checks what readers rely on, from the files alone (no catalog, no plan): the layout version;
the arrays, their dtypes, dimensions, chunks, shards and fill; coordinates as long as the patch
axis; every shard owned by one tile; location ids that match their windows; commit records that
parse and describe slots their tile owns. ``deep`` also re-hashes every committed patch against
its record (reads all pixels).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import zarr

from storage_schemas.patch_store import (
    BAND_COORDS,
    COMMITS,
    DIMS,
    DTYPE,
    FILL,
    LAYOUT_ATTR,
    PATCH_COORDS,
    REFLECTANCE,
    REWRITING,
    CommitRecord,
    StoreLayoutError,
    check_layout,
    patch_hash,
)
from storage_schemas.paths import storage_path, zarr_location
from storage_schemas.plan import PATCH_PX, location_ids


@dataclass
class StoreReport:
    path: Path
    problems: list[str] = field(default_factory=list)
    summary: dict[str, int | str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems


def validate_store(path: Path, deep: bool = False) -> StoreReport:
    path = storage_path(path)
    report = StoreReport(path)
    meta = path / "zarr.json"
    if not meta.is_file():
        report.problems.append(f"{meta}: missing; not a Zarr v3 group")
        return report
    try:
        group = zarr.open_group(zarr_location(path), mode="r", zarr_format=3)
        check_layout(dict(group.attrs), str(path))
    except (StoreLayoutError, ValueError, json.JSONDecodeError) as exc:
        report.problems.append(str(exc))
        return report
    report.summary["layout"] = json.dumps(group.attrs[LAYOUT_ATTR])
    problems = report.problems
    names = set(group.array_keys())
    missing = [n for n in (REFLECTANCE, *BAND_COORDS, *PATCH_COORDS) if n not in names]
    if missing:
        problems.append(f"{path}: arrays missing: {', '.join(missing)}")
        return report
    reflectance = group[REFLECTANCE]
    n_slots, n_bands = reflectance.shape[0], reflectance.shape[1]
    per_shard = group.attrs.get("patches_per_shard")
    _expect(problems, "reflectance dtype", str(reflectance.dtype), DTYPE)
    _expect(problems, "reflectance dimensions", tuple(reflectance.metadata.dimension_names or ()), DIMS)
    _expect(problems, "reflectance chunks", reflectance.chunks, (1, n_bands, PATCH_PX, PATCH_PX))
    _expect(problems, "reflectance shards", reflectance.shards, (per_shard, n_bands, PATCH_PX, PATCH_PX))
    _expect(problems, "reflectance fill value", int(reflectance.fill_value), FILL)
    if per_shard and n_slots % per_shard:
        problems.append(f"{path}: {n_slots} slots is not a whole number of {per_shard}-patch shards")
    for name in BAND_COORDS:
        _expect(problems, f"{name} shape", group[name].shape, (n_bands,))
    wavelength = group["wavelength"][:]
    if len(wavelength) > 1 and not np.all(np.diff(wavelength) > 0):
        problems.append(f"{path}: wavelength is not strictly increasing")
    for name in PATCH_COORDS:
        _expect(problems, f"{name} shape", group[name].shape, (n_slots,))
    if problems:
        return report
    tile = _strings(group["tile_id"])
    location = _strings(group["location_id"])
    used = location != ""
    if per_shard and n_slots:
        owners = tile.reshape(-1, per_shard)
        mixed = np.flatnonzero((owners != owners[:, :1]).any(axis=1))
        if len(mixed):
            problems.append(f"{path}: shards {mixed[:5].tolist()} hold slots of more than one tile")
    expected_ids = location_ids(group["epsg"][:][used], group["x0"][:][used], group["y0"][:][used]).to_numpy()
    wrong = np.flatnonzero(expected_ids != location[used])
    if len(wrong):
        problems.append(f"{path}: {len(wrong)} slots have a location_id that does not match their epsg/x0/y0")
    records = _check_commits(path, tile, location, n_bands, problems)
    report.summary.update(
        slots=n_slots,
        used_slots=int(used.sum()),
        tiles=len(set(tile[tile != ""])),
        committed_tiles=len(records),
        committed_patches=sum(len(r.written()) for r in records),
    )
    leftovers = [p.name for p in (path / REFLECTANCE).rglob("*.partial")]
    if leftovers:
        report.summary["leftover_partial_files"] = len(leftovers)
    rewriting = sorted(p.name.removesuffix(REWRITING) for p in (path / COMMITS).glob(f"*{REWRITING}"))
    if rewriting:  # not a fault of the store: a re-write is running, or was killed before its commit
        report.summary["tiles_rewrite_unfinished"] = ", ".join(rewriting)
    if deep:
        _rehash(reflectance, [r for r in records if r.tile_id not in rewriting], problems)
    return report


def _strings(array: zarr.Array) -> np.ndarray:
    """A string coordinate as a NumPy object array (Zarr returns NumPy's variable-width StringDType)."""
    return np.asarray(array[:].astype(object))


def _expect(problems: list[str], what: str, found, expected) -> None:
    if found != expected:
        problems.append(f"{what} is {found}, the layout says {expected}")


def _check_commits(
    store: Path, tile: np.ndarray, location: np.ndarray, n_bands: int, problems: list[str]
) -> list[CommitRecord]:
    records = []
    for path in sorted((store / COMMITS).glob("*.json")):
        if path.name == "zarr.json":
            continue
        try:
            record = CommitRecord.read(path)
        except (json.JSONDecodeError, TypeError) as exc:
            problems.append(f"{path}: unreadable commit record: {exc}")
            continue
        lengths = {
            len(getattr(record, f)) for f in ("slots", "location_ids", "outcomes", "reasons", "patch_hashes")
        }
        slots = np.asarray(record.slots, dtype=np.int64)
        if len(lengths) != 1 or len(record.band_sum) != n_bands or len(record.band_sumsq) != n_bands:
            problems.append(f"{path}: lists of unequal length")
        elif len(slots) and (slots.max() >= len(tile) or (tile[slots] != record.tile_id).any()):
            problems.append(f"{path}: lists slots that tile {record.tile_id} does not own")
        elif (location[slots] != np.asarray(record.location_ids, dtype=object)).any():
            problems.append(f"{path}: location ids differ from the store's slots")
        else:
            records.append(record)
    return records


def _rehash(reflectance: zarr.Array, records: list[CommitRecord], problems: list[str]) -> None:
    for record in records:
        for i in record.written():
            if patch_hash(reflectance[record.slots[i]]) != record.patch_hashes[i]:
                problems.append(
                    f"slot {record.slots[i]} (tile {record.tile_id}): pixels differ from the commit hash"
                )
