"""Durability (issue 16): what counts is fsynced, file and folder, before it counts; tile_quality's
files are written atomically; any tile's run removes what dead writers of other tiles left, and
never what a live writer still uses."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from assets import atomic_files
from assets.archive.quality import TileQuality, write_tile_quality
from assets.geometry.plan_io import read_locations, read_patches
from assets.patches.commit import commit_path
from assets.patches.leftovers import STALE_AFTER_S
from assets.patches.release import collect_release
from assets.patches.release_publish import publish_release
from assets.patches.store import open_store, read_slots
from storage_schemas.patch_store import COMMITS, PATCHES_PER_SHARD, CommitRecord, shard_path
from storage_schemas.release import LATEST, MANIFEST
from tests.patches.helpers import planned_tiles, run_tiles


@pytest.fixture
def fsynced(monkeypatch) -> list[str]:
    """The paths ``os.fsync`` is called on, in order."""
    seen: list[str] = []
    real = os.fsync

    def record(fd: int) -> None:
        seen.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)

    monkeypatch.setattr(os, "fsync", record)
    return seen


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_tile_commit_fsyncs_shards_then_record_files_and_folders(planned, fsynced):
    tile = planned_tiles(planned)[0]
    assert not run_tiles(planned, [tile])[0].error
    record = CommitRecord.read(commit_path(planned.store, tile))
    shards = sorted({s // PATCHES_PER_SHARD for s in record.slots})
    pid = atomic_files.writer_name()  # <pid>@<host>, in every temporary and partial name
    commit_dir = str(planned.store / COMMITS)
    record_tmp = [i for i, p in enumerate(fsynced) if Path(p).name.startswith(f".{tile}.json.{pid}.")]
    assert len(record_tmp) == 1, fsynced
    assert fsynced.index(commit_dir, record_tmp[0]) > record_tmp[0]  # the folder after the rename
    for shard in shards:
        path = shard_path(planned.store, shard)
        if not path.exists():
            continue
        written = fsynced.index(f"{path}.{pid}.partial")
        assert written < record_tmp[0]  # shard bytes on disk before the record that points at them
        assert fsynced.index(str(path.parent), written) < record_tmp[0]

    fsynced.clear()  # a re-run marks the tile as rewriting, durably, before it rewrites any shard
    assert not run_tiles(planned, [tile])[0].error
    first_shard = next(i for i, p in enumerate(fsynced) if p.endswith(".partial"))
    marker = next(i for i, p in enumerate(fsynced) if Path(p).name.startswith(f".{tile}.rewriting.{pid}."))
    assert marker < fsynced.index(commit_dir, marker) < first_shard
    assert not (planned.store / COMMITS / f"{tile}.rewriting").exists()


def test_release_folder_and_latest_fsynced_before_they_count(planned, fsynced):
    tiles = planned_tiles(planned)[:2]
    assert not any(o.error for o in run_tiles(planned, tiles))
    content = collect_release(planned.store, read_locations(planned.locations), read_patches(planned.patches))
    fsynced.clear()
    published = publish_release(planned, content)
    releases = str(planned.releases)
    manifest = next(
        i for i, p in enumerate(fsynced) if p.endswith(f"/.{published.version}.tmp-{os.getpid()}/{MANIFEST}")
    )
    renamed = fsynced.index(releases, manifest)  # the release folder's name, after its contents
    latest = next(
        i
        for i, p in enumerate(fsynced)
        if Path(p).name.startswith(f".{LATEST}.{atomic_files.writer_name()}.")
    )
    assert renamed < latest < fsynced.index(releases, latest)  # LATEST only once the release is durable
    assert (planned.releases / LATEST).read_text().strip() == published.version


def test_helpers_fsync_file_and_folder(tmp_path, fsynced):
    target = tmp_path / "new" / "LATEST"
    atomic_files.write_text(target, "v1\n")
    tmp = [p for p in fsynced if Path(p).name.startswith(".LATEST.")]
    assert len(tmp) == 1 and not Path(tmp[0]).exists()
    assert fsynced.index(str(target.parent)) > fsynced.index(tmp[0])
    assert str(tmp_path) in fsynced  # the new folder's entry in its parent
    assert target.read_text() == "v1\n"

    fsynced.clear()
    staged = tmp_path / ".release.tmp"
    (staged / "figures").mkdir(parents=True)
    (staged / "manifest.json").write_text("{}")
    (staged / "figures" / "a.png").write_bytes(b"png")
    atomic_files.rename_folder_durably(staged, tmp_path / "release")
    for inside in (staged / "manifest.json", staged / "figures" / "a.png", staged / "figures", staged):
        assert str(inside) in fsynced
    assert fsynced[-1] == str(tmp_path)  # the parent, after the rename
    assert (tmp_path / "release" / "figures" / "a.png").read_bytes() == b"png"


def test_fsync_switched_off_for_benchmarks(tmp_path, fsynced, monkeypatch):
    monkeypatch.setenv(atomic_files.FSYNC_ENV, "0")
    atomic_files.write_text(tmp_path / "x.json", "{}")
    assert fsynced == []
    assert (tmp_path / "x.json").read_text() == "{}"


def _quality(tile_id: str, valid: float) -> TileQuality:
    return TileQuality(tile_id, valid, {"cloud": 1.0}, {"cloud": 1.0}, 0.0, b"\x89PNG old", b"")


def test_tile_quality_failing_mid_write_leaves_the_old_files(tmp_path, monkeypatch):
    folder = write_tile_quality(tmp_path, _quality("T1", 0.5))
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    real = Path.write_text

    def disk_full(self, data, *args, **kwargs):
        real(self, data[: len(data) // 2], *args, **kwargs)
        raise OSError(errno.ENOSPC, "No space left on device", str(self))

    monkeypatch.setattr(Path, "write_text", disk_full)
    with pytest.raises(OSError, match="No space"):
        write_tile_quality(tmp_path, _quality("T1", 0.9))
    after = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert after.keys() == before.keys()  # no temporary file left beside them
    assert after["quality.json"] == before["quality.json"]
    assert json.loads(after["quality.json"])["valid_fraction"] == 0.5


def test_any_tile_run_removes_dead_writers_leftovers_of_other_tiles(planned):
    tiles = planned_tiles(planned)
    mine, other = tiles[0], tiles[1]
    slots = read_slots(open_store(planned.store))
    other_shard = shard_path(
        planned.store, int(slots.loc[slots["tile_id"] == other, "slot"].iloc[0]) // PATCHES_PER_SHARD
    )
    other_shard.parent.mkdir(parents=True, exist_ok=True)
    dead, commits = _dead_pid(), planned.store / COMMITS
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) as live:
        try:
            host = atomic_files.writer_name().split("@")[1]
            gone = [
                other_shard.with_name(f"{other_shard.name}.{dead}.partial"),
                other_shard.with_name(f"{other_shard.name}.{dead}@{host}.partial"),
                commits / f".{other}.json.{dead}.abcd1234.tmp",
                commits / f".{other}.rewriting.{dead}.abcd1234.tmp",
            ]
            stale = commits / f".{other}.json.{live.pid}.old12345.tmp"
            kept = [
                other_shard.with_name(f"{other_shard.name}.{live.pid}.partial"),
                commits / f".{other}.json.{live.pid}.efgh5678.tmp",
                # a pid of another host (a Dask worker in another pod) cannot be checked from here,
                # even one that no process of this host has: only age makes its files leftovers
                other_shard.with_name(f"{other_shard.name}.{dead}@another-pod.partial"),
                commits / f".{other}.json.{dead}@another-pod.ijkl9012.tmp",
            ]
            for path in [*gone, stale, *kept]:
                path.write_bytes(b"half a shard")
            old = time.time() - STALE_AFTER_S - 60
            os.utime(stale, (old, old))  # a pid reused since: too old for any live write
            gone.append(stale)
            assert not run_tiles(planned, [mine])[0].error
            assert [p for p in gone if p.exists()] == []
            assert all(p.read_bytes() == b"half a shard" for p in kept)  # a live writer's files
        finally:
            live.kill()
    assert not commit_path(planned.store, other).exists()


def test_a_release_removes_the_half_built_folders_of_killed_publishers(planned):
    assert not any(o.error for o in run_tiles(planned, planned_tiles(planned)[:2]))
    content = collect_release(planned.store, read_locations(planned.locations), read_patches(planned.patches))
    planned.releases.mkdir(parents=True, exist_ok=True)
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) as live:
        try:
            killed = planned.releases / f".0123456789abcdef.tmp-{_dead_pid()}"
            running = planned.releases / f".fedcba9876543210.tmp-{live.pid}"
            for folder in (killed, running):
                (folder / "figures").mkdir(parents=True)
            publish_release(planned, content)
            assert not killed.exists() and running.is_dir()
        finally:
            live.kill()
