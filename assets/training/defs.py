"""Dagster definitions of the training stage: ``pretrained_encoder`` and ``benchmark_results``.

Both launch the training entry points (``python -m training.pretrain`` / ``training.benchmark``)
through Dagster Pipes: a subprocess here, the Kubernetes Pipes client in a cluster deployment
(the ``pipes`` resource decides). The run's logs, metadata and data version come back through
Pipes. Lineage: the encoder depends on the release it was trained on and carries the training
code's hash as its code version, so a new release or new training code shows it as out of date;
its data version is the checkpoint's hash, which the benchmark depends on.
"""

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import yaml
from dagster import (
    AssetExecutionContext,
    AssetKey,
    Config,
    Failure,
    MaterializeResult,
    PipesSubprocessClient,
    asset,
)
from pydantic import Field

from assets.patches.defs import RELEASE_ASSET
from assets.resources import DataRoot
from storage_schemas.label_products import LABEL_PRODUCTS
from storage_schemas.release import ReleaseNotFoundError, resolve_release
from training.checkpoints import code_version

TRAINING_CODE_VERSION = code_version()


class PretrainRunConfig(Config):
    """What ``training.config.PretrainConfig`` takes, minus the paths (the data root resource
    gives them). Defaults are the paper's Spec. ResNet-50 MoCo-v2 run."""

    sensor: str = "enmap"
    release: str = Field(default="latest", description="release version, or 'latest'")
    model: str = "spec_resnet50"
    model_args: dict[str, Any] = Field(default_factory=dict)
    method: str = Field(default="moco", description="moco, dino, mae or spectral_mae")
    method_args: dict[str, Any] = Field(default_factory=dict)
    epochs: int = 100
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 0.05
    warmup_epochs: int = 0
    workers: int = 4
    seed: int = 0
    image_px: int = 128
    max_locations: int | None = None
    init_from: str | None = Field(default=None, description="checkpoint to continue from (progressive)")
    device: str = "auto"
    amp: bool = True


def run_folder(root: Path, kind: str, settings: dict) -> Path:
    """``runs/<kind>/<hash of the settings>``: the same settings on the same data resume in the
    same folder (a retried run continues from its last checkpoint)."""
    key = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:12]
    return root / "runs" / kind / key


@asset(
    deps=[RELEASE_ASSET["enmap"]],
    group_name="training",
    kinds={"pytorch"},
    code_version=TRAINING_CODE_VERSION,
    description="A spectral encoder pretrained on the latest release (MoCo-v2, DINO, MAE or SpectralGPT's "
    "spectral MAE) by `python -m training.pretrain` through Dagster Pipes; metadata: loss curve, throughput, "
    "checkpoint path and SHA-256, the release and code versions.",
)
def pretrained_encoder(
    context: AssetExecutionContext,
    config: PretrainRunConfig,
    data_root: DataRoot,
    pipes: PipesSubprocessClient,
) -> MaterializeResult:
    layout = data_root.layout(config.sensor)
    try:
        release = resolve_release(layout.releases, config.release)
    except ReleaseNotFoundError as exc:
        raise Failure(description=str(exc)) from None
    settings = {**config.model_dump(), "release": release.name, "data_root": str(layout.root)}
    out = run_folder(layout.root, "pretrain", {**settings, "code": TRAINING_CODE_VERSION})
    settings["out_dir"] = str(out)
    out.mkdir(parents=True, exist_ok=True)
    config_file = out / "config.yaml"
    config_file.write_text(yaml.safe_dump(settings, sort_keys=True))
    context.log.info(f"pretraining on release {release.name} in {out}")
    command = [sys.executable, "-m", "training.pretrain", "--config", str(config_file)]
    return pipes.run(command=command, context=context).get_materialize_result()


class BenchmarkRunConfig(Config):
    """What ``training.config.BenchmarkConfig`` takes, minus the paths. Defaults are the paper's
    Table 2: the three EnMAP datasets, the three protocols, 100 epochs."""

    datasets: list[str] = Field(default_factory=lambda: ["enmap_corine", "enmap_cdl", "enmap_nlcd"])
    protocols: list[str] = Field(default_factory=lambda: ["frozen", "adapter", "full"])
    epochs: int = 100
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.01
    workers: int = 4
    seed: int = 0
    limit: int | None = None
    release_mismatch: str = Field(
        default="refuse", description="label data of another release: refuse or warn"
    )
    device: str = "auto"
    amp: bool = True


@asset(
    deps=[pretrained_encoder, *(AssetKey(name) for name in LABEL_PRODUCTS)],
    group_name="training",
    kinds={"pytorch"},
    code_version=TRAINING_CODE_VERSION,
    description="The latest pretrained encoder benchmarked on the label datasets with the paper's three "
    "protocols (frozen encoder, adapter only, full fine-tuning) by `python -m training.benchmark` through "
    "Dagster Pipes: a table in the shape of the paper's Table 2 (micro F1 for EnMAP-CORINE, mIoU for the "
    "segmentation datasets) and results.csv, each row with the encoder and dataset versions.",
)
def benchmark_results(
    context: AssetExecutionContext,
    config: BenchmarkRunConfig,
    data_root: DataRoot,
    pipes: PipesSubprocessClient,
) -> MaterializeResult:
    event = context.instance.get_latest_materialization_event(AssetKey("pretrained_encoder"))
    if event is None or event.asset_materialization is None:
        raise Failure(description="no pretrained_encoder yet: run pretrain_job first")
    encoder = event.asset_materialization.metadata["checkpoint"].value
    layout = data_root.layout()
    settings = {**config.model_dump(), "encoder": str(encoder), "data_root": str(layout.root)}
    out = run_folder(layout.root, "benchmark", {**settings, "code": TRAINING_CODE_VERSION})
    settings["out_dir"] = str(out)
    out.mkdir(parents=True, exist_ok=True)
    config_file = out / "config.yaml"
    config_file.write_text(yaml.safe_dump(settings, sort_keys=True))
    context.log.info(f"benchmarking {encoder} on {', '.join(config.datasets)} in {out}")
    command = [sys.executable, "-m", "training.benchmark", "--config", str(config_file)]
    return pipes.run(command=command, context=context).get_materialize_result()
