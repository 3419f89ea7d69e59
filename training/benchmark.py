"""Benchmark a pretrained encoder on the label datasets: ``python -m training.benchmark --config FILE``.

SpectralEarth's protocols (section 5.3) as its public code runs them (RECIPE.md "Downstream
protocols"; the recipe itself is ``training.downstream``): the encoder frozen (a linear or
up-sampling head trains), the spectral adapter fine-tuned with the head, full fine-tuning, and
progressive unfreezing of the first n layers (``unfreeze_first``, protocol ``first_<n>``). AdamW with
a cosine schedule, the published weight decay, global batch and crops per dataset, mixed precision on
GPU; a validation pass every epoch, and the weights of the epoch with the lowest validation loss are
the ones tested. Frozen parts keep BatchNorm in train mode as published (``frozen_bn: train``) or
are frozen entirely (``eval``). ``random_init`` adds random-initialisation rows for the backbones it
names (``encoder``: the benchmarked encoder's architecture).

Metrics (``training.metrics``): micro F1 at p > 0.5 on EnMAP-CORINE (multi-label); on the
segmentation datasets the published tables' "mIoU", which is the micro Jaccard over non-background
pixels (sum TP / sum (TP + FP + FN), background ignored), with the macro mIoU (mean of the per-class
IoUs) beside it. Trained on ``train``, selected on ``val``, reported on ``test``.

Each result records the encoder (path, SHA-256, release) and the dataset (name, version,
release). A label dataset built from another release than the encoder's is refused by default
(``release_mismatch: warn`` runs it with a warning); one of another sensor is transfer (the
paper's DESIS-CDL) and only noted: the adapter takes any band count.

Writes ``results.csv`` (one row per dataset, protocol and encoder) and ``table.md`` in the shape of
the paper's Table 2 (rows: protocol x encoder, columns: datasets), and reports both through Dagster
Pipes when Dagster launched it.
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
import torch.nn.functional as F
import zarr
from torch.utils.data import DataLoader, DistributedSampler

from assets.atomic_files import make_folders, write_text
from storage_schemas.label_dataset import dataset_path
from storage_schemas.paths import DataLayout, storage_path, zarr_location
from storage_schemas.release import resolve_release
from training import checkpoints
from training.config import BenchmarkConfig, load_config
from training.data import LabelDataset
from training.distributed import Placement, place
from training.downstream import BestEpoch, Precision, augment, cosine_schedule, per_process_batch, recipe_for
from training.metrics import ConfusionMatrix, MultiLabelCounts
from training.models.loading import read_encoder_file
from training.models.registry import build_encoder, build_head, task_logits
from training.normalisation import normalisation_for
from training.protocols import FROZEN_BN, apply_protocol, check_protocol, set_train_mode
from training.reporting import Reporter, reporter

RESULTS = "results.csv"
TABLE = "table.md"
COLUMNS = [
    "dataset",
    "protocol",
    "encoder",
    "model",
    "metric",
    "value",
    "macro_miou",
    "selected_epoch",
    "val_loss",
    "epochs",
    "frozen_bn",
    "normalisation",
    "batch_size",
    "weight_decay",
    "precision",
    "trainable_params",
    "train_samples",
    "val_samples",
    "test_samples",
    "encoder_sha256",
    "encoder_release",
    "dataset_version",
    "dataset_release",
    "note",
]
"""``value`` is the dataset's headline metric (``metric``: ``micro_f1`` or ``micro_jaccard``, the
tables' "mIoU"); ``macro_miou`` the per-class mean beside it (segmentation; NaN for CORINE);
``selected_epoch`` the 1-based epoch whose weights were tested (lowest validation loss)."""

METRIC_NAMES = {
    "micro_f1": "micro F1",
    "micro_jaccard": "micro Jaccard (tables' mIoU)",
    "macro_miou": "macro mIoU",
}
SPLITS = ("train", "val", "test")


class ReleaseMismatchError(ValueError):
    """A label dataset from another release than the encoder's (``release_mismatch: refuse``)."""


@dataclass
class Encoder:
    state: dict | None
    """The saved checkpoint (None: random initialisation)."""
    sha256: str

    @classmethod
    def load(cls, path: str) -> Encoder:
        """The ``encoder.pt`` at ``path`` (pretrained here or imported), read with
        ``weights_only=True``; a file that is none names itself (``EncoderFileError``, exit 2)."""
        if path == "none":
            return cls(None, "")
        return cls(read_encoder_file(path), checkpoints.sha256(Path(path)))

    @property
    def release(self) -> str:
        return self.state["release"] if self.state else ""

    @property
    def imported(self) -> bool:
        """Converted from published weights (``spectralforge import-checkpoint``)."""
        return bool(self.state and self.state.get("imported_from"))

    def normalisation(self, choice: str | None) -> str:
        """``choice``, or by default ``published`` for an imported encoder (trained on inputs
        normalised with the published statistics) and ``release`` otherwise."""
        return choice or ("published" if self.imported else "release")

    def build(self, bands: int, task: str) -> torch.nn.Module:
        name = self.state["model"] if self.state else "spec_resnet50"
        args = dict(self.state.get("model_args", {})) if self.state else {}
        if task == "segmentation" and name == "spec_resnet50":
            # the published segmentation backbone: the same weights, every stage dilated (128^2 maps)
            name = "spec_resnet50_dilated"
        encoder = build_encoder(name, bands, **args)
        if self.state:
            encoder.load_state_dict(self.state["state_dict"])
        return encoder


@dataclass
class RandomInit(Encoder):
    """A random-initialisation baseline of ``model`` (the paper's "random init" rows): built like a
    saved encoder (same task variants) with fresh weights."""

    model: str = "spec_resnet50"
    model_args: dict = field(default_factory=dict)

    def build(self, bands: int, task: str) -> torch.nn.Module:
        fresh = build_encoder(self.model, bands, **self.model_args)
        state = {"model": self.model, "model_args": dict(self.model_args), "bands": bands,
                 "state_dict": fresh.state_dict(), "release": "", "sensor": ""}  # fmt: skip
        return Encoder(state, "").build(bands, task)


def random_inits(cfg: BenchmarkConfig, encoder: Encoder) -> list[RandomInit]:
    """The baselines ``cfg.random_init`` names; ``encoder`` is the benchmarked encoder's architecture."""
    out = []
    for name in cfg.random_init:
        if name == "encoder":
            state = encoder.state or {}
            args = dict(state.get("model_args") or {})
            out.append(RandomInit(None, "", state.get("model", "spec_resnet50"), args))
        else:
            out.append(RandomInit(None, "", name))
    return out


def encoder_label(encoder: Encoder) -> tuple[str, str]:
    """(label, model) of an encoder for the table and ``results.csv``."""
    if isinstance(encoder, RandomInit):
        return f"random init ({encoder.model})", encoder.model
    if not encoder.state:
        return "random init (spec_resnet50)", "spec_resnet50"
    model = encoder.state["model"]
    return (f"{model} ({'imported' if encoder.state.get('imported_from') else 'pretrained'})", model)


def check_release(dataset: LabelDataset, encoder: Encoder, cfg: BenchmarkConfig, report: Reporter) -> str:
    """The note for this pairing; raises when the releases differ and the config refuses."""
    if not encoder.state:
        return "random initialisation"
    if dataset.attrs["sensor"] != encoder.state.get("sensor", "enmap"):
        return f"transfer: encoder pretrained on {encoder.state.get('sensor', 'enmap')}"
    if encoder.imported:  # published weights: pretrained outside this store, no release to match
        return ""
    if dataset.release == encoder.release:
        return ""
    name = dataset.attrs["name"]
    message = (
        f"{name} was built from release {dataset.release}, the encoder {cfg.encoder} from {encoder.release}"
    )
    if cfg.release_mismatch == "refuse":
        raise ReleaseMismatchError(f"{message}: rebuild the label dataset or set release_mismatch: warn")
    report.info(f"warning: {message}")
    return "release mismatch"


@dataclass(frozen=True)
class Settings:
    """The settings of one dataset's runs: the config's where it sets them, else the published."""

    batch_size: int
    """Global batch."""
    weight_decay: float
    crop_scale: tuple[float, float]

    @classmethod
    def of(cls, cfg: BenchmarkConfig, dataset: str, task: str) -> Settings:
        recipe = recipe_for(dataset, task)
        batch = cfg.batch_size if cfg.batch_size is not None else recipe.batch_size
        decay = cfg.weight_decay if cfg.weight_decay is not None else recipe.weight_decay
        return cls(batch, decay, recipe.crop_scale)


@dataclass
class Outcome:
    """One trained and tested (dataset, protocol, encoder)."""

    value: float
    """micro F1 (multi-label) or micro Jaccard (segmentation) on ``test``."""
    macro_miou: float
    trainable: int
    selected_epoch: int
    """1-based epoch whose weights were tested."""
    val_loss: float
    """Its validation loss (NaN without a validation split: the last epoch is tested)."""
    precision: str


class _Net(torch.nn.Module):
    """Encoder + head as one module, for one DDP wrapper over both."""

    def __init__(self, encoder: torch.nn.Module, head: torch.nn.Module, task: str) -> None:
        super().__init__()
        self.encoder, self.head, self.task = encoder, head, task

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return task_logits(self.encoder, self.head, images, self.task)


def run_protocol(
    train: LabelDataset,
    val: LabelDataset,
    test: LabelDataset,
    encoder: Encoder,
    protocol: str,
    cfg: BenchmarkConfig,
    settings: Settings,
    placement: Placement,
) -> Outcome:
    """Train on ``train`` under ``protocol`` for ``cfg.epochs``, validate every epoch, test the
    weights of the lowest validation loss on ``test``."""
    device = placement.device
    task = "multilabel" if train.multilabel else "segmentation"
    torch.manual_seed(cfg.seed)
    model_encoder = encoder.build(len(train.stats.mean), task).to(device)
    head = build_head(task, model_encoder, train.num_classes).to(device)
    setup = apply_protocol(protocol, model_encoder, head, frozen_bn=cfg.frozen_bn)
    optimizer = torch.optim.AdamW(setup.param_groups, lr=cfg.lr, weight_decay=settings.weight_decay)
    schedule = cosine_schedule(optimizer, cfg.epochs)
    precision = Precision(device, cfg.amp)
    net = _Net(model_encoder, head, task)
    if placement.world > 1:
        if device.type == "cuda":
            net = torch.nn.SyncBatchNorm.convert_sync_batchnorm(net)
        net = torch.nn.parallel.DistributedDataParallel(net)
    sampler = (
        DistributedSampler(train, placement.world, placement.rank, shuffle=True, seed=cfg.seed)
        if placement.world > 1
        else None
    )
    loader = DataLoader(
        train,
        batch_size=per_process_batch(settings.batch_size, placement.world),
        shuffle=sampler is None,
        sampler=sampler,
        num_workers=cfg.workers,
        drop_last=False,
    )
    best = BestEpoch(model_encoder, head)
    for epoch in range(cfg.epochs):
        if sampler is not None:
            sampler.set_epoch(epoch)
        generator = checkpoints.seed_epoch(cfg.seed, epoch)
        set_train_mode(setup, model_encoder, head, training=True)
        for batch in loader:
            images, target = batch["image"].to(device), batch["target"].to(device)
            images, target = augment(images, target, settings.crop_scale, generator)
            with precision.autocast():
                logits = net(images)
            precision.step(_loss(logits.float(), target, task, train.ignore_index), optimizer)
        schedule.step()
        if len(val):
            best.update(
                epoch + 1,
                validation_loss(val, model_encoder, head, task, loader.batch_size, cfg, device, precision),
            )
    best.restore()
    value, macro = evaluate(test, model_encoder, head, task, loader.batch_size, cfg, device)
    return Outcome(
        value,
        macro,
        setup.trainable,
        best.epoch or cfg.epochs,
        best.loss if best.epoch else math.nan,
        precision.name,
    )


def _loss(logits, target, task, ignore_index):
    if task == "multilabel":
        return F.binary_cross_entropy_with_logits(logits, target)
    return F.cross_entropy(logits, target, ignore_index=-100 if ignore_index is None else ignore_index)


def _batches(dataset: LabelDataset, batch_size: int, cfg: BenchmarkConfig) -> DataLoader:
    """Evaluation batches, in order (every process sees the whole split: the scores agree)."""
    return DataLoader(dataset, batch_size=batch_size, num_workers=cfg.workers)


@torch.no_grad()
def validation_loss(
    val: LabelDataset,
    encoder,
    head,
    task: str,
    batch_size: int,
    cfg: BenchmarkConfig,
    device,
    precision: Precision,
) -> float:
    """The mean training loss over ``val`` (eval mode, no augmentation); NaN when it is undefined
    (e.g. only ignored pixels), which never counts as the lowest."""
    encoder.eval()
    head.eval()
    total, count = 0.0, 0
    for batch in _batches(val, batch_size, cfg):
        images, target = batch["image"].to(device), batch["target"].to(device)
        with precision.autocast():
            logits = task_logits(encoder, head, images, task)
        total += float(_loss(logits.float(), target, task, val.ignore_index)) * len(images)
        count += len(images)
    return total / count if count else math.nan


@torch.no_grad()
def evaluate(
    test: LabelDataset, encoder, head, task: str, batch_size: int, cfg: BenchmarkConfig, device
) -> tuple[float, float]:
    """(headline, macro mIoU) on ``test``: (micro F1, NaN) for multi-label, (micro Jaccard, macro
    mIoU) with the ignored background left out for segmentation; NaN where undefined."""
    if len(test) == 0:
        return math.nan, math.nan
    encoder.eval()
    head.eval()
    counts = MultiLabelCounts(test.num_classes) if task == "multilabel" else None
    matrix = None if counts else ConfusionMatrix(test.num_classes, test.ignore_index)
    for batch in _batches(test, batch_size, cfg):
        images, target = batch["image"].to(device), batch["target"].to(device)
        logits = task_logits(encoder, head, images, task).float()
        if counts:
            counts.update(logits, target)
        else:
            matrix.update(logits.argmax(1), target)
    if counts:
        return counts.compute(), math.nan
    return matrix.micro_jaccard(), matrix.macro_miou()


def protocols_of(cfg: BenchmarkConfig) -> list[str]:
    """The configured protocols and one ``first_<n>`` per ``unfreeze_first`` entry, all checked."""
    names = [*cfg.protocols, *(f"first_{n}" for n in cfg.unfreeze_first)]
    for name in names:
        check_protocol(name)
    return list(dict.fromkeys(names))


def run_benchmark(cfg: BenchmarkConfig, report: Reporter) -> list[dict]:
    """One row per dataset, protocol and encoder (the benchmarked one, then the ``random_init``
    baselines). A cell that cannot be measured (the dataset is not built, a split is empty, the
    test samples hold no class) is a row with a NaN value and the reason in ``note``, so that the
    table says why it shows ``n/a``."""
    if cfg.frozen_bn not in FROZEN_BN:
        raise ValueError(f"frozen_bn must be one of {', '.join(FROZEN_BN)}, not {cfg.frozen_bn!r}")
    protocols = protocols_of(cfg)
    placement = place(cfg.device)
    encoder = Encoder.load(cfg.encoder)
    cfg = replace(cfg, normalisation=encoder.normalisation(cfg.normalisation))
    encoders = [encoder, *random_inits(cfg, encoder)]
    root = storage_path(cfg.data_root)  # a folder or an s3:// bucket
    paths = {name: dataset_path(DataLayout.at(root).labels, name) for name in cfg.datasets}
    built = [name for name, path in paths.items() if (path / "zarr.json").is_file()]
    if not built:
        raise FileNotFoundError(
            f"none of the label datasets {', '.join(cfg.datasets)} is built under "
            f"{DataLayout.at(root).labels} (materialise them first)"
        )
    rows = []
    for name in cfg.datasets:
        if name not in built:
            reason = f"{name} not built: no {paths[name]} (materialise it with labels_job)"
            report.info(f"{name}: {reason}")
            metric = _metric_of(name)
            rows += [_unmeasured(name, p, metric, reason, e, cfg) for e in encoders for p in protocols]
            continue
        attrs = dict(zarr.open_group(zarr_location(paths[name]), mode="r").attrs)
        release = resolve_release(
            DataLayout.at(root, sensor=attrs["sensor"]).releases, attrs["provenance"]["release"]
        )
        normalised = normalisation_for(cfg.normalisation, release, name)
        if normalised.why:
            report.info(f"{name}: {normalised.why}")
        stats = normalised.stats
        train, val, test = (LabelDataset(paths[name], split, stats, cfg.limit) for split in SPLITS)
        metric = "micro_f1" if train.multilabel else "micro_jaccard"
        settings = Settings.of(cfg, name, "multilabel" if train.multilabel else "segmentation")
        empty = _empty_split_reason(name, paths[name])
        if empty:  # nothing to train on or nothing to test: not trained at all
            report.info(f"{name}: {empty}; skipped")
            rows += [
                _unmeasured(name, p, metric, empty, e, cfg, (train, val, test))
                for e in encoders
                for p in protocols
            ]
            continue
        no_val = "" if len(val) else f"no validation split in {name}: the last epoch is tested"
        report.info(
            f"{name}: global batch {settings.batch_size} "
            f"({per_process_batch(settings.batch_size, placement.world)} per process x {placement.world}), "
            f"weight decay {settings.weight_decay:g}, crop scale {settings.crop_scale}"
        )
        for enc in encoders:
            note = check_release(train, enc, cfg, report)
            label, _ = encoder_label(enc)
            for protocol in protocols:
                started = time.perf_counter()
                out = run_protocol(train, val, test, enc, protocol, cfg, settings, placement)
                undefined = math.isnan(out.value)
                why = _undefined_metric_reason(name, train.multilabel, len(test)) if undefined else ""
                report.info(
                    f"{name} {protocol} {label}: {metric} {out.value:.4f}"
                    + ("" if train.multilabel else f", macro_miou {out.macro_miou:.4f}")
                    + f", epoch {out.selected_epoch} selected ({time.perf_counter() - started:.1f} s)"
                    + (f"; {why}" if why else "")
                )
                rows.append(
                    {
                        **_row(name, protocol, metric, enc, cfg, settings, (train, val, test)),
                        "value": out.value,
                        "macro_miou": out.macro_miou,
                        "selected_epoch": out.selected_epoch,
                        "val_loss": out.val_loss,
                        "precision": out.precision,
                        "trainable_params": out.trainable,
                        "normalisation": normalised.used,
                        "note": "; ".join(n for n in (note, no_val, why) if n),
                    }
                )
    return rows


def _row(
    name: str,
    protocol: str,
    metric: str,
    encoder: Encoder,
    cfg: BenchmarkConfig,
    settings: Settings | None = None,
    splits: tuple[LabelDataset, LabelDataset, LabelDataset] | None = None,
) -> dict:
    """The columns every row has (``COLUMNS``), whether or not it was measured."""
    label, model = encoder_label(encoder)
    train, val, test = splits or (None, None, None)
    return {
        "dataset": name,
        "protocol": protocol,
        "encoder": label,
        "model": model,
        "metric": metric,
        "epochs": cfg.epochs if settings is not None else 0,
        "frozen_bn": cfg.frozen_bn,
        "normalisation": cfg.normalisation,
        "batch_size": settings.batch_size if settings is not None else "",
        "weight_decay": settings.weight_decay if settings is not None else "",
        "train_samples": len(train) if train is not None else 0,
        "val_samples": len(val) if val is not None else 0,
        "test_samples": len(test) if test is not None else 0,
        "encoder_sha256": encoder.sha256,
        "encoder_release": encoder.release,
        "dataset_version": train.attrs.get("version", "") if train is not None else "",
        "dataset_release": train.release if train is not None else "",
    }


def _unmeasured(name, protocol, metric, reason, encoder, cfg, splits=None) -> dict:
    return {
        **_row(name, protocol, metric, encoder, cfg, splits=splits),
        "value": math.nan,
        "macro_miou": math.nan,
        "selected_epoch": "",
        "val_loss": math.nan,
        "precision": "",
        "trainable_params": 0,
        "note": reason,
    }


def _metric_of(name: str) -> str:
    """The metric of a dataset that is not built, from its product entry (micro F1 for multi-label)."""
    from storage_schemas.label_products import LABEL_PRODUCTS

    product = LABEL_PRODUCTS.get(name)
    return "micro_f1" if product is not None and product.task == "multilabel" else "micro_jaccard"


def _empty_split_reason(name: str, path: Path) -> str:
    """Why a dataset cannot be trained or tested on, from its split sizes ("" when it can)."""
    splits = zarr.open_group(zarr_location(path), mode="r")["split"][:].tolist()
    sizes = {s: splits.count(s) for s in ("train", "val", "test")}
    listed = f"{len(splits)} samples: {sizes['train']} train, {sizes['val']} val, {sizes['test']} test"
    if sizes["train"] == 0:
        return f"no training split in {name} ({listed})"
    if sizes["test"] == 0:
        if sizes["train"] == len(splits):
            return f"no test split in {name} ({len(splits)} samples, all in train)"
        return f"no test split in {name} ({listed})"
    return ""


def _undefined_metric_reason(name: str, multilabel: bool, test_samples: int) -> str:
    if multilabel:
        return (
            f"micro F1 undefined: no class present or predicted in the {test_samples} test samples of {name}"
        )
    return (
        f"micro Jaccard undefined: no labelled class pixel (only ignored background) in the {test_samples} "
        f"test samples of {name}"
    )


def table_markdown(rows: list[dict]) -> str:
    """The paper's Table 2 shape: a row per protocol and encoder (with its trainable parameters), a
    column per dataset: micro F1 x 100 for EnMAP-CORINE; micro Jaccard (the tables' "mIoU") x 100 /
    macro mIoU x 100 for the segmentation datasets; each with the tested epoch. Every ``n/a`` cell
    carries a footnote number; the footnotes under the table give the reasons."""
    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    lines_of = list(dict.fromkeys((r["protocol"], r.get("encoder", "")) for r in rows))
    by = {(r["dataset"], r["protocol"], r.get("encoder", "")): r for r in rows}
    metric = {d: next(r["metric"] for r in rows if r["dataset"] == d) for d in datasets}
    head = "| protocol | encoder (# trainable params) | " + " | ".join(
        f"{d}: {_metric_header(metric[d])}" for d in datasets
    )
    lines = [head + " |", "|---" * (len(datasets) + 2) + "|"]
    reasons: dict[str, int] = {}
    for protocol, enc in lines_of:
        params = max(
            r["trainable_params"] for r in rows if (r["protocol"], r.get("encoder", "")) == (protocol, enc)
        )
        cells = [_cell(by.get((d, protocol, enc)), reasons, d, protocol) for d in datasets]
        lines.append(f"| {protocol} | {enc} ({params:,}) | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Scores x 100; (ep. N): the epoch of lowest validation loss, whose weights were tested. "
        "micro Jaccard = sum TP / sum (TP + FP + FN) over non-background pixels (what the published "
        "tables call mIoU); macro mIoU = mean of the per-class IoUs; micro F1 at p > 0.5.",
    ]
    if reasons:
        lines += ["", *(f"({n}) {reason}  " for reason, n in reasons.items())]
    return "\n".join(lines)


def _metric_header(metric: str) -> str:
    if metric == "micro_jaccard":
        return f"{METRIC_NAMES['micro_jaccard']} / {METRIC_NAMES['macro_miou']}"
    return METRIC_NAMES.get(metric, metric)


def _cell(row: dict | None, reasons: dict[str, int], dataset: str, protocol: str) -> str:
    if row is not None and not math.isnan(row["value"]):
        text = f"{100 * row['value']:.1f}"
        if row["metric"] == "micro_jaccard":
            macro = row.get("macro_miou", math.nan)
            text += " / " + ("n/a" if math.isnan(macro) else f"{100 * macro:.1f}")
        epoch = row.get("selected_epoch")
        return text + (f" (ep. {epoch})" if epoch not in (None, "") else "")
    reason = (row or {}).get("note") or f"{dataset} was not run with {protocol}"
    number = reasons.setdefault(reason, len(reasons) + 1)
    return f"n/a ({number})"


def write_results(rows: list[dict], out: Path) -> tuple[Path, Path]:
    """``results.csv`` and ``table.md`` under ``out``, each replaced atomically (a reader never sees
    half a table)."""
    make_folders(out)
    results = out / RESULTS
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    write_text(results, buffer.getvalue())
    table = out / TABLE
    write_text(table, table_markdown(rows) + "\n")
    return results, table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True)
    args = parser.parse_args(argv)
    cfg = load_config(args.config, BenchmarkConfig)
    with reporter() as report:
        try:
            rows = run_benchmark(cfg, report)
        except (ReleaseMismatchError, FileNotFoundError, LookupError, ValueError) as exc:
            report.error(str(exc))
            return 2
        if not place(cfg.device).main:
            return 0  # under torchrun every process has the same rows; the first one writes them
        results, table = write_results(rows, Path(cfg.out_dir))
        report.info("\n" + table.read_text())
        report.materialization(
            {
                "table": {"raw_value": table.read_text(), "type": "md"},
                "results_csv": {"raw_value": str(results), "type": "path"},
                "encoder_sha256": rows[0]["encoder_sha256"] if rows else "",
                "rows": len(rows),
            },
            data_version=checkpoints.sha256(results)[:16],
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
