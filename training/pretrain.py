"""Pretrain a spectral encoder on a release: ``python -m training.pretrain --config FILE``.

The same command runs standalone, under ``torchrun`` (DDP: one process per GPU, or Gloo on CPUs)
and under Dagster Pipes (the ``pretrained_encoder`` asset launches it and receives its logs and
result). What a run does:

- reads the release named in the config (``latest`` resolved to its version) from the patch
  store, locations as items, two acquisitions as the positive pair where there are two;
- trains with the method's published recipe as the config states it (``deploy/run_configs/
  pretrain_paper_*.yaml``): optimiser (SGD or AdamW), learning-rate schedule per epoch (multistep,
  warm-up + cosine, cosine), SyncBatchNorm across GPUs, ``batch_size`` as the GLOBAL batch split over
  the DDP processes (the per-process size is logged; a batch that does not divide is refused);
- checkpoints after every epoch (``checkpoint-last.pt``, atomically) and, when one is there,
  resumes from it: each epoch's random numbers come from (seed, epoch), so a run killed at any
  point and started again ends with the same weights as one that was never killed;
- stops at a loss that is not finite, with the step and the last good checkpoint named, and
  leaves that checkpoint as it was;
- writes ``encoder.pt`` (weights, model, band count, release version, code version, config, loss
  history) and its SHA-256, and reports them with the loss curve and throughput.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel

from storage_schemas.paths import DataLayout, storage_path
from storage_schemas.release import resolve_release
from training import checkpoints
from training.config import PretrainConfig, as_dict, load_config
from training.data import (
    PretrainDataset,
    TooFewPatchesError,
    pretrain_loader,
    pretrain_sampler,
    release_store,
)
from training.distributed import Placement, close, mean_across, place
from training.models.registry import build_encoder
from training.plots import RunShape, loss_curve_png, loss_note, loss_table_markdown
from training.recipes import after_step, before_step, recipe
from training.reporting import Reporter, reporter


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; the message names where and the checkpoint kept."""


class IncompatibleEncoderError(ValueError):
    """``init_from`` names an encoder of another architecture than the run's model."""


class RecipeError(ValueError):
    """The config's optimiser, schedule or batch cannot be run as stated; the message says why."""


OPTIMIZERS = ("adamw", "sgd")
SCHEDULES = ("cosine", "multistep")
MIN_PER_PROCESS = {"moco": 2}
"""Smallest per-process batch a method can train on: MoCo's projection head ends in BatchNorm1d,
which cannot normalise over one sample."""


def per_process_batch(global_batch: int, world: int, method: str = "") -> int:
    """The batch each of ``world`` DDP processes takes: ``batch_size`` is the global batch (the
    paper's 256 = 64 per GPU x 4 GPUs), so it must divide by the number of processes."""
    if global_batch < 1 or global_batch % world:
        raise RecipeError(
            f"batch_size {global_batch} is the global batch and must divide by the {world} DDP processes: "
            f"use a multiple of {world} (e.g. {max(world, global_batch // world * world)})"
        )
    per = global_batch // world
    if per < MIN_PER_PROCESS.get(method, 1):
        raise RecipeError(
            f"batch_size {global_batch} gives {per} per process on {world} process(es); {method} needs at "
            f"least {MIN_PER_PROCESS[method]} per process (its BatchNorm normalises over the batch): raise "
            f"batch_size to {MIN_PER_PROCESS[method] * world} or more"
        )
    return per


def check_recipe(cfg: PretrainConfig) -> None:
    """Refuse a method, optimiser, schedule or augmentation this loop does not run, before any data
    is read."""
    try:
        recipe(cfg.method).views(cfg.image_px, cfg.augment)
    except ValueError as exc:
        raise RecipeError(str(exc)) from None
    if cfg.optimizer not in OPTIMIZERS:
        raise RecipeError(f"optimizer {cfg.optimizer!r} is not one of {', '.join(OPTIMIZERS)}")
    if cfg.schedule not in SCHEDULES:
        raise RecipeError(f"schedule {cfg.schedule!r} is not one of {', '.join(SCHEDULES)}")
    if cfg.schedule == "multistep" and cfg.warmup_epochs:
        raise RecipeError("schedule multistep has no warm-up: set warmup_epochs to 0")


def build_optimizer(cfg: PretrainConfig, params: list[torch.nn.Parameter]) -> torch.optim.Optimizer:
    """SGD with momentum (MoCo-v2) or AdamW (DINO, MAE), at ``lr`` and ``weight_decay``."""
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def synchronised(method: torch.nn.Module, cfg: PretrainConfig, placement: Placement, report: Reporter):
    """``method`` with SyncBatchNorm where it can run (DDP on GPUs, ``sync_bn``); else as it is,
    with the reason in the log."""
    if placement.world == 1:
        return method
    if not cfg.sync_bn:
        report.info("SyncBatchNorm off (sync_bn: false): each process normalises over its own batch")
        return method
    if placement.device.type != "cuda":
        report.info(
            "SyncBatchNorm off: CPU Gloo cannot run torch.nn.SyncBatchNorm, so each of the "
            f"{placement.world} processes normalises over its own batch (the published runs synchronise)"
        )
        return method
    report.info(f"SyncBatchNorm across the {placement.world} processes")
    return torch.nn.SyncBatchNorm.convert_sync_batchnorm(method)


def start_from(encoder: torch.nn.Module, cfg: PretrainConfig, report: Reporter) -> None:
    """Progressive pretraining: the encoder's weights from ``cfg.init_from``, which must be an
    encoder of the same model and model arguments (the band count may differ: the adapter
    convolves over the spectral axis)."""
    path = Path(cfg.init_from)
    start = checkpoints.load(path)
    theirs = (start.get("model"), start.get("model_args") or {})
    if theirs != (cfg.model, cfg.model_args):
        raise IncompatibleEncoderError(
            f"{path}: an encoder of {theirs[0]} {theirs[1]}, not of this run's {cfg.model} {cfg.model_args}; "
            "progressive pretraining continues the same architecture (set model and model_args to the "
            "checkpoint's)"
        )
    encoder.load_state_dict(start["state_dict"])
    report.info(f"encoder initialised from {path} (release {start.get('release')}): progressive")


@dataclass
class PretrainResult:
    encoder_path: Path
    sha256: str
    release: str
    code_version: str
    history: list[dict]
    processes: int = 1
    device: str = "cpu"
    temporal_share: float = 0.0
    loss_note: str | None = None
    """Why the loss ended above where it started (``training.plots.loss_note``); None when it fell."""


def learning_rate(cfg: PretrainConfig, epoch: int) -> float:
    """The learning rate of ``epoch`` (set once per epoch):

    - ``multistep``: ``lr`` times ``gamma`` per milestone reached (torch's MultiStepLR: MoCo-v2's
      0.001, then 1e-4 from epoch 60 and 1e-5 from epoch 80);
    - ``cosine``: linear warm-up over ``warmup_epochs`` (DINO: 20), then cosine decay to zero at
      ``epochs`` (MAE: no warm-up, over 200 epochs).
    """
    if cfg.schedule == "multistep":
        return cfg.lr * cfg.gamma ** sum(epoch >= m for m in cfg.milestones)
    if epoch < cfg.warmup_epochs:
        return cfg.lr * (epoch + 1) / cfg.warmup_epochs
    span = max(cfg.epochs - cfg.warmup_epochs, 1)
    return cfg.lr * 0.5 * (1 + math.cos(math.pi * (epoch - cfg.warmup_epochs) / span))


def pretrain(cfg: PretrainConfig, report: Reporter, placement: Placement | None = None) -> PretrainResult:
    check_recipe(cfg)
    placement = placement or place(cfg.device)
    data_root = storage_path(cfg.data_root)  # a folder or an s3:// bucket
    release = resolve_release(DataLayout.at(data_root, sensor=cfg.sensor).releases, cfg.release)
    recipe_ = recipe(cfg.method)
    dataset = PretrainDataset(
        release, release_store(release, data_root), recipe_.pairs, cfg.seed, cfg.max_locations, raw=True
    )
    if len(dataset) < cfg.batch_size:
        raise TooFewPatchesError(
            f"release {release.name} has {len(dataset)} locations; a batch of {cfg.batch_size} (global, on "
            f"{placement.world} process(es)) needs {cfg.batch_size}: lower batch_size or use a larger release"
        )
    per_process = per_process_batch(cfg.batch_size, placement.world, cfg.method)
    report.info(
        f"global batch {cfg.batch_size} = {per_process} per process x {placement.world} process(es); "
        f"{cfg.optimizer}, lr {cfg.lr}, weight decay {cfg.weight_decay}, {cfg.schedule} schedule"
    )
    sampler = pretrain_sampler(dataset, cfg.seed, placement.rank, placement.world)
    loader = pretrain_loader(dataset, per_process, sampler, cfg.workers, placement.device.type == "cuda")
    views = recipe_.views(cfg.image_px, cfg.augment)
    bands = len(dataset.stats.mean)
    torch.manual_seed(cfg.seed)
    encoder = build_encoder(cfg.model, bands, **cfg.model_args)
    if cfg.init_from:
        start_from(encoder, cfg, report)
    method = recipe_.build(encoder, bands, **cfg.method_args)
    method = synchronised(method, cfg, placement, report).to(placement.device)
    trained = DistributedDataParallel(method) if placement.world > 1 else method
    optimizer = build_optimizer(cfg, [p for p in method.parameters() if p.requires_grad])
    total_steps = cfg.epochs * len(loader)
    out = Path(cfg.out_dir)
    last = out / checkpoints.LAST
    history: list[dict] = []
    first_epoch = 0
    if last.is_file():
        state = checkpoints.load(last)
        method.load_state_dict(state["method"])
        optimizer.load_state_dict(state["optimizer"])
        history, first_epoch = state["history"], state["epoch"] + 1
        report.info(f"resuming from {last} after epoch {state['epoch']}")
    code = checkpoints.code_version()
    amp = cfg.amp and placement.device.type == "cuda"
    for epoch in range(first_epoch, cfg.epochs):
        generator = checkpoints.seed_epoch(cfg.seed, epoch)
        dataset.set_epoch(epoch)
        sampler.set_epoch(epoch)
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(cfg, epoch)
        method.train()
        started, images, total = time.perf_counter(), 0, 0.0
        for step, batch in enumerate(loader):
            autocast = torch.autocast("cuda", dtype=torch.bfloat16) if amp else nullcontext()
            batch = dataset.stats.normalise_items(batch, placement.device)
            with autocast:
                loss = recipe_.loss(trained, views, batch, generator, placement.device)
            if not torch.isfinite(loss):
                kept = f"{last} (after epoch {epoch - 1})" if last.is_file() else "none (no epoch finished)"
                raise NonFiniteLossError(
                    f"loss is {loss.item()} at epoch {epoch}, step {step}: stopped. The last good checkpoint "
                    f"is {kept}; lower the learning rate ({optimizer.param_groups[0]['lr']:.3g}) and resume."
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            before_step(method, recipe_, epoch)
            optimizer.step()
            after_step(method, recipe_, epoch * len(loader) + step, total_steps)
            images += len(batch["location"])
            total += float(loss.detach())
        seconds = time.perf_counter() - started
        row = {
            "epoch": epoch,
            "loss": mean_across(total / max(step + 1, 1), placement),
            "images_per_s": round(images * placement.world / seconds, 2),
            "seconds": round(seconds, 2),
            "lr": optimizer.param_groups[0]["lr"],
        }
        history.append(row)
        report.info(f"epoch {epoch}: loss {row['loss']:.4f}, {row['images_per_s']} images/s")
        if placement.main:
            state = {"method": method.state_dict(), "optimizer": optimizer.state_dict()}
            checkpoints.save_atomically({**state, "epoch": epoch, "history": history}, last)
    encoder_path = out / checkpoints.ENCODER
    if placement.main:
        checkpoints.save_atomically(
            {
                "state_dict": encoder.state_dict(),
                "model": cfg.model,
                "model_args": cfg.model_args,
                "bands": bands,
                "sensor": cfg.sensor,
                "release": release.name,
                "code_version": code,
                "method": cfg.method,
                "config": as_dict(cfg),
                "history": history,
            },
            encoder_path,
        )
        loss_curve_png(history, out / "loss_curve.png")
    digest = checkpoints.sha256(encoder_path) if encoder_path.is_file() else ""
    shape = RunShape.of(method, cfg.method, len(dataset), len(loader), cfg.batch_size, cfg.warmup_epochs)
    return PretrainResult(
        encoder_path,
        digest,
        release.name,
        code,
        history,
        placement.world,
        placement.device.type,
        dataset.temporal_share,
        loss_note(history, shape),
    )


def _metadata(result: PretrainResult, cfg: PretrainConfig) -> dict:
    final = result.history[-1] if result.history else {}
    return {
        "checkpoint": {"raw_value": str(result.encoder_path), "type": "path"},
        "checkpoint_sha256": result.sha256,
        "release": result.release,
        "code_version": result.code_version,
        "model": cfg.model,
        "method": cfg.method,
        "epochs": len(result.history),
        "processes": result.processes,
        "device": result.device,
        "locations_with_two_acquisitions": round(result.temporal_share, 4),
        "final_loss": float(final.get("loss", float("nan"))),
        "images_per_s": float(final.get("images_per_s", 0.0)),
        "loss_curve": {"raw_value": loss_table_markdown(result.history), "type": "md"},
        "loss_curve_png": {"raw_value": str(result.encoder_path.with_name("loss_curve.png")), "type": "path"},
        **({"loss_note": {"raw_value": result.loss_note, "type": "text"}} if result.loss_note else {}),
        **({"init_from": {"raw_value": cfg.init_from, "type": "path"}} if cfg.init_from else {}),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=YAML", help="override config keys")
    args = parser.parse_args(argv)
    placement = None
    try:
        cfg = load_config(args.config, PretrainConfig, _overrides(args.set))
        placement = place(cfg.device)
        with reporter(placement.rank) as report:
            try:
                result = pretrain(cfg, report, placement)
            except (
                NonFiniteLossError,
                RecipeError,
                TooFewPatchesError,
                IncompatibleEncoderError,
                FileNotFoundError,
                LookupError,
            ) as exc:
                report.error(str(exc))
                return 2
            report.materialization(_metadata(result, cfg), data_version=result.sha256[:16])
        return 0
    finally:
        close()


def _overrides(pairs: list[str]) -> dict:
    import yaml

    out = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        out[key] = yaml.safe_load(value)
    return out


if __name__ == "__main__":
    sys.exit(main())
