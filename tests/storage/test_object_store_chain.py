"""The EnMAP chain with every root on a bucket of a real S3 API (moto's server on loopback),
against the same chain on local disk: the same release version and the same store bytes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from simulator import simulate_archive
from tests.copies import link_archive
from tests.patches.conftest import ARCHIVE_MODEL
from tests.patches.helpers import tree_digest
from tests.s3_server import S3Server, s3_server

pytestmark = pytest.mark.slow
PROJECT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def s3(tmp_path_factory) -> S3Server:
    with s3_server(tmp_path_factory.mktemp("moto") / "moto.log") as server:
        yield server


@pytest.fixture(scope="module")
def archive_template(tmp_path_factory) -> Path:
    """A small simulated archive as it is delivered (product folders and ZIPs)."""
    root = tmp_path_factory.mktemp("simulated") / "data"
    simulate_archive(root, tiles=8, tile_size=256, seed=2, model=ARCHIVE_MODEL)
    return root / "archive"


def _run_chain(env: dict[str, str], home: Path) -> dict:
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SPECTRAL", "ENMAP", "DESIS", "AWS_"))}
    run = subprocess.run(
        [sys.executable, "-m", "tests.storage.run_chain"],
        cwd=PROJECT,
        env={**base, "DAGSTER_HOME": str(home), "SPECTRALFORGE_DASK_WORKERS": "0", **env},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-6000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


def test_the_chain_on_a_bucket_equals_the_chain_on_disk(s3: S3Server, archive_template: Path, tmp_path: Path):
    local_root = tmp_path / "data"
    link_archive(archive_template, local_root / "archive")
    local = _run_chain({"SPECTRAL_DATA_ROOT": str(local_root)}, tmp_path / "home-local")

    bucket = s3.create_bucket("spectral-chain")
    s3.upload(archive_template, f"{bucket}/enmap/archive")
    remote_env = {
        **s3.environ,
        "SPECTRAL_DATA_ROOT": f"{bucket}/spectralforge",
        "ENMAP_ARCHIVE": f"{bucket}/enmap/archive",
    }
    remote = _run_chain(remote_env, tmp_path / "home-s3")

    assert remote["version"] == local["version"]
    store = "stores/spectral_earth.zarr"
    assert s3.digest(f"{bucket}/spectralforge/{store}") == tree_digest(local_root / store)
    assert not list((tmp_path).glob("*.zarr")), "nothing of the store is written locally"
