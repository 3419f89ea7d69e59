"""The EnMAP chain with every root on a bucket of a real S3 API (moto's server on loopback),
against the same chain on local disk: the same release version, the same store bytes, the same
label dataset and the same export; and a reader with only the bucket's URL reads the same patches.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr
import yaml

from assets.patches.release_publish import release_folder
from simulator import simulate_archive
from storage_schemas.patch_reader import PatchReader
from storage_schemas.paths import DataLayout, readable
from storage_schemas.release import PATCH_INDEX
from storage_schemas.store_validator import validate_store
from tests.copies import link_archive
from tests.labels.rasters import write_nlcd_over_release
from tests.patches.conftest import ARCHIVE_MODEL
from tests.patches.helpers import tree_digest
from tests.s3_server import S3Server
from training.data import PretrainDataset, release_store

pytestmark = pytest.mark.slow
PROJECT = Path(__file__).resolve().parents[2]
DAGSTER = str(Path(sys.executable).with_name("dagster"))
EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


@pytest.fixture(scope="module")
def archive_template(tmp_path_factory) -> Path:
    """A small simulated archive as it is delivered: product folders, ZIPs and a DLR order tarball."""
    root = tmp_path_factory.mktemp("simulated") / "data"
    simulate_archive(
        root, tiles=8, tile_size=256, seed=2, model=ARCHIVE_MODEL, delivery="tar", delivered_share=0.4
    )
    assert list((root / "archive").rglob("dims_op_oc_oc-en_*.tar.gz"))
    return root / "archive"


def _run(args: list[str], env: dict[str, str], home: Path) -> subprocess.CompletedProcess:
    """``ARGS`` in the project with only ``env`` added to a clean environment (no roots,
    no AWS variables of the test's own) and the Dagster instance under ``home``."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SPECTRAL", "ENMAP", "DESIS", "AWS_"))}
    return subprocess.run(
        args,
        cwd=PROJECT,
        env={**base, "DAGSTER_HOME": str(home), "SPECTRALFORGE_DASK_WORKERS": "0", **env},
        capture_output=True,
        text=True,
        timeout=600,
    )


def _run_chain(env: dict[str, str], home: Path, *args: str) -> dict:
    run = _run([sys.executable, "-m", "tests.storage.run_chain", *(args or ("chain",))], env, home)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-6000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


def test_the_chain_on_a_bucket_equals_the_chain_on_disk(
    s3: S3Server, archive_template: Path, tmp_path: Path, aws: pytest.MonkeyPatch
):
    local_root = tmp_path / "data"
    link_archive(archive_template, local_root / "archive")
    local = _run_chain({"SPECTRAL_DATA_ROOT": str(local_root)}, tmp_path / "home-local")

    bucket = s3.create_bucket("spectral-chain")
    s3.upload(archive_template, f"{bucket}/enmap/archive")
    remote_env = {
        **s3.environ,
        "SPECTRAL_DATA_ROOT": f"{bucket}/spectralforge",
        "ENMAP_ARCHIVE": f"{bucket}/enmap/archive",
        "SPECTRAL_STAGING": str(tmp_path / "staging"),  # tarballs are unpacked to a local folder
    }
    remote = _run_chain(remote_env, tmp_path / "home-s3")

    assert remote["version"] == local["version"]
    staged = list((tmp_path / "staging" / "spectral-chain" / "enmap" / "archive").rglob("*.ZIP"))
    assert staged, "the tarball on the bucket was streamed into the staging folder"
    store = "stores/spectral_earth.zarr"
    on_disk = tree_digest(local_root / store)
    # the only files the bucket lacks: the empty flock files of the local writer locks
    locks = {k for k in on_disk if k.endswith(".lock")}
    assert locks and {on_disk[k] for k in locks} == {EMPTY_SHA256}
    on_bucket = s3.digest(f"{bucket}/spectralforge/{store}")
    assert on_bucket == {k: v for k, v in on_disk.items() if k not in locks}
    assert any(k.startswith("reflectance/c/") for k in on_bucket)
    assert not list(tmp_path.glob("**/*.zarr"))[1:], "only the local run's store is on disk"

    # one label dataset and its export in the published layout, sources and output on the bucket
    write_nlcd_over_release(DataLayout.at(local_root))
    s3.upload(local_root / "label_sources", f"{bucket}/label-sources")
    local_labels = _run_chain(
        {"SPECTRAL_DATA_ROOT": str(local_root)}, tmp_path / "home-local", "labels", str(tmp_path / "export")
    )
    remote_env["SPECTRAL_LABEL_SOURCES"] = f"{bucket}/label-sources"
    remote_labels = _run_chain(remote_env, tmp_path / "home-s3", "labels", f"{bucket}/export")
    assert remote_labels["version"] == local_labels["version"]
    dataset = "labels/enmap_nlcd.zarr"
    on_disk = tree_digest(local_root / dataset)
    on_bucket = s3.digest(f"{bucket}/spectralforge/{dataset}")
    assert set(on_bucket) == set(on_disk) and len(on_disk) > 5
    differ = {k for k in on_disk if on_disk[k] != on_bucket[k]}
    assert differ == {"zarr.json"}, "only the root's attributes, which name where store and sources are"
    local_attrs = json.loads((local_root / dataset / "zarr.json").read_text())["attributes"]
    remote_attrs = json.loads(s3.read(f"{bucket}/spectralforge/{dataset}/zarr.json"))["attributes"]
    assert remote_attrs["provenance"]["store"] == f"{bucket}/spectralforge/{store}"
    assert remote_attrs["provenance"]["label_sources"][0]["file"].startswith(f"{bucket}/label-sources/nlcd/")
    for attrs in (local_attrs, remote_attrs):
        attrs["provenance"]["store"] = ""
        for source in attrs["provenance"]["label_sources"]:
            source["file"] = ""
    assert remote_attrs == local_attrs
    assert s3.digest(f"{bucket}/export") == tree_digest(tmp_path / "export")

    # a researcher's pretraining run on the bucket's release, as `dagster job execute` starts it
    smoke = yaml.safe_load((PROJECT / "deploy/run_configs/pretrain_smoke.yaml").read_text())
    smoke["ops"]["pretrained_encoder"]["config"].update(epochs=1, warmup_epochs=0, batch_size=4)
    (tmp_path / "pretrain.yaml").write_text(yaml.safe_dump(smoke))
    runs = tmp_path / "runs"
    job = [DAGSTER, "job", "execute", "-m", "pipelines.definitions", "-j", "pretrain_job"]
    pretrain = _run(
        [*job, "-c", str(tmp_path / "pretrain.yaml")],
        {**remote_env, "SPECTRALFORGE_RUNS": str(runs)},
        tmp_path / "home-s3",
    )
    assert pretrain.returncode == 0, pretrain.stdout[-3000:] + pretrain.stderr[-6000:]
    assert [p.name for p in runs.glob("pretrain/*/encoder.pt")] == ["encoder.pt"]

    # a reader with only the bucket's URL (and the AWS environment)
    remote_layout = DataLayout.at(f"{bucket}/spectralforge", f"{bucket}/enmap/archive")
    local_layout = DataLayout.at(local_root)
    url = str(remote_layout.store)
    assert url == f"{bucket}/spectralforge/{store}"
    index = readable(remote_layout.releases / local["version"] / PATCH_INDEX)
    slots = pd.read_parquet(index)["slot"].to_numpy()
    on_s3, on_disk = (
        xr.open_zarr(where, consolidated=False, mask_and_scale=False)["reflectance"]
        for where in (url, local_layout.store)
    )
    assert on_s3.shape == on_disk.shape and on_s3.dtype == np.int16
    np.testing.assert_array_equal(on_s3[slots].values, on_disk[slots].values)
    report = validate_store(url, deep=True)
    assert report.ok, report.problems
    assert report.summary == validate_store(local_layout.store, deep=True).summary
    with PatchReader(url) as remote_reader, PatchReader(local_layout.store) as local_reader:
        np.testing.assert_array_equal(remote_reader.read_many(slots), local_reader.read_many(slots))
    datasets = [
        PretrainDataset(release, release_store(release, layout.root), seed=3)
        for layout in (remote_layout, local_layout)
        for release in [release_folder(layout, "latest")]
    ]
    assert len(datasets[0]) == len(datasets[1]) > 0
    for i in range(len(datasets[0])):
        a, b = datasets[0][i], datasets[1][i]
        assert torch.equal(a["view1"], b["view1"]) and torch.equal(a["view2"], b["view2"])
