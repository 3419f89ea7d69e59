"""The benchmark entry point on label datasets built by the test: the paper's table shape, one CSV
row per dataset and protocol with the encoder and dataset versions, metrics in range, and a label
dataset from another release refused (or run with a warning when the config says so)."""

from __future__ import annotations

import csv
import dataclasses
import math

import pytest
import torch

from assets.labels.build import SplitSettings, build_label_dataset
from storage_schemas.label_products import LABEL_PRODUCTS
from storage_schemas.release import resolve_release
from tests.labels.rasters import albers_around, cluster, covering_grid, release_index, stripes, write_raster
from training import checkpoints
from training.benchmark import RESULTS, ReleaseMismatchError, run_benchmark, write_results
from training.config import BenchmarkConfig, PretrainConfig
from training.pretrain import pretrain
from training.reporting import Reporter

TINY_VIT = {"embed_dim": 32, "depth": 1, "num_heads": 2, "mlp_dim": 64}


def _serial(f, items):
    return [f(i) for i in items]


@pytest.fixture
def labelled(released, tmp_path):
    """NLCD and CORINE datasets over the test release, and a tiny pretrained encoder."""
    site = cluster(release_index(released))
    crs = albers_around(site)
    for name, pixel, codes, path in (
        ("enmap_nlcd", 30.0, [11, 41, 82, 21], "nlcd/nlcd_2021_land_cover.tif"),
        ("enmap_corine", 100.0, [2, 12, 23, 41], "corine/U2018_CLC2018_V2020_20u1.tif"),
    ):
        transform, h, w = covering_grid(site, crs, pixel)
        write_raster(released.label_sources / path, crs, transform, stripes(h, w, codes, 20, "uint8"), 128)
        product = dataclasses.replace(LABEL_PRODUCTS[name], years=(2021,) if name == "enmap_nlcd" else ())
        release = resolve_release(released.releases, "latest")
        build_label_dataset(
            product, release, released.store, released.label_sources, released.labels, _serial,
            SplitSettings(method="random", fractions=(0.5, 0.0, 0.5)),
        )  # fmt: skip
    cfg = PretrainConfig(
        data_root=str(released.root), model="spec_vit", model_args=TINY_VIT, method="mae",
        method_args={"decoder_dim": 32, "decoder_depth": 1, "decoder_heads": 2}, epochs=1, batch_size=2,
        workers=0, image_px=16, out_dir=str(tmp_path / "pretrain"),
    )  # fmt: skip
    result = pretrain(cfg, Reporter())
    return released, result.encoder_path


def _cfg(layout, encoder, tmp_path, **kw) -> BenchmarkConfig:
    return BenchmarkConfig(
        data_root=str(layout.root), encoder=str(encoder), datasets=["enmap_corine", "enmap_nlcd"],
        protocols=["frozen", "adapter"], epochs=1, batch_size=2, workers=0,
        out_dir=str(tmp_path / "bench"), **kw,
    )  # fmt: skip


def test_results_have_the_tables_shape_and_versions(labelled, tmp_path):
    layout, encoder = labelled
    rows = run_benchmark(_cfg(layout, encoder, tmp_path), Reporter())
    assert [(r["dataset"], r["protocol"]) for r in rows] == [
        ("enmap_corine", "frozen"), ("enmap_corine", "adapter"),
        ("enmap_nlcd", "frozen"), ("enmap_nlcd", "adapter"),
    ]  # fmt: skip
    sha = checkpoints.sha256(encoder)
    for row in rows:
        assert row["metric"] == ("micro_f1" if row["dataset"] == "enmap_corine" else "miou")
        assert math.isnan(row["value"]) or 0.0 <= row["value"] <= 1.0
        assert row["encoder_sha256"] == sha and len(row["dataset_version"]) == 16
        assert row["dataset_release"] == row["encoder_release"]
    frozen = next(r for r in rows if r["protocol"] == "frozen")
    adapter = next(r for r in rows if r["protocol"] == "adapter" and r["dataset"] == frozen["dataset"])
    assert adapter["trainable_params"] - frozen["trainable_params"] == 56_192, (
        "the adapter trains in 'adapter'"
    )
    results, table = write_results(rows, tmp_path / "bench")
    with open(results) as f:
        assert len(list(csv.DictReader(f))) == 4
    text = table.read_text()
    assert "enmap_corine (F1)" in text and "enmap_nlcd (mIoU)" in text and "| frozen (" in text
    assert (tmp_path / "bench" / RESULTS).is_file()


def test_a_dataset_of_another_release_is_refused_or_warned(labelled, tmp_path):
    layout, encoder = labelled
    state = checkpoints.load(encoder)
    state["release"] = "0000000000000000"
    torch.save(state, encoder)
    with pytest.raises(ReleaseMismatchError, match=r"from release .* the encoder from 0{16}"):
        run_benchmark(_cfg(layout, encoder, tmp_path), Reporter())
    rows = run_benchmark(_cfg(layout, encoder, tmp_path, release_mismatch="warn"), Reporter())
    assert rows and all(r["note"].startswith("release mismatch") for r in rows)
