"""Dagster definitions of the training stage: ``pretrained_encoder`` and ``benchmark_results``.

Both launch the training entry points (``python -m training.pretrain`` / ``training.benchmark``)
through Dagster Pipes: a subprocess here, a pod of its own through the Kubernetes Pipes client in
a cluster deployment (the ``launcher`` resource decides, ``assets/launchers.py``). The run's logs,
metadata and data version come back through Pipes. Lineage: the encoder depends on the releases of
both sensors (a run trains on one, or on one after the other with ``init_from``; the release it
used is in its metadata) and carries the training code's hash as its code version, so a new
release or new training code shows it as out of date; its data version is the checkpoint's hash,
which the benchmark depends on.

Safe clicks: the run configs' defaults are the smoke runs (``PRETRAIN_SMOKE``, ``BENCHMARK_SMOKE``:
what ``deploy/run_configs/*_smoke.yaml`` hold), so "Materialize" in the UI starts a run of minutes;
the paper's runs are the named configs in ``deploy/run_configs/``. Both assets are in the ``gpu``
concurrency pool, and a run holds its run folder's lock (``run_lock``) while the launcher runs, so
two runs with the same settings never share one folder: the second fails at once, naming the first.
"""

import dataclasses
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import yaml
from dagster import (
    AssetExecutionContext,
    AssetKey,
    Config,
    Failure,
    MaterializeResult,
    asset,
)
from pydantic import Field

from assets.launchers import TrainingLauncher
from assets.patches.defs import RELEASE_ASSET
from assets.resources import DataRoot
from assets.training.run_lock import RunFolderBusyError, hold_run_folder
from storage_schemas.label_products import LABEL_PRODUCTS
from storage_schemas.paths import PROJECT_ROOT, StoragePath, is_remote
from storage_schemas.release import ReleaseNotFoundError, resolve_release
from storage_schemas.source_versions import source_version
from training.config import BenchmarkConfig, PretrainConfig

TRAINING_CODE_VERSION = source_version(PROJECT_ROOT / "training")


GPU_POOL = "gpu"
"""The concurrency pool of the training assets: the instance's pool limit is how many training runs
share the GPUs at once (``deploy/dagster.*.yaml``, ``deploy/k8s/values.yaml``)."""

PRETRAIN_SMOKE = {
    "model": "spec_vit",
    "model_args": {"embed_dim": 64, "depth": 2, "num_heads": 4, "mlp_dim": 128},
    "method": "moco",
    "method_args": {"queue_size": 256, "hidden": 256, "dim": 64},
    "epochs": 3,
    "batch_size": 8,
    "lr": 0.0005,
    "warmup_epochs": 1,
    "workers": 0,
    "image_px": 32,
}
"""The pretraining smoke run (``deploy/run_configs/pretrain_smoke.yaml``, tested equal): a small Spec.
ViT with MoCo-v2 on 32 px views, a minute on a CPU. The Dagster defaults, so that one click in the UI
never starts the paper's 100-epoch run."""

BENCHMARK_SMOKE = {
    "datasets": ["enmap_corine", "enmap_cdl", "enmap_nlcd", "desis_cdl"],
    "protocols": ["frozen"],
    "epochs": 3,
    "batch_size": 4,
    "lr": 0.001,
    "workers": 0,
}
"""The benchmark smoke run (``deploy/run_configs/benchmark_smoke.yaml``, tested equal): the frozen
protocol on the four label datasets for three epochs."""

_PRETRAIN = dataclasses.replace(PretrainConfig(), **PRETRAIN_SMOKE)
_BENCHMARK = dataclasses.replace(BenchmarkConfig(), **BENCHMARK_SMOKE)


class PretrainRunConfig(Config):
    """What ``training.config.PretrainConfig`` takes, minus the paths (the data root resource
    gives them). Defaults: the smoke run (``PRETRAIN_SMOKE``) over the entry point's defaults; the
    paper's runs are ``deploy/run_configs/pretrain_paper_*.yaml``."""

    sensor: str = _PRETRAIN.sensor
    release: str = Field(default=_PRETRAIN.release, description="release version, or 'latest'")
    model: str = _PRETRAIN.model
    model_args: dict[str, Any] = Field(default_factory=lambda: dict(_PRETRAIN.model_args))
    method: str = Field(default=_PRETRAIN.method, description="moco, dino, mae or spectral_mae")
    method_args: dict[str, Any] = Field(default_factory=lambda: dict(_PRETRAIN.method_args))
    epochs: int = _PRETRAIN.epochs
    batch_size: int = Field(default=_PRETRAIN.batch_size, description="global batch, split over processes")
    lr: float = _PRETRAIN.lr
    weight_decay: float = _PRETRAIN.weight_decay
    optimizer: str = Field(default=_PRETRAIN.optimizer, description="adamw or sgd")
    momentum: float = Field(default=_PRETRAIN.momentum, description="SGD momentum")
    schedule: str = Field(default=_PRETRAIN.schedule, description="cosine (after warmup_epochs) or multistep")
    warmup_epochs: int = _PRETRAIN.warmup_epochs
    milestones: list[int] = Field(default_factory=lambda: list(_PRETRAIN.milestones))
    gamma: float = _PRETRAIN.gamma
    sync_bn: bool = _PRETRAIN.sync_bn
    augment: dict[str, Any] = Field(default_factory=lambda: dict(_PRETRAIN.augment))
    workers: int = _PRETRAIN.workers
    seed: int = _PRETRAIN.seed
    image_px: int = _PRETRAIN.image_px
    max_locations: int | None = _PRETRAIN.max_locations
    init_from: str | None = Field(
        default=None,
        description="progressive pretraining: an `encoder.pt` to start from, or 'latest' for the encoder of "
        "the last pretrained_encoder materialisation",
    )
    device: str = _PRETRAIN.device
    amp: bool = _PRETRAIN.amp


class BenchmarkRunConfig(Config):
    """What ``training.config.BenchmarkConfig`` takes, minus the paths. Defaults: the smoke run
    (``BENCHMARK_SMOKE``) over the entry point's defaults; the paper's Table 2 (three EnMAP datasets,
    three protocols, 100 epochs) is ``deploy/run_configs/benchmark_paper.yaml``."""

    datasets: list[str] = Field(default_factory=lambda: list(_BENCHMARK.datasets))
    protocols: list[str] = Field(default_factory=lambda: list(_BENCHMARK.protocols))
    unfreeze_first: list[int] = Field(
        default_factory=lambda: list(_BENCHMARK.unfreeze_first), description="a `first_<n>` protocol per n"
    )
    random_init: list[str] = Field(
        default_factory=lambda: list(_BENCHMARK.random_init),
        description="random-init baselines: model names or 'encoder'",
    )
    epochs: int = _BENCHMARK.epochs
    batch_size: int | None = Field(
        default=_BENCHMARK.batch_size, description="global batch; null: the published one per dataset"
    )
    lr: float = _BENCHMARK.lr
    weight_decay: float | None = Field(
        default=_BENCHMARK.weight_decay, description="null: the published one per dataset"
    )
    frozen_bn: str = Field(default=_BENCHMARK.frozen_bn, description="frozen parts' BatchNorm: train or eval")
    encoder: str | None = Field(
        default=None,
        description="an encoder.pt to benchmark (e.g. published weights converted by `spectralforge "
        "import-checkpoint`); null: the latest pretrained_encoder",
    )
    normalisation: str | None = Field(
        default=_BENCHMARK.normalisation,
        description="release or published per-band statistics; null: published for an imported encoder, "
        "release otherwise",
    )
    workers: int = _BENCHMARK.workers
    seed: int = _BENCHMARK.seed
    limit: int | None = _BENCHMARK.limit
    release_mismatch: str = Field(
        default=_BENCHMARK.release_mismatch, description="other release: refuse or warn"
    )
    device: str = _BENCHMARK.device
    amp: bool = _BENCHMARK.amp


RUNS_ENV = "SPECTRALFORGE_RUNS"
"""The folder of training run folders when the data root is on an object store."""


def runs_root(root: StoragePath) -> Path:
    """``$SPECTRALFORGE_RUNS`` when set, else ``<data root>/runs``; a data root on an object store
    needs the variable (run folders are files and an ``flock``: a local or mounted folder). The
    training itself reads the release from the bucket."""
    if os.environ.get(RUNS_ENV):
        return Path(os.environ[RUNS_ENV]).expanduser().absolute()
    if not is_remote(root):
        return root / "runs"
    raise Failure(
        description=f"the data root {root} is on an object store: set {RUNS_ENV} to a folder for the "
        "training run folders (checkpoints, metrics, the run lock); the data is read from the bucket"
    )


def run_folder(root: StoragePath, kind: str, settings: dict) -> Path:
    """``<runs>/<kind>/<hash of the settings>`` (:func:`runs_root`): the same settings on the same
    data resume in the same folder (a retried run continues from its last checkpoint)."""
    key = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:12]
    return runs_root(root) / kind / key


def latest_encoder(context: AssetExecutionContext) -> str:
    """The checkpoint of the last ``pretrained_encoder`` materialisation."""
    event = context.instance.get_latest_materialization_event(AssetKey("pretrained_encoder"))
    if event is None or event.asset_materialization is None:
        raise Failure(description="no pretrained_encoder yet: run pretrain_job first")
    return str(event.asset_materialization.metadata["checkpoint"].value)


def launch(
    context: AssetExecutionContext, launcher: TrainingLauncher, entry: str, root: StoragePath, settings: dict
) -> MaterializeResult:
    """Write the run's config into its run folder and run ``training.<entry>`` on it with the
    launcher (through Pipes), holding the folder's lock throughout (a run with the same settings
    in progress fails this one at once); the entry point's report is the asset's materialisation."""
    out = run_folder(root, entry, {**settings, "code": TRAINING_CODE_VERSION})
    out.mkdir(parents=True, exist_ok=True)
    try:
        with hold_run_folder(out, context.run.run_id):
            config_file = out / "config.yaml"
            config_file.write_text(yaml.safe_dump({**settings, "out_dir": str(out)}, sort_keys=True))
            context.log.info(f"training.{entry} in {out} ({type(launcher).__name__})")
            return launcher.run(context, entry, config_file).get_materialize_result()
    except RunFolderBusyError as exc:
        raise Failure(
            description=str(exc), metadata={"run_folder": str(exc.folder), "held_by": str(exc.holder)}
        ) from None


@asset(
    deps=list(RELEASE_ASSET.values()),
    group_name="training",
    kinds={"pytorch"},
    pool=GPU_POOL,
    code_version=TRAINING_CODE_VERSION,
    description="A spectral encoder pretrained on the latest release of a sensor (EnMAP by default; "
    "config `sensor`) with MoCo-v2, DINO, MAE or SpectralGPT's spectral MAE, by `python -m training.pretrain`"
    " through Dagster Pipes, optionally continuing from an earlier encoder (`init_from`, progressive); "
    "metadata: loss curve, throughput, checkpoint path and SHA-256, the release and code versions. The "
    "launchpad's defaults are the CPU smoke run; the paper's runs are the configs in `deploy/run_configs/`.",
)
def pretrained_encoder(
    context: AssetExecutionContext,
    config: PretrainRunConfig,
    data_root: DataRoot,
    launcher: TrainingLauncher,
) -> MaterializeResult:
    layout = data_root.layout(config.sensor)
    try:
        release = resolve_release(layout.releases, config.release)
    except ReleaseNotFoundError as exc:
        raise Failure(description=str(exc)) from None
    settings = {**config.model_dump(), "release": release.name, "data_root": str(layout.root)}
    if config.init_from == "latest":
        settings["init_from"] = latest_encoder(context)
    return launch(context, launcher, "pretrain", layout.root, settings)


@asset(
    deps=[pretrained_encoder, *(AssetKey(name) for name in LABEL_PRODUCTS)],
    group_name="training",
    kinds={"pytorch"},
    pool=GPU_POOL,
    code_version=TRAINING_CODE_VERSION,
    description="The latest pretrained encoder (or the encoder.pt of config `encoder`, e.g. imported "
    "published weights; its SHA-256 in every row) benchmarked on the label datasets with the paper's three "
    "protocols (frozen encoder, adapter only, full fine-tuning) by `python -m training.benchmark` through "
    "Dagster Pipes: a table in the shape of the paper's Table 2 (micro F1 for EnMAP-CORINE; micro Jaccard, "
    "the tables' mIoU, and macro mIoU for the segmentation datasets) and `results.csv`, each row with the "
    "encoder and dataset versions, frozen_bn, normalisation and the tested (lowest validation loss) epoch. "
    "The launchpad's defaults are the smoke benchmark; the paper's is "
    "`deploy/run_configs/benchmark_paper.yaml`.",
)
def benchmark_results(
    context: AssetExecutionContext,
    config: BenchmarkRunConfig,
    data_root: DataRoot,
    launcher: TrainingLauncher,
) -> MaterializeResult:
    root = data_root.layout().root
    settings = {
        **config.model_dump(),
        "encoder": config.encoder or latest_encoder(context),
        "data_root": str(root),
    }
    if not Path(settings["encoder"]).is_file():
        raise Failure(
            description=f"encoder {settings['encoder']}: no such file (an encoder.pt, e.g. from "
            "`spectralforge import-checkpoint`)"
        )
    return launch(context, launcher, "benchmark", root, settings)
