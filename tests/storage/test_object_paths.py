"""Roots given as URLs: what they parse to, where a layout's files are, and that the archive walk
over one object listing finds what the walk of the same files on disk finds."""

from __future__ import annotations

from dataclasses import astuple
from pathlib import Path

import pytest
from dagster import Failure

from assets.archive.sources import find_containers
from assets.training.defs import RUNS_ENV, runs_root
from simulator import simulate_archive
from storage_schemas.paths import DataLayout, is_remote, relative_href, staging_root, storage_path


def test_a_bucket_url_is_a_remote_path_and_a_local_one_stays_a_path(tmp_path):
    bucket = storage_path("s3://spectral-data/prod/")
    assert is_remote(bucket) and str(bucket) == "s3://spectral-data/prod"
    local = storage_path("data")
    assert isinstance(local, Path) and local.is_absolute() and not is_remote(local)
    with pytest.raises(ValueError, match="unsupported storage URL scheme 'gs'"):
        storage_path("gs://spectral-data/prod")
    with pytest.raises(ValueError, match="no bucket"):
        storage_path("s3://")


def test_a_layout_on_a_bucket_keeps_every_file_under_it():
    layout = DataLayout.at("s3://spectral-data/prod", "s3://enmap-archive/L2A")
    assert str(layout.store) == "s3://spectral-data/prod/stores/spectral_earth.zarr"
    assert str(layout.tiles) == "s3://spectral-data/prod/catalog/tiles.parquet"
    assert str(layout.for_sensor("desis", {}).archive) == "s3://spectral-data/prod/archive_desis"
    assert relative_href(layout.store, layout.releases / "v1") == "../../../stores/spectral_earth.zarr"
    with pytest.raises(ValueError, match="not on the same storage"):
        relative_href(layout.store, Path("/tmp"))
    staged = staging_root(layout.archive, {"SPECTRAL_STAGING": "/mnt/staging"})
    assert staged == Path("/mnt/staging/enmap-archive/L2A")


@pytest.mark.parametrize("delivery", ["zip", "tar"])
def test_the_walk_of_a_bucket_finds_what_the_walk_of_the_disk_finds(s3, aws, delivery, tmp_path):
    root = tmp_path / "data"
    simulate_archive(root, tiles=5, tile_size=64, seed=4, delivery=delivery, delivered_share=0.4)
    s3.create_bucket(f"walk-{delivery}")
    s3.upload(root / "archive", f"s3://walk-{delivery}/nested/archive")
    on_disk = [astuple(c)[:3] for c in find_containers(root / "archive")]
    on_bucket = list(find_containers(storage_path(f"s3://walk-{delivery}/nested/archive")))
    assert [astuple(c)[:3] for c in on_bucket] == on_disk  # path, kind, size; mtimes are the store's
    assert {c.kind for c in on_bucket} == {"folder", delivery}
    assert all(c.mtime_ns > 0 for c in on_bucket)


def test_training_runs_of_a_bucket_data_root_go_to_the_folder_named(tmp_path, monkeypatch):
    monkeypatch.delenv(RUNS_ENV, raising=False)
    assert runs_root(tmp_path) == tmp_path / "runs"
    with pytest.raises(Failure, match="prod is on an object store: set SPECTRALFORGE_RUNS"):
        runs_root(storage_path("s3://spectral-data/prod"))
    monkeypatch.setenv(RUNS_ENV, str(tmp_path / "runs-here"))
    assert runs_root(storage_path("s3://spectral-data/prod")) == tmp_path / "runs-here"
    assert runs_root(tmp_path) == tmp_path / "runs-here"
