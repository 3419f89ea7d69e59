"""Clear errors: an empty store says there is nothing to release; a full disk, a permission error
or a read-only file system names the folder and the fault, never the product, fails the step,
quarantines nothing, and a re-run once it is gone gives the store of a clean run."""

from __future__ import annotations

import errno
import json
import os
import pickle
from pathlib import Path

import pytest
from dagster import DagsterInstance, materialize

import assets.archive.defs as archive_defs
import assets.archive.deliveries as deliveries
import assets.patches.defs as patch_defs
import assets.patches.patchify as patchify
from assets.archive.catalog_io import read_quarantine, read_tiles
from assets.archive.defs import enmap_tiles, tile_catalog, tile_quality
from assets.archive.scan import scan_archive
from assets.environment_faults import EnvironmentFault, environment_fault
from assets.patches.commit import commit_path
from assets.patches.defs import spectral_earth, tile_patches
from assets.patches.release import NothingCommittedError, collect_release
from assets.patches.store import StoreBands, create_store
from simulator import simulate_archive
from storage_schemas.paths import DataLayout, staging_root
from storage_schemas.sensors import sensor_named
from tests.copies import copy_data_root
from tests.patches.conftest import resources
from tests.patches.helpers import planned_tiles, run_tiles, tree_digest


def _failure_text(result) -> str:
    """What the failed steps of a run say (the Failure's description and the error message)."""
    texts = []
    for event in result.all_events:
        if event.is_step_failure:
            data = event.step_failure_data
            texts.append(data.error.message if data.error else "")
            if data.user_failure_data is not None:
                texts.append(data.user_failure_data.description or "")
    return "\n".join(texts)


def _failing(assets: list, layout: DataLayout) -> str:
    """Materialise ``assets`` over ``layout``, which must fail: the text of its step failures."""
    instance = DagsterInstance.ephemeral()
    result = materialize(assets, instance=instance, resources=resources(layout), raise_on_error=False)
    assert not result.success
    return _failure_text(result)


def test_release_of_an_empty_store_says_run_tiles_job_first(planned):
    text = _failing([spectral_earth], planned)
    assert f"nothing committed yet in {planned.store}: run tiles_job first" in text
    assert "KeyError" not in text


@pytest.fixture
def clean_store(planned_template: Path, tmp_path: Path) -> dict[str, str]:
    """The store after an uninterrupted run of the first planned tile."""
    layout = DataLayout.at(copy_data_root(planned_template, tmp_path / "clean"))
    assert not any(o.error for o in run_tiles(layout, planned_tiles(layout)[:1]))
    return tree_digest(layout.store)


def _fail_with(fault: int, filename: str | None = None):
    def fail(*args, **kwargs):
        raise OSError(fault, os.strerror(fault), *([filename] if filename else []))

    return fail


def test_a_full_disk_in_the_tile_step_names_the_store_and_fails_the_partition(
    planned, clean_store, monkeypatch
):
    tile = planned_tiles(planned)[0]
    product = read_tiles(planned.tiles).set_index("tile_id").at[tile, "product_path"]
    monkeypatch.setattr(patchify, "write_commit", _fail_with(errno.ENOSPC))
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(enmap_tiles.name, [tile])
    result = materialize(
        [tile_patches],
        instance=instance,
        resources=resources(planned),
        partition_key=tile,
        raise_on_error=False,
    )
    assert not result.success
    error = (
        f"{tile}: cannot write tile {tile}'s shards and commit record under {planned.store}: no space left"
    )
    assert error in _failure_text(result)
    assert f"{product}:" not in _failure_text(result)
    assert not result.asset_materializations_for_node("tile_patches")
    assert product not in set(read_quarantine(planned.quarantine)["product_path"])
    assert not list((planned.store / "commits").glob(f"{tile}.json"))  # nothing a release would read

    monkeypatch.undo()  # the disk has room again
    assert not any(o.error for o in run_tiles(planned, [tile]))
    assert tree_digest(planned.store) == clean_store


@pytest.mark.parametrize(
    ("fault", "words"),
    [(errno.EACCES, "permission denied"), (errno.EROFS, "read-only file system")],
)
def test_an_unwritable_store_names_the_shard_folder_and_the_fault(
    planned, clean_store, monkeypatch, fault, words
):
    tile = planned_tiles(planned)[0]
    folder = planned.store / "reflectance" / "c"
    monkeypatch.setattr(patchify, "_write_shard", _fail_with(fault, str(folder / "0.partial")))
    (outcome,) = run_tiles(planned, [tile])
    assert outcome.error.startswith(
        f"cannot write tile {tile}'s shards and commit record under {folder}: {words}"
    )
    monkeypatch.undo()
    assert not any(o.error for o in run_tiles(planned, [tile]))
    assert tree_digest(planned.store) == clean_store


def test_a_product_file_without_read_permission_stays_the_product_fault(tmp_path):
    denied = OSError(errno.EACCES, "Permission denied", str(tmp_path / "archive" / "X.ZIP"))
    assert environment_fault(denied, tmp_path / "store", "the store") is None
    full = OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "archive" / "X.ZIP"))
    assert isinstance(environment_fault(full, tmp_path / "store", "the store"), EnvironmentFault)
    assert environment_fault(ValueError("bad"), tmp_path, "x") is None


@pytest.fixture
def delivered(tmp_path: Path) -> DataLayout:
    """Three small products, each delivered in a DLR order tarball (SIMULATED)."""
    root = tmp_path / "data"
    simulate_archive(root, tiles=3, tile_size=64, seed=3, delivery="tar", delivered_share=1.0)
    return DataLayout.at(root)


def _catalog(layout: DataLayout) -> list[tuple]:
    tiles = read_tiles(layout.tiles)
    return sorted(zip(tiles["tile_id"], tiles["product_path"], tiles["checksum"], strict=True))


def test_a_full_staging_disk_fails_the_scan_and_quarantines_nothing(delivered, tmp_path, monkeypatch):
    monkeypatch.setattr(deliveries, "_unzip", _fail_with(errno.ENOSPC))
    text = _failing([tile_catalog], delivered)
    staging = staging_root(delivered.archive)
    assert f"cannot write an unpacked delivery under {staging}" in text and "no space left on device" in text
    assert "unreadable" not in text
    assert not delivered.quarantine.exists() and not delivered.tiles.exists()  # the catalog is untouched
    assert not [p for p in staging.rglob("*") if ".partial" in p.name]  # nothing half-unpacked

    monkeypatch.undo()
    scan_archive(delivered)
    clean = DataLayout.at(tmp_path / "clean")
    simulate_archive(clean.root, tiles=3, tile_size=64, seed=3, delivery="tar", delivered_share=1.0)
    scan_archive(clean)
    assert _catalog(delivered) == _catalog(clean) and _catalog(clean)
    refused = [sorted(read_quarantine(layout.quarantine)["reason"]) for layout in (delivered, clean)]
    assert refused[0] == refused[1]  # the policy's own refusals (cloud cover), no staging fault


def test_a_read_only_catalog_folder_fails_the_scan_naming_it(planned, monkeypatch):
    import assets.archive.scan as scan

    monkeypatch.setattr(scan, "write_tiles", _fail_with(errno.EROFS))
    with pytest.raises(
        EnvironmentFault, match=f"the catalog under {planned.catalog_dir}: read-only file system"
    ):
        scan_archive(planned, full=True)


def test_an_empty_desis_store_names_the_desis_tiles_job(tmp_path):
    desis = sensor_named("desis")
    table = desis.band_table()
    bands = StoreBands.select(table.wavelength_nm, table.fwhm_nm, desis.band_filter)
    store = tmp_path / "desis.zarr"
    create_store(store, bands, desis.band_filter, desis.name)
    with pytest.raises(NothingCommittedError, match="run desis_tiles_job first"):
        collect_release(store, None, None, desis.name)


def test_an_environment_fault_crosses_process_boundaries_whole():
    fault = environment_fault(OSError(errno.ENOSPC, "No space left on device"), Path("/data/store"), "x")
    again = pickle.loads(pickle.dumps(fault))  # a Dask worker's exception reaches the client pickled
    assert (str(again), again.folder, again.errno) == (str(fault), "/data/store", errno.ENOSPC)


def test_a_store_of_stale_commits_only_says_so_instead_of_crashing(planned):
    tile = planned_tiles(planned)[0]
    assert not any(o.error for o in run_tiles(planned, [tile]))
    path = commit_path(planned.store, tile)
    record = json.loads(path.read_text())
    path.write_text(json.dumps(record | {"band_filter": "an-older-band-filter"}))
    text = _failing([spectral_earth], planned)
    assert f"no committed patches in {planned.store}" in text


def test_a_disk_that_fills_in_the_middle_of_a_shard_leaves_nothing_a_rerun_keeps(
    planned, clean_store, monkeypatch
):
    tile = planned_tiles(planned)[0]
    real = patchify.shard_parts

    def fills_up(chunks):
        parts = iter(real(chunks))
        yield next(parts)  # some bytes reach the shard's temporary file, then the disk is full
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(patchify, "shard_parts", fills_up)
    (outcome,) = run_tiles(planned, [tile])
    assert outcome.error.startswith(
        f"cannot write tile {tile}'s shards and commit record under {planned.store}"
    )
    assert "no space left on device (ENOSPC)" in outcome.error
    assert not commit_path(planned.store, tile).exists()
    monkeypatch.undo()
    assert not any(o.error for o in run_tiles(planned, [tile]))
    assert tree_digest(planned.store) == clean_store  # the half-written shard is gone


@pytest.mark.parametrize("asset", ["tile_patches", "tile_quality"])
def test_a_full_quality_folder_fails_the_partition_naming_it(planned, monkeypatch, asset):
    tile = planned_tiles(planned)[0]
    if asset == "tile_patches":
        monkeypatch.setattr(patch_defs, "write_bytes", _fail_with(errno.ENOSPC))
    else:
        monkeypatch.setattr(archive_defs, "write_tile_quality", _fail_with(errno.ENOSPC))
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(enmap_tiles.name, [tile])
    result = materialize(
        [tile_patches if asset == "tile_patches" else tile_quality],
        instance=instance,
        resources=resources(planned),
        partition_key=tile,
        raise_on_error=False,
    )
    assert not result.success and not result.asset_materializations_for_node(asset)
    assert f"{tile}: cannot write tile {tile}'s" in _failure_text(result)
    assert f"under {planned.tile_quality_dir}: no space left on device" in _failure_text(result)


def test_a_read_only_releases_folder_fails_the_release_naming_it(planned, monkeypatch):
    assert not any(o.error for o in run_tiles(planned, planned_tiles(planned)[:1]))
    monkeypatch.setattr(patch_defs, "publish_release", _fail_with(errno.EROFS))
    text = _failing([spectral_earth], planned)
    assert f"cannot write the release under {planned.releases}: read-only file system" in text
