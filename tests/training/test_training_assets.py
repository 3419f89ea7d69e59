"""Lineage of the training assets: the encoder's materialisation records the release's data
version it was trained on and the training code's version (what the UI compares to show a new
release or new code as making it out of date), and its own data version is the checkpoint hash.
The stale status is read with the resolver the UI's GraphQL uses (a private Dagster module)."""

from __future__ import annotations

from pathlib import Path

import pytest
from dagster import AssetKey, AssetMaterialization, DagsterInstance, materialize
from dagster._core.definitions.data_version import DATA_VERSION_TAG, StaleStatus
from dagster._utils.test.data_versions import get_stale_status_resolver

from assets.launchers import TrainingLauncher
from assets.patches.defs import spectral_earth
from assets.resources import DaskCluster, DataRoot
from assets.training.defs import TRAINING_CODE_VERSION, pretrained_encoder
from tests.training.test_pretrain import TINY
from training.checkpoints import sha256

CONFIG = {**TINY, "epochs": 1}
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


def test_the_dagster_run_configs_are_the_entry_points_configs_less_the_paths():
    from dataclasses import fields

    from assets.training.defs import BenchmarkRunConfig, PretrainRunConfig
    from training.config import BenchmarkConfig, PretrainConfig

    for dagster_config, entry_config, paths in (
        (PretrainRunConfig, PretrainConfig, {"data_root", "out_dir"}),
        (BenchmarkRunConfig, BenchmarkConfig, {"data_root", "out_dir", "encoder"}),
    ):
        entry = {f.name for f in fields(entry_config)}
        assert set(dagster_config.model_fields) == entry - paths
        defaults = dagster_config().model_dump()
        assert all(defaults[k] == getattr(entry_config(), k) for k in defaults), "one set of defaults"


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
