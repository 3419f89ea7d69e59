"""The production instance file on a real PostgreSQL, as an operator runs it: a throwaway cluster on
loopback (``tests/postgres.py``), ``deploy/dagster.postgres.yaml`` copied unchanged into a fresh
DAGSTER_HOME with only the ``DAGSTER_PG_*`` environment pointing at that server, then the chain on
a small simulated archive: ``catalog_job`` by ``dagster job execute``, the tiles by the tile sensor
of a real ``dagster-daemon`` (which also runs the run queue that launches the sensor's run),
``release_job`` and the pretraining smoke job by ``dagster job execute``. The runs, the
``enmap_tiles`` partitions and their materialisations, and the release's materialisation are then
read back from PostgreSQL: through a ``DagsterInstance`` on that DAGSTER_HOME, and the runs once
more by SQL on Dagster's ``runs`` table, so it is PostgreSQL that holds them."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest
import yaml
from dagster import AssetKey, DagsterInstance, DagsterRunStatus, RunsFilter

from assets.archive.catalog_io import read_tiles
from storage_schemas.paths import PROJECT_ROOT, DataLayout
from tests.copies import link_archive
from tests.postgres import PostgresServer, postgres_binary, throwaway_postgres

pytestmark = pytest.mark.slow

DEPLOY = PROJECT_ROOT / "deploy"
BIN = Path(sys.executable).parent
SENSOR = "enmap_tiles_sensor"
SENSOR_RUN_TIMEOUT_S = 900
"""How long the daemon may take to tick the sensor and run its tile run (a guard against a hang,
not a measurement: every step of a daemon-launched run is a process that imports the code location)."""
ENDED = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}
LEAKING = ("ENMAP_ARCHIVE", "DESIS_ARCHIVE", "SPECTRAL_LABEL_SOURCES", "SPECTRALFORGE_ALERT_WEBHOOK")
"""Variables of the caller's shell that would point the runs elsewhere than the test's data root."""


@pytest.fixture
def postgres() -> Iterator[PostgresServer]:
    if postgres_binary("initdb") is None or postgres_binary("pg_ctl") is None:
        pytest.skip("PostgreSQL is not installed (initdb, pg_ctl; Debian: apt-get install postgresql)")
    with throwaway_postgres() as server:
        yield server


def _environment(server: PostgresServer, root: Path, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in LEAKING and not k.startswith("DAGSTER_PG_")}
    return {
        **env,
        **server.dagster_env(),
        "SPECTRAL_DATA_ROOT": str(root),
        "DAGSTER_HOME": str(home),
        "SPECTRALFORGE_DASK_WORKERS": "0",
        "SPECTRALFORGE_DEPLOYMENT": "local",
    }


def _dagster_job(job: str, env: dict, config: Path | None = None) -> None:
    command = [str(BIN / "dagster"), "job", "execute", "-m", "pipelines.definitions", "-j", job]
    command += ["-c", str(config)] if config else []
    done = subprocess.run(command, env=env, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"{job}:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"


def _start_daemon(env: dict, log: Path) -> subprocess.Popen:
    """``dagster-daemon run`` on the workspace that names the code location ``spectralforge`` (as
    ``make ui`` does), through ``deploy/serve.py`` so that SIGINT stops it; in a session of its own so
    that what it starts (its code server, run workers) can be found and ended with it."""
    command = [sys.executable, str(DEPLOY / "serve.py"), str(BIN / "dagster-daemon"), "run"]
    command += ["-w", str(DEPLOY / "workspace.yaml")]
    with open(log, "wb") as out:
        return subprocess.Popen(
            command, env=env, cwd=PROJECT_ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def _stop(daemon: subprocess.Popen) -> None:
    """SIGINT (the daemon shuts down its threads and its code server), then the session's processes
    are killed if anything of it is left."""
    if daemon.poll() is None:
        daemon.send_signal(signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            daemon.wait(timeout=60)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(daemon.pid, signal.SIGKILL)
    daemon.wait()


def _wait_for_sensor_runs(instance: DagsterInstance, daemon: subprocess.Popen, log: Path) -> list:
    """Poll the instance until the sensor has launched tile runs and all of them have ended."""
    deadline = time.monotonic() + SENSOR_RUN_TIMEOUT_S
    while True:
        runs = instance.get_runs(RunsFilter(tags={"dagster/sensor_name": SENSOR}))
        if runs and all(r.status in ENDED for r in runs):
            return runs
        if daemon.poll() is not None or time.monotonic() > deadline:
            state = [(r.run_id[:8], r.status.value) for r in runs]
            pytest.fail(f"sensor runs {state}; daemon exit {daemon.poll()}:\n{log.read_text()[-6000:]}")
        time.sleep(2)


def test_the_chain_runs_on_postgres_with_the_daemons_sensor(
    postgres: PostgresServer, archive_template: Path, tmp_path: Path, monkeypatch
):
    layout = DataLayout.at(tmp_path / "data")
    link_archive(archive_template, layout.archive)
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(DEPLOY / "dagster.postgres.yaml", home / "dagster.yaml")
    env = _environment(postgres, layout.root, home)
    for name, value in postgres.dagster_env().items():
        monkeypatch.setenv(name, value)
    timings: dict[str, float] = {}

    started = time.monotonic()
    _dagster_job("catalog_job", env)
    timings["catalog_job"] = time.monotonic() - started

    instance = DagsterInstance.from_config(str(home))
    daemon_log = tmp_path / "daemon.log"
    started = time.monotonic()
    daemon = _start_daemon(env, daemon_log)
    try:
        tile_runs = _wait_for_sensor_runs(instance, daemon, daemon_log)
    finally:
        _stop(daemon)
    timings["daemon start to tile runs ended"] = time.monotonic() - started

    started = time.monotonic()
    _dagster_job("release_job", env)
    timings["release_job"] = time.monotonic() - started
    smoke = yaml.safe_load((DEPLOY / "run_configs" / "pretrain_smoke.yaml").read_text())
    smoke["ops"]["pretrained_encoder"]["config"].update(epochs=1, batch_size=2, image_px=16)
    smoke_file = tmp_path / "pretrain_smoke_small.yaml"
    smoke_file.write_text(yaml.safe_dump(smoke))
    started = time.monotonic()
    _dagster_job("pretrain_job", env, smoke_file)
    timings["pretrain_job"] = time.monotonic() - started
    print("seconds:", {k: round(v, 1) for k, v in timings.items()})

    # Everything below is read back from PostgreSQL, on a fresh instance of that DAGSTER_HOME.
    instance = DagsterInstance.from_config(str(home))
    assert type(instance.run_storage).__name__ == "PostgresRunStorage"
    runs = instance.get_runs()
    assert {r.job_name: r.status for r in runs} == {
        "catalog_job": DagsterRunStatus.SUCCESS,
        "tiles_job": DagsterRunStatus.SUCCESS,
        "release_job": DagsterRunStatus.SUCCESS,
        "pretrain_job": DagsterRunStatus.SUCCESS,
    }, [(r.job_name, r.status.value) for r in runs]
    (tile_run,) = tile_runs
    assert tile_run.job_name == "tiles_job" and tile_run.status == DagsterRunStatus.SUCCESS
    assert tile_run.remote_job_origin.location_name == "spectralforge"

    tiles = set(read_tiles(layout.tiles)["tile_id"])
    partitions = set(instance.get_dynamic_partitions("enmap_tiles"))
    assert partitions == tiles and len(tiles) >= 4
    materialised = instance.fetch_materializations(AssetKey("tile_patches"), limit=1000).records
    assert {r.partition_key for r in materialised} == partitions
    assert {r.run_id for r in materialised} == {tile_run.run_id}

    release = instance.get_latest_materialization_event(AssetKey("spectral_earth"))
    version = release.asset_materialization.metadata["version"].value
    assert (layout.releases / "LATEST").read_text().strip() == version
    assert release.run_id == next(r.run_id for r in runs if r.job_name == "release_job")
    encoder = instance.get_latest_materialization_event(AssetKey("pretrained_encoder"))
    assert encoder.asset_materialization.metadata["release"].value == version

    connection = psycopg2.connect(postgres.conninfo())
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT run_id, pipeline_name, status FROM runs")
            rows = cursor.fetchall()
    finally:
        connection.close()
    assert set(rows) == {(r.run_id, r.job_name, r.status.value) for r in runs}
