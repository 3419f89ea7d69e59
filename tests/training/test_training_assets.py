"""Lineage of the training assets: the encoder's materialisation records the release's data
version it was trained on and the training code's version (what the UI compares to show a new
release or new code as making it out of date), and its own data version is the checkpoint hash."""

from __future__ import annotations

from pathlib import Path

from dagster import AssetKey, DagsterInstance, PipesSubprocessClient, materialize

from assets.patches.defs import spectral_earth
from assets.resources import DaskCluster, DataRoot
from assets.training.defs import TRAINING_CODE_VERSION, pretrained_encoder
from training.checkpoints import sha256

CONFIG = {
    "model": "spec_vit",
    "model_args": {"embed_dim": 32, "depth": 1, "num_heads": 2, "mlp_dim": 64},
    "method": "moco",
    "method_args": {"queue_size": 16, "hidden": 32, "dim": 16},
    "epochs": 1,
    "batch_size": 2,
    "workers": 0,
    "image_px": 16,
}


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
