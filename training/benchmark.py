"""Benchmark a pretrained encoder on the label datasets: ``python -m training.benchmark --config FILE``.

SpectralEarth's three protocols (section 5.3): the encoder frozen (a linear or up-sampling head
trains), the spectral adapter fine-tuned with the head, and full fine-tuning; micro F1 on
EnMAP-CORINE (multi-label), mIoU on the segmentation datasets (the ignored background class left
out of the mean). Trained on ``train``, reported on ``test``.

Each result records the encoder (path, SHA-256, release) and the dataset (name, version,
release). A label dataset built from another release than the encoder's is refused by default
(``release_mismatch: warn`` runs it with a warning); one of another sensor is transfer (the
paper's DESIS-CDL) and only noted: the adapter takes any band count.

Writes ``results.csv`` (one row per dataset and protocol) and ``table.md`` in the shape of the
paper's Table 2, and reports both through Dagster Pipes when Dagster launched it.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
import zarr
from torch.utils.data import DataLoader

from storage_schemas.label_dataset import dataset_path
from storage_schemas.paths import DataLayout
from storage_schemas.release import resolve_release
from training import checkpoints
from training.augment import random_flip
from training.config import BenchmarkConfig, load_config
from training.data import BandStatistics, LabelDataset
from training.distributed import place
from training.metrics import ConfusionMatrix, MultiLabelCounts
from training.models.registry import build_encoder, build_head
from training.protocols import apply_protocol, set_train_mode
from training.reporting import Reporter, reporter

RESULTS = "results.csv"
TABLE = "table.md"
COLUMNS = [
    "dataset",
    "protocol",
    "metric",
    "value",
    "trainable_params",
    "train_samples",
    "test_samples",
    "epochs",
    "encoder_sha256",
    "encoder_release",
    "dataset_version",
    "dataset_release",
    "note",
]


class ReleaseMismatchError(ValueError):
    """A label dataset from another release than the encoder's (``release_mismatch: refuse``)."""


@dataclass
class Encoder:
    state: dict | None
    """The saved checkpoint (None: random initialisation)."""
    sha256: str

    @classmethod
    def load(cls, path: str) -> Encoder:
        if path == "none":
            return cls(None, "")
        return cls(checkpoints.load(Path(path)), checkpoints.sha256(Path(path)))

    @property
    def release(self) -> str:
        return self.state["release"] if self.state else ""

    def build(self, bands: int, task: str) -> torch.nn.Module:
        name = self.state["model"] if self.state else "spec_resnet50"
        args = dict(self.state.get("model_args", {})) if self.state else {}
        if task == "segmentation" and name == "spec_resnet50":
            name, args["dilated"] = "spec_resnet50_dilated", (False, True, True)  # same weights, stride 2
        encoder = build_encoder(name, bands, **args)
        if self.state:
            encoder.load_state_dict(self.state["state_dict"])
        return encoder


def check_release(dataset: LabelDataset, encoder: Encoder, cfg: BenchmarkConfig, report: Reporter) -> str:
    """The note for this pairing; raises when the releases differ and the config refuses."""
    if not encoder.state:
        return "random initialisation"
    if dataset.attrs["sensor"] != encoder.state.get("sensor", "enmap"):
        return f"transfer: encoder pretrained on {encoder.state.get('sensor', 'enmap')}"
    if dataset.release == encoder.release:
        return ""
    name = dataset.attrs["name"]
    message = f"{name} was built from release {dataset.release}, the encoder from {encoder.release}"
    if cfg.release_mismatch == "refuse":
        raise ReleaseMismatchError(f"{message}: rebuild the label dataset or set release_mismatch: warn")
    report.info(f"warning: {message}")
    return "release mismatch"


def run_protocol(
    train: LabelDataset, test: LabelDataset, encoder: Encoder, protocol: str, cfg: BenchmarkConfig, device
) -> tuple[float, int]:
    """Train on ``train`` under ``protocol``; the metric on ``test`` and the trainable parameters."""
    task = "multilabel" if train.multilabel else "segmentation"
    torch.manual_seed(cfg.seed)
    model_encoder = encoder.build(len(train.stats.mean), task).to(device)
    head = build_head(task, model_encoder, train.num_classes).to(device)
    setup = apply_protocol(protocol, model_encoder, head)
    optimizer = torch.optim.AdamW(setup.param_groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    loader = DataLoader(
        train, batch_size=cfg.batch_size, shuffle=True, num_workers=cfg.workers, drop_last=False
    )
    for epoch in range(cfg.epochs):
        generator = checkpoints.seed_epoch(cfg.seed, epoch)
        set_train_mode(setup, model_encoder, head, training=True)
        for batch in loader:
            images, target = batch["image"].to(device), batch["target"].to(device)
            if task == "segmentation":
                images, target = random_flip(images, generator=generator, mask=target)
            logits = head(model_encoder.forward_features(images), size=images.shape[-2:])
            loss = _loss(logits, target, task, train.ignore_index)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return evaluate(test, model_encoder, head, task, cfg, device), setup.trainable


def _loss(logits, target, task, ignore_index):
    if task == "multilabel":
        return F.binary_cross_entropy_with_logits(logits, target)
    return F.cross_entropy(logits, target, ignore_index=-100 if ignore_index is None else ignore_index)


@torch.no_grad()
def evaluate(test: LabelDataset, encoder, head, task: str, cfg: BenchmarkConfig, device) -> float:
    if len(test) == 0:
        return math.nan
    encoder.eval()
    head.eval()
    counts = MultiLabelCounts(test.num_classes) if task == "multilabel" else None
    matrix = None if counts else ConfusionMatrix(test.num_classes, test.ignore_index)
    for batch in DataLoader(test, batch_size=cfg.batch_size, num_workers=cfg.workers):
        images, target = batch["image"].to(device), batch["target"].to(device)
        logits = head(encoder.forward_features(images), size=images.shape[-2:])
        if counts:
            counts.update(logits, target)
        else:
            matrix.update(logits.argmax(1), target)
    if counts:
        return counts.compute()
    iou = matrix.iou()
    if test.ignore_index is not None:
        iou[test.ignore_index] = math.nan  # the ignored background is not a class of the benchmark
    valid = ~torch.isnan(iou)
    return float(iou[valid].mean()) if bool(valid.any()) else math.nan


def run_benchmark(cfg: BenchmarkConfig, report: Reporter) -> list[dict]:
    """One row per dataset and protocol. A cell that cannot be measured (the dataset is not built,
    a split is empty, the test samples hold no class) is a row with a NaN value and the reason in
    ``note``, so that the table says why it shows ``n/a``."""
    device = place(cfg.device).device
    encoder = Encoder.load(cfg.encoder)
    root = Path(cfg.data_root).absolute()
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
            rows += [_unmeasured(name, p, _metric_of(name), reason, encoder) for p in cfg.protocols]
            continue
        attrs = dict(zarr.open_group(paths[name], mode="r").attrs)
        release = resolve_release(
            DataLayout.at(root, sensor=attrs["sensor"]).releases, attrs["provenance"]["release"]
        )
        stats = BandStatistics.of_release(release)
        train = LabelDataset(paths[name], "train", stats, cfg.limit)
        test = LabelDataset(paths[name], "test", stats, cfg.limit)
        note = check_release(train, encoder, cfg, report)
        metric = "micro_f1" if train.multilabel else "miou"
        empty = _empty_split_reason(name, paths[name])
        if empty and len(train) == 0:
            report.info(f"{name}: {empty}; skipped")
            rows += [_unmeasured(name, p, metric, empty, encoder, train, test) for p in cfg.protocols]
            continue
        for protocol in cfg.protocols:
            started = time.perf_counter()
            value, trainable = run_protocol(train, test, encoder, protocol, cfg, device)
            why = empty or (
                _undefined_metric_reason(name, train.multilabel, len(test)) if math.isnan(value) else ""
            )
            report.info(
                f"{name} {protocol}: {metric} {value:.4f} ({time.perf_counter() - started:.1f} s)"
                + (f"; {why}" if why else "")
            )
            rows.append(
                {
                    **_row(name, protocol, metric, encoder, train, test, cfg.epochs),
                    "value": value,
                    "trainable_params": trainable,
                    "note": "; ".join(n for n in (note, why) if n),
                }
            )
    return rows


def _row(name: str, protocol: str, metric: str, encoder: Encoder, train=None, test=None, epochs=0) -> dict:
    """The columns every row has (``COLUMNS``), whether or not it was measured."""
    return {
        "dataset": name,
        "protocol": protocol,
        "metric": metric,
        "train_samples": len(train) if train is not None else 0,
        "test_samples": len(test) if test is not None else 0,
        "epochs": epochs,
        "encoder_sha256": encoder.sha256,
        "encoder_release": encoder.release,
        "dataset_version": train.attrs.get("version", "") if train is not None else "",
        "dataset_release": train.release if train is not None else "",
    }


def _unmeasured(name, protocol, metric, reason, encoder, train=None, test=None) -> dict:
    return {
        **_row(name, protocol, metric, encoder, train, test),
        "value": math.nan,
        "trainable_params": 0,
        "note": reason,
    }


def _metric_of(name: str) -> str:
    """The metric of a dataset that is not built, from its product entry (micro F1 for multi-label)."""
    from storage_schemas.label_products import LABEL_PRODUCTS

    product = LABEL_PRODUCTS.get(name)
    return "micro_f1" if product is not None and product.task == "multilabel" else "miou"


def _empty_split_reason(name: str, path: Path) -> str:
    """Why a dataset cannot be trained or tested on, from its split sizes ("" when it can)."""
    splits = zarr.open_group(path, mode="r")["split"][:].tolist()
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
        f"mIoU undefined: no labelled class pixel (only ignored background) in the {test_samples} test "
        f"samples of {name}"
    )


def table_markdown(rows: list[dict]) -> str:
    """The paper's Table 2 shape: a row per protocol (with its trainable parameters), a column per
    dataset (micro F1 x 100 for EnMAP-CORINE, mIoU x 100 for the others). Every ``n/a`` cell carries
    a footnote number; the footnotes under the table give the reasons."""
    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    protocols = list(dict.fromkeys(r["protocol"] for r in rows))
    by = {(r["dataset"], r["protocol"]): r for r in rows}
    head = "| protocol (# trainable params) | " + " | ".join(
        f"{d} ({'F1' if by[(d, protocols[0])]['metric'] == 'micro_f1' else 'mIoU'})" for d in datasets
    )
    lines = [head + " |", "|---" * (len(datasets) + 1) + "|"]
    reasons: dict[str, int] = {}
    for p in protocols:
        params = max(r["trainable_params"] for r in rows if r["protocol"] == p)
        cells = [_cell(by.get((d, p)), reasons, d, p) for d in datasets]
        lines.append(f"| {p} ({params:,}) | " + " | ".join(cells) + " |")
    if reasons:
        lines += ["", *(f"({n}) {reason}  " for reason, n in reasons.items())]
    return "\n".join(lines)


def _cell(row: dict | None, reasons: dict[str, int], dataset: str, protocol: str) -> str:
    if row is not None and not math.isnan(row["value"]):
        return f"{100 * row['value']:.1f}"
    reason = (row or {}).get("note") or f"{dataset} was not run with {protocol}"
    number = reasons.setdefault(reason, len(reasons) + 1)
    return f"n/a ({number})"


def write_results(rows: list[dict], out: Path) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    results = out / RESULTS
    with open(results, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    table = out / TABLE
    table.write_text(table_markdown(rows) + "\n")
    return results, table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True)
    args = parser.parse_args(argv)
    cfg = load_config(args.config, BenchmarkConfig)
    with reporter() as report:
        try:
            rows = run_benchmark(cfg, report)
        except (ReleaseMismatchError, FileNotFoundError, LookupError) as exc:
            report.error(str(exc))
            return 2
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
