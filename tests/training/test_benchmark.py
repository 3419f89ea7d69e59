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
from training.benchmark import COLUMNS, RESULTS, ReleaseMismatchError, run_benchmark, write_results
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
    rows = run_benchmark(_cfg(layout, encoder, tmp_path, random_init=["encoder"]), Reporter())
    pretrained, baseline = "spec_vit (pretrained)", "random init (spec_vit)"
    assert [(r["dataset"], r["protocol"], r["encoder"]) for r in rows] == [
        (d, p, e)
        for d in ("enmap_corine", "enmap_nlcd")
        for e in (pretrained, baseline)
        for p in ("frozen", "adapter")
    ]
    sha = checkpoints.sha256(encoder)
    for row in rows:
        segmentation = row["dataset"] != "enmap_corine"
        assert row["metric"] == ("micro_jaccard" if segmentation else "micro_f1")
        assert math.isnan(row["value"]) or 0.0 <= row["value"] <= 1.0
        assert math.isnan(row["macro_miou"]) or (segmentation and 0.0 <= row["macro_miou"] <= 1.0)
        assert row["encoder_sha256"] == (sha if row["encoder"] == pretrained else "")
        assert len(row["dataset_version"]) == 16 and row["model"] == "spec_vit"
        assert (row["frozen_bn"], row["normalisation"], row["selected_epoch"]) == ("train", "release", 1)
        assert (row["batch_size"], row["weight_decay"]) == (
            2,
            1e-5 if row["dataset"] == "enmap_corine" else 1e-4,
        )
        assert "no validation split" in row["note"], "the fixture has none: the last epoch is tested"
    assert rows[0]["dataset_release"] == rows[0]["encoder_release"]
    frozen = next(r for r in rows if r["protocol"] == "frozen")
    adapter = next(r for r in rows if r["protocol"] == "adapter" and r["dataset"] == frozen["dataset"])
    assert adapter["trainable_params"] - frozen["trainable_params"] == 56_192, (
        "the adapter trains in 'adapter'"
    )
    results, table = write_results(rows, tmp_path / "bench")
    with open(results) as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == COLUMNS
        written = list(reader)
    assert len(written) == 8 and {r["encoder_sha256"] for r in written} == {sha, ""}
    text = table.read_text()
    assert "| enmap_corine: micro F1 |" in text
    assert "enmap_nlcd: micro Jaccard (tables' mIoU) / macro mIoU" in text
    assert f"| frozen | {pretrained} (" in text and f"| adapter | {baseline} (" in text
    assert "(ep. 1)" in text
    assert (tmp_path / "bench" / RESULTS).is_file()


def test_bad_protocols_and_frozen_bn_are_refused_before_training(released, tmp_path):
    layout, encoder = released, tmp_path / "never_read.pt"
    with pytest.raises(ValueError, match="unknown protocol 'linear'"):
        run_benchmark(dataclasses.replace(_cfg(layout, encoder, tmp_path), protocols=["linear"]), Reporter())
    with pytest.raises(ValueError, match="frozen_bn"):
        run_benchmark(_cfg(layout, encoder, tmp_path, frozen_bn="frozen"), Reporter())


def test_a_dataset_of_another_release_is_refused_or_warned(labelled, tmp_path):
    layout, encoder = labelled
    state = checkpoints.load(encoder)
    state["release"] = "0000000000000000"
    torch.save(state, encoder)
    with pytest.raises(ReleaseMismatchError, match=r"from release .* the encoder .*encoder\.pt from 0{16}"):
        run_benchmark(_cfg(layout, encoder, tmp_path), Reporter())
    rows = run_benchmark(_cfg(layout, encoder, tmp_path, release_mismatch="warn"), Reporter())
    assert rows and all(r["note"].startswith("release mismatch") for r in rows)


def test_segmentation_runs_on_the_published_all_stage_dilated_resnet():
    """Spec. ResNet-50's weights go into the published segmentation backbone: no stride left."""
    from training.benchmark import Encoder
    from training.models import build_encoder

    tiny = {"layers": (1, 1, 1, 1), "widths": (8, 16, 32, 64)}
    saved = build_encoder("spec_resnet50", 7, **tiny)
    state = {"model": "spec_resnet50", "model_args": tiny, "bands": 7, "state_dict": saved.state_dict()}
    segmentation = Encoder(state, "").build(7, "segmentation")
    assert segmentation.output_stride == 1
    assert Encoder(state, "").build(7, "multilabel").output_stride == 16


def test_benchmark_heads_read_the_class_token_of_a_vit_and_the_map_for_segmentation():
    """As published: a multi-label head on the class token, a segmentation head on the token map."""
    from training.benchmark import _Net
    from training.models import build_encoder, build_head

    torch.manual_seed(0)
    vit = build_encoder("spec_vit", 7, embed_dim=32, depth=1, num_heads=2).eval()
    images = torch.randn(2, 7, 128, 128)
    multilabel = build_head("multilabel", vit, 3).eval()
    logits = _Net(vit, multilabel, "multilabel")(images)
    torch.testing.assert_close(logits, multilabel(vit(images)))  # the class token after the norm
    assert not torch.allclose(logits, multilabel(vit.forward_features(images)))  # not the pooled map
    segmentation = build_head("segmentation", vit, 4).eval()
    assert _Net(vit, segmentation, "segmentation")(images).shape == (2, 4, 128, 128)
