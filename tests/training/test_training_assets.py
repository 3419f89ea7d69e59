"""Lineage of the training assets: the encoder's materialisation records the release's data
version it was trained on and the training code's version (what the UI compares to show a new
release or new code as making it out of date), and its own data version is the checkpoint hash.
The stale status is read with the resolver the UI's GraphQL uses (a private Dagster module)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from dagster import AssetKey, AssetMaterialization, DagsterInstance, materialize
from dagster._core.definitions.data_version import DATA_VERSION_TAG, StaleStatus
from dagster._utils.test.data_versions import get_stale_status_resolver

from assets.launchers import TrainingLauncher
from assets.patches.defs import spectral_earth
from assets.resources import DaskCluster, DataRoot
from assets.training.defs import TRAINING_CODE_VERSION, pretrained_encoder
from assets.training.run_lock import LOCK_FILE, hold_run_folder
from tests.training.test_pretrain import TINY
from training.checkpoints import sha256

CONFIG = {**TINY, "epochs": 1}
RUN_CONFIGS = Path(__file__).parents[2] / "deploy" / "run_configs"
ASSETS = [spectral_earth, pretrained_encoder]
ENCODER = AssetKey("pretrained_encoder")


def _resources(released) -> dict:
    return {
        "data_root": DataRoot(data_root=str(released.root), archive=str(released.archive)),
        "dask": DaskCluster(n_workers=0),
        "launcher": TrainingLauncher(),
    }


def _pretrain(instance: DagsterInstance, released, config: dict) -> None:
    run_config = {"ops": {"pretrained_encoder": {"config": config}}}
    result = materialize(
        ASSETS,
        selection=[pretrained_encoder],
        instance=instance,
        resources=_resources(released),
        run_config=run_config,
    )
    assert result.success


@pytest.fixture
def trained(released) -> DagsterInstance:
    """An instance on which the release and then the encoder (one tiny epoch) were materialised."""
    instance = DagsterInstance.ephemeral()
    assert materialize([spectral_earth], instance=instance, resources=_resources(released)).success
    _pretrain(instance, released, CONFIG)
    return instance


def test_the_encoder_records_its_release_and_code_versions(trained, released):
    event = trained.get_latest_materialization_event(ENCODER).asset_materialization
    release = (released.releases / "LATEST").read_text().strip()
    assert event.tags["dagster/input_data_version/spectral_earth"] == release
    assert event.tags["dagster/code_version"] == TRAINING_CODE_VERSION
    checkpoint = event.metadata["checkpoint"].value
    assert event.metadata["checkpoint_sha256"].value == sha256(Path(checkpoint))
    assert event.tags["dagster/data_version"] == event.metadata["checkpoint_sha256"].value[:16]
    assert event.metadata["release"].value == release


def test_progressive_pretraining_continues_from_the_latest_encoder(trained, released):
    first = trained.get_latest_materialization_event(ENCODER).asset_materialization
    mae = {"method": "mae", "method_args": {"decoder_dim": 16, "decoder_depth": 1, "decoder_heads": 2}}
    _pretrain(trained, released, {**CONFIG, **mae, "init_from": "latest"})
    then = trained.get_latest_materialization_event(ENCODER).asset_materialization
    assert then.metadata["init_from"].value == first.metadata["checkpoint"].value
    assert then.metadata["checkpoint"].value != first.metadata["checkpoint"].value
    assert then.metadata["method"].value == "mae"


def test_the_dagster_run_configs_default_to_the_smoke_runs():
    """The fields are the entry points' less the paths; the defaults are the smoke run files'
    values over the entry points' defaults, so that one click in the UI starts the smoke run (the
    paper's runs are named configs, validated in test_training_jobs.py). The benchmark's ``encoder``
    is a path in the entry point and ``None`` (the latest pretrained_encoder) in Dagster."""
    from dataclasses import asdict, fields

    from assets.training.defs import BenchmarkRunConfig, PretrainRunConfig
    from training.config import BenchmarkConfig, PretrainConfig

    for dagster_config, entry_config, paths, smoke, op, own in (
        (
            PretrainRunConfig,
            PretrainConfig,
            {"data_root", "out_dir"},
            "pretrain_smoke",
            "pretrained_encoder",
            {},
        ),
        (
            BenchmarkRunConfig,
            BenchmarkConfig,
            {"data_root", "out_dir", "encoder"},
            "benchmark_smoke",
            "benchmark_results",
            {"encoder": None},
        ),
    ):
        entry = {f.name for f in fields(entry_config)}
        assert set(dagster_config.model_fields) == (entry - paths) | set(own)
        smoke_config = yaml.safe_load((RUN_CONFIGS / f"{smoke}.yaml").read_text())["ops"][op]["config"]
        entry_defaults = {k: v for k, v in asdict(entry_config()).items() if k not in paths}
        assert dagster_config().model_dump() == {**entry_defaults, **smoke_config, **own}
    assert PretrainRunConfig().epochs < PretrainConfig().epochs, "not the paper's 100 epochs"


def test_a_second_run_with_the_same_settings_fails_at_once_naming_the_first(trained, released):
    """A run folder is held by one run: with its lock held (by "the first run"), a run with the same
    settings fails before it writes or trains anything, naming the folder and the run holding it."""
    first = trained.get_latest_materialization_event(ENCODER).asset_materialization
    folder = Path(first.metadata["checkpoint"].value).parent
    untouched = {p.name: p.stat().st_mtime_ns for p in folder.iterdir() if p.name != LOCK_FILE}
    with hold_run_folder(folder, "1f2e3d4c-the-first-run"):
        result = materialize(
            ASSETS,
            selection=[pretrained_encoder],
            instance=trained,
            resources=_resources(released),
            run_config={"ops": {"pretrained_encoder": {"config": CONFIG}}},
            raise_on_error=False,
        )
    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    message = failure.step_failure_data.error.message
    assert str(folder) in message and "1f2e3d4c-the-first-run" in message
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir() if p.name != LOCK_FILE} == untouched
    _pretrain(trained, released, CONFIG)  # once the folder is free, the same settings run again


def test_a_new_release_shows_the_encoder_as_out_of_date(trained, released):
    """The UI's stale status (``CachingStaleStatusResolver`` is what its GraphQL asks): fresh
    after training and after a re-run of the same release, stale once ``spectral_earth`` has a new
    data version (a new release)."""

    def resolver_after_release(version: str):
        trained.report_runless_asset_event(
            AssetMaterialization("spectral_earth", tags={DATA_VERSION_TAG: version})
        )
        return get_stale_status_resolver(trained, ASSETS)

    assert get_stale_status_resolver(trained, ASSETS).get_status(ENCODER) == StaleStatus.FRESH
    same = (released.releases / "LATEST").read_text().strip()
    assert resolver_after_release(same).get_status(ENCODER) == StaleStatus.FRESH
    resolver = resolver_after_release("a-newer-release")
    assert resolver.get_status(ENCODER) == StaleStatus.STALE
    (cause,) = resolver.get_stale_causes(ENCODER)
    assert cause.dependency.asset_key == AssetKey("spectral_earth")
    assert "new dependency" in cause.reason
