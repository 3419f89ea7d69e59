"""Issue 16's fault suite: kill -9 at each store event of a tile run, same-size corruption and
truncation of a product, a full disk, two writers of one tile. Each case checks what the pipeline
does about the fault (what a release holds, what fails and says what) and ends with a store byte
for byte identical to an uninterrupted run once the tile is run again.

The kills are real (SIGKILL from a subprocess, :mod:`tests.patches.kill_at`), at the n-th call of
one store function; one reference store, committed and released, is built once per module.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from dagster import DagsterInstance, materialize

import assets.patches.patchify as patchify
from assets.archive.catalog_io import read_quarantine, read_tiles
from assets.archive.defs import enmap_tiles
from assets.archive.scan import scan_archive
from assets.archive.tile_registry import plan_registration
from assets.patches.commit import commit_path, rewriting_path
from assets.patches.defs import spectral_earth, tile_patches
from assets.patches.release_publish import release_folder
from storage_schemas.catalog import STATUS_BROKEN, STATUS_PRESENT
from storage_schemas.patch_store import PATCHES_PER_SHARD, CommitRecord, shard_path
from storage_schemas.paths import DataLayout
from storage_schemas.release import LATEST, MANIFEST, PATCH_INDEX
from tests.copies import copy_data_root, replace_bytes
from tests.patches.conftest import resources
from tests.patches.helpers import planned_tiles, run_tiles, tree_digest
from tests.patches.test_clear_errors import _failure_text
from tests.patches.test_source_integrity import _file, _flipped, _tiles_by_kind

PROJECT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Released:
    """The module's reference: every planned tile run once, uninterrupted, and released."""

    root: Path
    tiles: list[str]
    store: dict[str, str]
    """tree_digest of the store."""
    version: str
    patches: int


def _latest(layout: DataLayout) -> str:
    return (layout.releases / LATEST).read_text().strip()


def _index(layout: DataLayout) -> pd.DataFrame:
    return pd.read_parquet(release_folder(layout, "latest") / PATCH_INDEX)


def _manifest(layout: DataLayout) -> dict:
    return json.loads((release_folder(layout, "latest") / MANIFEST).read_text())


def _release(layout: DataLayout, **config):
    """Materialise the release asset over ``layout`` with ReleaseConfig ``config``."""
    run_config = {"ops": {spectral_earth.op.name: {"config": config}}} if config else None
    return materialize(
        [spectral_earth],
        instance=DagsterInstance.ephemeral(),
        resources=resources(layout),
        run_config=run_config,
        raise_on_error=False,
    )


def _metadata(result) -> dict:
    (event,) = result.asset_materializations_for_node(spectral_earth.op.name)
    return {k: v.value for k, v in event.metadata.items()}


@pytest.fixture(scope="module")
def released(planned_template: Path, tmp_path_factory) -> Released:
    layout = DataLayout.at(copy_data_root(planned_template, tmp_path_factory.mktemp("released") / "data"))
    tiles = planned_tiles(layout)
    assert not [o.error for o in run_tiles(layout, tiles) if o.error]
    result = _release(layout)
    assert result.success
    return Released(layout.root, tiles, tree_digest(layout.store), _latest(layout), len(_index(layout)))


@pytest.fixture
def copy(released: Released, tmp_path: Path) -> DataLayout:
    """A fresh copy of the reference data root (store and releases), to damage."""
    return DataLayout.at(copy_data_root(released.root, tmp_path / "copy"))


def _writer(layout: DataLayout, tiles: list[str], function: str, when: str, n: int, action: str):
    env = {k: v for k, v in os.environ.items() if k not in ("SPECTRAL_DATA_ROOT", "ENMAP_ARCHIVE")}
    command = [
        sys.executable,
        "-m",
        "tests.patches.kill_at",
        str(layout.root),
        function,
        when,
        str(n),
        action,
    ]
    return subprocess.Popen([*command, *tiles], cwd=PROJECT, env=env, stderr=subprocess.PIPE, text=True)


def _killed(layout: DataLayout, tiles: list[str], function: str, when: str, n: int = 1) -> None:
    """Run ``tiles`` in a subprocess that is killed -9 at the n-th call of ``function``."""
    writer = _writer(layout, tiles, function, when, n, "kill")
    _, err = writer.communicate(timeout=300)
    assert writer.returncode == -signal.SIGKILL, f"the kill at {function} never came: {err}"


def _partials(layout: DataLayout) -> list[Path]:
    return sorted(layout.store.rglob("*.partial"))


def _shard_of(layout: DataLayout, tile: str) -> Path:
    (shard,) = {s // PATCHES_PER_SHARD for s in CommitRecord.read(commit_path(layout.store, tile)).slots}
    return shard_path(layout.store, shard)


def _rerun_gives_the_reference(layout: DataLayout, released: Released, tiles: list[str]) -> None:
    assert not [o.error for o in run_tiles(layout, tiles) if o.error]
    assert tree_digest(layout.store) == released.store
    assert not list((layout.store / "commits").glob("*.rewriting")) and not _partials(layout)


# -- 1. kill -9 on a re-run of a committed, released tile ----------------------------------------


@pytest.mark.parametrize(
    ("function", "when", "partial"),
    [
        ("mark_rewriting", "after", False),
        ("rename_durably", "before", True),
        ("write_commit", "before", False),
    ],
    ids=["marker-written", "half-written-shard", "shard-renamed-before-commit"],
)
def test_a_killed_rerun_of_a_released_tile_keeps_latest_and_a_rerun_restores_the_store(
    copy, released, function, when, partial
):
    tile = released.tiles[0]
    record = commit_path(copy.store, tile).read_bytes()
    _killed(copy, [tile], function, when)
    assert rewriting_path(copy.store, tile).exists()
    assert bool(_partials(copy)) == partial
    assert commit_path(copy.store, tile).read_bytes() == record  # the old record stays in place

    result = _release(copy)
    assert result.success
    # a same-product re-run writes the same bytes: the verified patches still match their record
    meta = _metadata(result)
    assert (meta["version"], meta["patches"], meta["tiles_withheld"]) == (
        released.version,
        released.patches,
        0,
    )
    assert _latest(copy) == released.version

    _rerun_gives_the_reference(copy, released, [tile])


def test_a_shard_holding_other_bytes_under_the_marker_fails_the_release_until_allowed(copy, released):
    tile, other = released.tiles[:2]
    _killed(copy, [tile], "mark_rewriting", "after")
    shutil.copyfile(_shard_of(copy, other), _shard_of(copy, tile))  # a valid shard, not this record's

    refused = _release(copy)
    assert not refused.success
    text = _failure_text(refused)
    assert f"{tile}: its re-write was interrupted (killed or failed)" in text
    assert f"LATEST stays at {released.version}" in text and "allow_fewer_patches" in text
    assert _latest(copy) == released.version

    allowed = _release(copy, allow_fewer_patches=True)
    assert allowed.success
    assert _latest(copy) != released.version and len(_index(copy)) == released.patches - 1
    manifest = _manifest(copy)
    assert tile in manifest["tiles_withheld"]
    assert [row[1] for row in manifest["dropped_since_previous"]["list"]] == [tile]

    _rerun_gives_the_reference(copy, released, [tile])


# -- 2. kill -9 on a first run, mid-tile ---------------------------------------------------------


def test_a_first_run_killed_mid_tile_releases_the_committed_tiles_only(planned, released):
    tiles = released.tiles
    _killed(planned, tiles, "write_commit", "before", n=3)  # tile 3's shard is in place, no record
    committed = {p.stem for p in (planned.store / "commits").glob("*.json") if p.name != "zarr.json"}
    assert committed == set(tiles[:2])

    result = _release(planned)
    assert result.success
    assert set(_index(planned)["tile_id"]) == set(tiles[:2])
    assert _metadata(result)["tiles_in_plan_not_committed"] == len(tiles) - 2

    _rerun_gives_the_reference(planned, released, tiles)


# -- 3. same-size corruption after the first commit and release ----------------------------------


def _tile_row(layout: DataLayout, tile: str) -> pd.Series:
    return read_tiles(layout.tiles).set_index("tile_id").loc[tile]


def test_same_size_corruption_is_refused_named_and_never_reaches_a_release(copy, released):
    tile = _tiles_by_kind(copy)["folder"]
    path = _file(copy, tile, "image")
    original = path.read_bytes()
    recorded = CommitRecord.read(commit_path(copy.store, tile)).sources[path.name]
    replace_bytes(path, _flipped(path))
    assert path.stat().st_size == len(original)

    scan_archive(copy)
    row = _tile_row(copy, tile)
    assert row["status"] == STATUS_BROKEN and str(path) in row["status_reason"]
    quarantined = read_quarantine(copy.quarantine).set_index("product_name").loc[row["product_name"]]
    assert str(path) in quarantined["reason"] and recorded in quarantined["reason"]
    assert "found xxh3-128:" in quarantined["reason"]

    (outcome,) = run_tiles(copy, [tile])
    assert outcome.error.startswith(f"{path}: content changed under the same product name")
    assert tree_digest(copy.store) == released.store  # the last good commit, untouched

    previous = _index(copy)
    kept = _release(copy)
    assert kept.success and _latest(copy) != released.version  # a new release: it says what broke
    pd.testing.assert_frame_equal(_index(copy), previous)  # the damaged bytes never reach a release
    assert [b["tile_id"] for b in _metadata(kept)["broken_products"]] == [tile]
    assert [b["tile_id"] for b in _manifest(copy)["tiles"]["broken"]] == [tile]

    excluded = _release(copy, exclude_broken_products=True)
    assert excluded.success
    assert tile not in set(_index(copy)["tile_id"]) and len(_index(copy)) == released.patches - 1
    manifest = _manifest(copy)
    assert manifest["tiles"]["broken"][0]["tile_id"] == tile
    (reason,) = manifest["dropped_since_previous"]["by_reason"]
    assert reason.startswith("its product is broken (") and "excludes broken products" in reason

    replace_bytes(path, original)  # the archive's bytes are restored
    scan_archive(copy)
    assert _tile_row(copy, tile)["status"] == STATUS_PRESENT
    _rerun_gives_the_reference(copy, released, [tile])


# -- 4. truncation --------------------------------------------------------------------------------


@pytest.mark.parametrize("committed", [True, False], ids=["after-its-commit", "before-its-first-run"])
def test_a_truncated_image_makes_the_product_broken_not_missing(request, released, committed):
    layout = request.getfixturevalue("copy" if committed else "planned")
    tile = _tiles_by_kind(layout)["folder"]
    path = _file(layout, tile, "image")
    data = path.read_bytes()
    replace_bytes(path, data[: len(data) // 2])
    before = tree_digest(layout.store)

    scan_archive(layout)
    row = _tile_row(layout, tile)
    assert row["status"] == STATUS_BROKEN
    # with a commit, the recorded digest no longer matches; without one, the file's own structure
    assert (str(path) if committed else f"{path.name}: truncated GeoTIFF") in row["status_reason"]
    registration = plan_registration(read_tiles(layout.tiles), released.tiles, batch_size=4, limit=100)
    assert tile in registration.broken and tile not in registration.missing
    assert tile not in registration.new_tiles
    (outcome,) = run_tiles(layout, [tile])  # a run asked for by hand fails naming the file
    assert outcome.error.startswith(f"{path}: ") and outcome.written == 0
    after = tree_digest(layout.store)
    after.pop(f"commits/{tile}.lock", None)  # the writer lock, as any run leaves it
    before.pop(f"commits/{tile}.lock", None)
    assert after == before

    replace_bytes(path, data)
    scan_archive(layout)
    assert _tile_row(layout, tile)["status"] == STATUS_PRESENT
    if committed:
        _rerun_gives_the_reference(layout, released, [tile])


# -- 5. a full disk -------------------------------------------------------------------------------
# The injected ENOSPC below runs everywhere. The real one needs a tmpfs mount: unprivileged, only
# inside a user and mount namespace (``unshare -rm``), which many CI sandboxes forbid (skipped then).


def test_a_disk_full_mid_shard_on_a_rerun_fails_the_partition_and_keeps_the_release(
    copy, released, monkeypatch
):
    tile = released.tiles[0]
    real = patchify.shard_parts

    def fills_up(chunks):
        parts = iter(real(chunks))
        yield next(parts)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(patchify, "shard_parts", fills_up)
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(enmap_tiles.name, [tile])
    result = materialize(
        [tile_patches], instance=instance, resources=resources(copy), partition_key=tile, raise_on_error=False
    )
    assert not result.success and not result.asset_materializations_for_node("tile_patches")
    text = _failure_text(result)
    assert f"cannot write tile {tile}'s shards and commit record under {copy.store}" in text
    assert "no space left on device" in text
    monkeypatch.undo()

    kept = _release(copy)
    assert kept.success and _metadata(kept)["version"] == released.version
    _rerun_gives_the_reference(copy, released, [tile])


def _namespaces_allowed() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-rm", "true"], capture_output=True)
    return probe.returncode == 0


@pytest.mark.skipif(not _namespaces_allowed(), reason="no unprivileged user+mount namespace here")
def test_a_real_full_tmpfs_under_the_shard_folder_names_the_store(copy, released):
    tile = released.tiles[0]
    folder = _shard_of(copy, tile).parent
    env = {k: v for k, v in os.environ.items() if k not in ("SPECTRAL_DATA_ROOT", "ENMAP_ARCHIVE")}
    script = (
        f'mount -t tmpfs -o size=16k tmpfs "{folder}" && '
        f'"{sys.executable}" -m tests.patches.kill_at "{copy.root}" write_commit after 99 kill {tile}'
    )  # no tile has a 99th commit: the tile runs plainly, against a real, small, full file system
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", script], cwd=PROJECT, env=env, capture_output=True)
    err = probe.stderr.decode()
    assert probe.returncode == 1, err
    assert f"cannot write tile {tile}'s shards and commit record under {copy.store}" in err
    assert "no space left on device" in err
    # the namespace, and its tmpfs, are gone: the shard below it was never touched
    assert rewriting_path(copy.store, tile).exists()
    assert _release(copy).success and _latest(copy) == released.version
    _rerun_gives_the_reference(copy, released, [tile])


# -- 6. two writers of one tile --------------------------------------------------------------------


def test_a_second_writer_of_a_tile_is_refused_and_the_first_finishes(copy, released):
    tile = released.tiles[0]
    first = _writer(copy, [tile], "mark_rewriting", "after", 1, "stop")  # frozen, its lock held
    try:
        _, status = os.waitpid(first.pid, os.WUNTRACED)
        assert os.WIFSTOPPED(status)
        (second,) = run_tiles(copy, [tile])
        lock = copy.store / "commits" / f"{tile}.lock"
        assert second.error == (
            f"{lock}: tile {tile} is being written by another run; not writing it twice at once"
        )
        os.kill(first.pid, signal.SIGCONT)
        assert first.wait(timeout=300) == 0
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert tree_digest(copy.store) == released.store
    assert not rewriting_path(copy.store, tile).exists()
