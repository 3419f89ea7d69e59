"""Every ``n/a`` of the benchmark table has a reason under the table: a dataset that is not built,
a split that is empty, a metric with nothing to measure."""

from __future__ import annotations

import dataclasses
import math
import re

import numpy as np
import zarr

from storage_schemas.label_dataset import dataset_path
from tests.training.test_benchmark import _cfg, labelled  # noqa: F401
from training.benchmark import run_benchmark, table_markdown
from training.reporting import Reporter

NA = re.compile(r"n/a \((\d+)\)")


def _footnotes(table: str) -> dict[str, str]:
    return dict(re.findall(r"^\((\d+)\) (.+?)\s*$", table, flags=re.MULTILINE))


def _row(dataset, protocol, value, note="", metric="micro_jaccard", params=10):
    return {"dataset": dataset, "protocol": protocol, "encoder": "enc", "metric": metric,
            "value": value, "macro_miou": value / 2, "selected_epoch": 3, "trainable_params": params,
            "note": note}  # fmt: skip


def test_each_n_a_cell_points_to_its_reason():
    rows = [
        _row("enmap_corine", "frozen", 0.5, metric="micro_f1"),
        _row("enmap_corine", "adapter", math.nan, "micro F1 undefined: ...", metric="micro_f1"),
        _row("enmap_cdl", "frozen", math.nan, "no test split in enmap_cdl (5 samples, all in train)"),
        _row("enmap_cdl", "adapter", math.nan, "no test split in enmap_cdl (5 samples, all in train)"),
        _row("enmap_nlcd", "frozen", 0.1),  # no adapter row for NLCD
    ]
    table = table_markdown(rows)
    notes = _footnotes(table)
    cells = NA.findall(table)
    assert len(cells) == 4 and set(cells) == set(notes), table
    # row by row: frozen (cdl), then adapter (corine, cdl, nlcd)
    assert notes[cells[0]] == "no test split in enmap_cdl (5 samples, all in train)"
    assert cells[0] == cells[2] and len(set(cells)) == 3, "one reason, one footnote"
    assert "enmap_nlcd was not run with adapter" in notes.values()
    assert "| frozen | enc (10) | 50.0 (ep. 3) |" in table
    assert "| 10.0 / 5.0 (ep. 3) |" in table, "micro Jaccard / macro mIoU"


def test_unbuilt_datasets_and_empty_splits_are_named_in_the_table(labelled, tmp_path):  # noqa: F811
    layout, encoder = labelled
    split = zarr.open_group(dataset_path(layout.labels, "enmap_nlcd"), mode="r+")["split"]
    split[:] = np.full(split.shape, "train", dtype=object)
    cfg = dataclasses.replace(
        _cfg(layout, encoder, tmp_path),
        datasets=["enmap_corine", "enmap_nlcd", "enmap_cdl"],
        protocols=["frozen"],
    )
    rows = run_benchmark(cfg, Reporter())
    by = {r["dataset"]: r for r in rows}
    assert math.isnan(by["enmap_cdl"]["value"]) and by["enmap_cdl"]["note"].startswith("enmap_cdl not built")
    samples = split.shape[0]
    assert by["enmap_nlcd"]["note"] == f"no test split in enmap_nlcd ({samples} samples, all in train)"
    table = table_markdown(rows)
    notes = _footnotes(table)
    assert set(NA.findall(table)) == set(notes) and len(notes) >= 2
    assert any(n.startswith("enmap_cdl not built") for n in notes.values())
