"""Lineage of the training assets: the encoder's materialisation records the release's data
version it was trained on and the training code's version (what the UI compares to show a new
release or new code as making it out of date), and its own data version is the checkpoint hash."""

from __future__ import annotations

from pathlib import Path

from dagster import AssetKey, DagsterInstance, PipesSubprocessClient, materialize

from assets.patches.defs import spectral_earth
from assets.resources import DaskCluster, DataRoot
from assets.training.defs import TRAINING_CODE_VERSION, pretrained_encoder
from tests.training.test_pretrain import TINY
from training.checkpoints import sha256

CONFIG = {**TINY, "epochs": 1}


def test_the_encoder_records_its_release_and_code_versions(released):
    resources = {
        "data_root": DataRoot(data_root=str(released.root), archive=str(released.archive)),
        "dask": DaskCluster(n_workers=0),
        "pipes": PipesSubprocessClient(),
    }
    instance = DagsterInstance.ephemeral()
    assert materialize([spectral_earth], instance=instance, resources=resources).success
    run_config = {"ops": {"pretrained_encoder": {"config": CONFIG}}}
    result = materialize(
        [pretrained_encoder, spectral_earth],
        selection=[pretrained_encoder],
        instance=instance,
        resources=resources,
        run_config=run_config,
    )
    assert result.success
    event = instance.get_latest_materialization_event(AssetKey("pretrained_encoder")).asset_materialization
    release = (released.releases / "LATEST").read_text().strip()
    assert event.tags["dagster/input_data_version/spectral_earth"] == release
    assert event.tags["dagster/code_version"] == TRAINING_CODE_VERSION
    checkpoint = event.metadata["checkpoint"].value
    assert event.metadata["checkpoint_sha256"].value == sha256(Path(checkpoint))
    assert event.tags["dagster/data_version"] == event.metadata["checkpoint_sha256"].value[:16]
    assert event.metadata["release"].value == release


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
