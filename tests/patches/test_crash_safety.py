"""Kill a tile run at any moment and re-run it: the store ends identical, byte for byte, to an
uninterrupted run. Two runs on different tiles at once give the same store as one after the other."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from storage_schemas.paths import DataLayout
from tests.copies import copy_data_root
from tests.patches.helpers import planned_tiles, run_tiles, tree_digest

PROJECT = Path(__file__).resolve().parents[2]


def _writer(root: Path, tiles: list[str]) -> subprocess.Popen:
    code = (
        "import sys; from storage_schemas.paths import DataLayout; "
        "from tests.patches.helpers import run_tiles; "
        "out = run_tiles(DataLayout.at(sys.argv[1]), sys.argv[2:]); "
        "assert all(not o.error for o in out), [o.error for o in out]"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("SPECTRAL_DATA_ROOT", "ENMAP_ARCHIVE")}
    return subprocess.Popen([sys.executable, "-c", code, str(root), *tiles], cwd=PROJECT, env=env)


@pytest.fixture
def reference(planned_template: Path, tmp_path: Path) -> tuple[list[str], dict[str, str]]:
    layout = DataLayout.at(tmp_path / "reference")
    copy_data_root(planned_template, layout.root)
    tiles = planned_tiles(layout)
    assert all(not o.error for o in run_tiles(layout, tiles))
    return tiles, tree_digest(layout.store)


def _first_shard_written(store: Path) -> bool:
    return any((store / "reflectance" / "c").rglob("0*"))


def _first_commit(store: Path) -> bool:
    return any(p.name != "zarr.json" for p in (store / "commits").glob("*.json"))


@pytest.mark.parametrize("moment", [_first_shard_written, _first_commit], ids=["mid-tile", "between-tiles"])
def test_killed_and_rerun_gives_identical_bytes(planned, reference, moment):
    tiles, expected = reference
    writer = _writer(planned.root, tiles)
    deadline = time.monotonic() + 120
    while not moment(planned.store) and writer.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    writer.kill()
    writer.wait()
    assert tree_digest(planned.store) != expected, "the kill came too late to interrupt anything"
    assert all(not o.error for o in run_tiles(planned, tiles))
    assert tree_digest(planned.store) == expected


def test_two_runs_on_different_tiles_at_once(planned, reference):
    tiles, expected = reference
    writers = [_writer(planned.root, tiles[0::2]), _writer(planned.root, tiles[1::2])]
    assert [w.wait(timeout=300) for w in writers] == [0, 0]
    assert tree_digest(planned.store) == expected
