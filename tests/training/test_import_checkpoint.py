"""``spectralforge import-checkpoint`` and ``load_encoder``: published weights round-trip exactly.

Each source checkpoint is built from our own encoder in the published key layout (RECIPE.md,
"Checkpoints as they are found"): a plain backbone state dict with its classifier, and Lightning
``state_dict``s of MoCo (query and key encoders), DINO (student and teacher) and MAE (with its alias
keys). The imported encoder must give the source model's embedding, and the branch asked for, not
the other one. Every bad input exits 2 with one message naming the file, and writes nothing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from spectralforge.cli import main as cli
from storage_schemas.release import STATISTICS, resolve_release
from tests.training.test_benchmark import _cfg, labelled  # noqa: F401 (a fixture)
from training import checkpoints
from training.benchmark import run_benchmark
from training.data import BandStatistics
from training.import_checkpoint import import_checkpoint
from training.models import load_encoder
from training.models.loading import EncoderFileError
from training.models.registry import build_encoder
from training.normalisation import normalisation_for, published_table
from training.reporting import Reporter

BANDS = 202
SIDE = {"spec_resnet50": 64, "spec_vit_s": 128}
"""Input side per model: the ViT's learned position table is for 128 px; the ResNet takes any."""


def source_model(name: str, seed: int) -> torch.nn.Module:
    """Our encoder with random weights and random BatchNorm statistics (so that a converter that
    drops buffers gives another embedding), in eval mode."""
    torch.manual_seed(seed)
    model = build_encoder(name, BANDS)
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.num_batches_tracked.fill_(7)
    return model.eval()


def prefixed(prefix: str, state: dict) -> dict:
    return {prefix + k: v for k, v in state.items()}


def plain(models: dict, name: str) -> dict:
    """A released backbone: our keys plus the classifier head the release carries."""
    state = dict(models["a"].state_dict())
    if name == "spec_resnet50":
        state |= {"resnet.fc.weight": torch.randn(1000, 2048), "resnet.fc.bias": torch.zeros(1000)}
    else:
        state |= {"vit_core.head.weight": torch.randn(10, 384), "vit_core.head.bias": torch.zeros(10)}
    return state


def moco(models: dict, name: str) -> dict:
    """Lightning MoCo: ``a`` is the query encoder, ``b`` the key (momentum) encoder."""
    state = prefixed("backbone.", models["a"].state_dict()) | prefixed(
        "backbone_momentum.", models["b"].state_dict()
    )
    state |= {"projection_head.layers.0.weight": torch.randn(16, 8), "criterion.bank": torch.randn(128, 16)}
    return {"state_dict": state, "epoch": 99, "hyper_parameters": {"lr": 0.001}, "optimizer_states": []}


def dino(models: dict, name: str) -> dict:
    """Lightning DINO: ``a`` is the teacher, ``b`` the student."""
    state = prefixed("teacher_backbone.", models["a"].state_dict()) | prefixed(
        "student_backbone.", models["b"].state_dict()
    )
    state |= {
        "student_head.layers.0.weight": torch.randn(16, 8),
        "teacher_head.layers.0.weight": torch.randn(16, 8),
        "criterion.center": torch.zeros(1, 128),
    }
    return {"state_dict": state, "epoch": 99}


def mae(models: dict, name: str) -> dict:
    """Lightning MAE: the backbone under ``encoder.vit.spec_vit.`` and aliases of the same tensors."""
    backbone = models["a"].state_dict()
    core = {k.removeprefix("vit_core."): v for k, v in backbone.items() if k.startswith("vit_core.")}
    state = prefixed("encoder.vit.spec_vit.", backbone) | prefixed("encoder.vit.vit_core.", core)
    state |= {
        "encoder.vit.patch_embed.proj.weight": core["patch_embed.proj.weight"],
        "encoder.vit.patch_embed.proj.bias": core["patch_embed.proj.bias"],
        "encoder.mask_token": torch.zeros(1, 1, 384),
        "decoder.decoder_embed.weight": torch.randn(512, 384),
        "decoder.blocks.0.norm1.weight": torch.ones(512),
    }
    return {"state_dict": state, "epoch": 199}


PREFIX = {
    "backbone": "",
    "query": "backbone.",
    "key": "backbone_momentum.",
    "teacher": "teacher_backbone.",
    "student": "student_backbone.",
    "encoder": "encoder.vit.spec_vit.",
}
"""The published key prefix of each branch (RECIPE.md)."""

LAYOUTS: dict[str, Callable[[dict, str], dict]] = {"plain": plain, "moco": moco, "dino": dino, "mae": mae}


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> Callable[[str, str], tuple[Path, dict]]:
    """``sources(layout, model) -> (file, {"a": model, "b": model})``, each written once."""
    folder = tmp_path_factory.mktemp("published")
    models: dict[str, dict] = {}
    made: dict[tuple[str, str], Path] = {}

    def get(layout: str, name: str) -> tuple[Path, dict]:
        if name not in models:
            models[name] = {"a": source_model(name, 1), "b": source_model(name, 2)}
        if (layout, name) not in made:
            made[layout, name] = folder / f"{layout}-{name}.ckpt"
            torch.save(LAYOUTS[layout](models[name], name), made[layout, name])
        return made[layout, name], models[name]

    return get


@pytest.fixture(scope="module")
def reference(sources) -> Callable[[str], tuple[torch.Tensor, dict]]:
    """``reference(model) -> (x, {"a": embedding, "b": embedding})``: a fixed normalised batch of 2
    and the source models' embeddings of it, computed once."""
    done: dict[str, tuple[torch.Tensor, dict]] = {}

    def get(name: str) -> tuple[torch.Tensor, dict]:
        if name not in done:
            _, models = sources("plain", name)
            x = torch.randn(2, BANDS, SIDE[name], SIDE[name], generator=torch.Generator().manual_seed(5))
            with torch.no_grad():
                done[name] = x, {k: m(x) for k, m in models.items()}
        return done[name]

    return get


WIDTH = {"spec_resnet50": 2048, "spec_vit_s": 384}
"""The pooled embedding: 2048 for Spec. ResNet-50, the class token of ViT-S."""


@pytest.mark.parametrize(
    "layout, name, branch, expected",
    [
        ("plain", "spec_resnet50", None, "a"),
        ("plain", "spec_vit_s", None, "a"),
        ("moco", "spec_resnet50", None, "a"),
        ("moco", "spec_vit_s", "key", "b"),
        ("dino", "spec_resnet50", None, "a"),
        ("dino", "spec_vit_s", None, "a"),
        ("dino", "spec_vit_s", "student", "b"),
        ("mae", "spec_vit_s", None, "a"),
    ],
)
def test_import_gives_the_published_embedding(sources, reference, tmp_path, layout, name, branch, expected):
    src, _ = sources(layout, name)
    out = tmp_path / "encoder.pt"
    args = [str(src), "--model", name, "--out", str(out)] + (["--branch", branch] if branch else [])
    assert cli(["import-checkpoint", *args]) == 0
    encoder = load_encoder(out)
    assert not encoder.training
    x, embeddings = reference(name)
    with torch.no_grad():
        got = encoder(x)
    assert got.shape == (2, WIDTH[name])
    torch.testing.assert_close(got, embeddings[expected], rtol=1e-6, atol=1e-6)
    other = embeddings["b" if expected == "a" else "a"]
    assert not torch.allclose(got, other), "the other branch's weights were imported"
    saved = torch.load(out, weights_only=True)
    assert saved["model"] == name and saved["bands"] == BANDS and saved["sensor"] == "enmap"
    branch = branch or {"plain": "backbone", "moco": "query", "dino": "teacher", "mae": "encoder"}[layout]
    assert saved["imported_from"] == {
        "file": str(src),
        "sha256": checkpoints.sha256(src),
        "layout": layout,
        "branch": branch,
        "prefix": PREFIX[branch],
    }
    assert set(saved["state_dict"]) == set(build_encoder(name, BANDS).state_dict())


def _refused(capsys, src: Path, out: Path, *args: str) -> str:
    """Run the import, expect exit 2, one message naming ``src``, and no ``out``."""
    code = cli(["import-checkpoint", str(src), "--out", str(out), *args])
    err = capsys.readouterr().err
    assert code == 2, err
    assert str(src) in err and err.count("\n") == 1, err
    assert not out.exists() and not list(out.parent.glob(f".{out.name}*")), "a partial output was left"
    return err


def test_another_architecture_is_refused_with_what_the_file_holds(sources, tmp_path, capsys):
    src, _ = sources("plain", "spec_vit_s")
    err = _refused(capsys, src, tmp_path / "e.pt", "--model", "spec_resnet50")
    assert "'resnet.layer1.0.conv1.weight'" in err and "Spec. ViT 384 wide" in err and "spec_vit_s" in err
    err = _refused(capsys, src, tmp_path / "e.pt", "--model", "spec_vit_b")
    assert "'vit_core.cls_token' of shape (1, 1, 384)" in err and "(1, 1, 768)" in err


def test_a_lightning_checkpoint_names_its_layout(sources, tmp_path, capsys):
    src, _ = sources("moco", "spec_resnet50")
    err = _refused(capsys, src, tmp_path / "e.pt", "--model", "spec_resnet50", "--layout", "plain")
    assert "backbone.*, backbone_momentum.*, projection_head.*" in err and "try --layout moco" in err
    err = _refused(capsys, src, tmp_path / "e.pt", "--model", "spec_resnet50", "--branch", "teacher")
    assert "query, key" in err


def test_another_band_count_is_refused(sources, tmp_path, capsys):
    _, models = sources("plain", "spec_resnet50")
    ckpt = {
        "state_dict": prefixed("backbone.", models["a"].state_dict()),
        "hyper_parameters": {"num_bands": 224},
    }
    other = tmp_path / "moco224.ckpt"
    torch.save(ckpt, other)
    err = _refused(capsys, other, tmp_path / "e.pt", "--model", "spec_resnet50")
    assert "records 224 bands" in err and "--bands 224" in err


def test_truncated_file_is_refused(sources, tmp_path, capsys):
    src, _ = sources("plain", "spec_vit_s")
    cut = tmp_path / "cut.pth"
    cut.write_bytes(src.read_bytes()[: src.stat().st_size // 2])
    err = _refused(capsys, cut, tmp_path / "e.pt", "--model", "spec_vit_s")
    assert "truncated" in err and "download it again" in err


@pytest.mark.parametrize(
    "content, words",
    [
        ([1, 2, 3], "holds a list, not a state dict"),
        (torch.zeros(3), "holds a tensor of shape (3,), not a state dict"),
        ({"lr": 0.1, "epochs": 3}, "entry 'lr' is a float, not a tensor"),
        ({"state_dict": {"model.net.weight": torch.zeros(2)}}, "none of the known key prefixes"),
    ],
)
def test_not_a_state_dict_is_refused(tmp_path, capsys, content, words):
    bad = tmp_path / "bad.ckpt"
    torch.save(content, bad)
    err = _refused(capsys, bad, tmp_path / "e.pt", "--model", "spec_resnet50")
    assert words in err, err


class Opaque:
    """A pickled object of a class, which ``weights_only=True`` does not load."""


def test_a_pickle_of_objects_is_not_unpickled_without_trust(tmp_path, capsys):
    bad = tmp_path / "objects.ckpt"
    torch.save({"state_dict": Opaque()}, bad)
    err = _refused(capsys, bad, tmp_path / "e.pt", "--model", "spec_resnet50")
    assert "weights_only=True" in err and "--trust-pickle" in err
    err = _refused(capsys, bad, tmp_path / "e.pt", "--model", "spec_resnet50", "--trust-pickle")
    assert "not a state dict" in err


def test_a_failed_import_keeps_an_earlier_output(sources, tmp_path, capsys):
    src, _ = sources("plain", "spec_vit_s")
    out = tmp_path / "encoder.pt"
    assert cli(["import-checkpoint", str(src), "--model", "spec_vit_s", "--out", str(out)]) == 0
    before = out.read_bytes()
    assert cli(["import-checkpoint", str(src), "--model", "spec_resnet50", "--out", str(out)]) == 2
    assert out.read_bytes() == before


def test_load_encoder_names_a_file_that_is_no_encoder(sources, tmp_path):
    src, _ = sources("plain", "spec_vit_s")
    with pytest.raises(EncoderFileError, match=rf"{src}: not an encoder.pt .*import-checkpoint"):
        load_encoder(src)
    cut = tmp_path / "cut.pt"
    cut.write_bytes(b"\x00" * 10)
    with pytest.raises(EncoderFileError, match=rf"{cut}: not a readable encoder.pt"):
        load_encoder(cut)


def test_benchmark_any_encoder_with_the_published_statistics(labelled, tmp_path):  # noqa: F811
    """An imported encoder (here: the fixture's tiny encoder, exported as a published backbone) is
    benchmarked with the published per-band statistics by default, its file's SHA-256 in every
    row and no release to match; ``normalisation: release`` is the other choice, recorded too."""
    layout, pretrained = labelled
    state = torch.load(pretrained, weights_only=True)
    released = tmp_path / "backbone.pth"
    torch.save(dict(state["state_dict"]), released)
    imported = tmp_path / "imported.pt"
    import_checkpoint(
        released, imported, state["model"], model_args=state["model_args"], bands=state["bands"]
    )
    sha = checkpoints.sha256(imported)
    for choice, used in ((None, "published"), ("release", "release")):
        cfg = dataclasses.replace(
            _cfg(layout, imported, tmp_path, normalisation=choice), protocols=["frozen"]
        )
        rows = run_benchmark(cfg, Reporter())
        assert [r["normalisation"] for r in rows] == [used, used]
        assert all(r["encoder_sha256"] == sha and r["encoder"] == "spec_vit (imported)" for r in rows)
        assert not any("release" in r["note"] for r in rows), "an imported encoder has no release to match"


def test_published_statistics_are_matched_by_wavelength(released, tmp_path):
    """The release's bands get the published mean and std of the same wavelength; a release with a
    band the published table lacks keeps its own statistics and says why."""
    release = resolve_release(released.releases, "latest")
    own = BandStatistics.of_release(release)
    chosen = normalisation_for("published", release, "enmap_nlcd")
    wavelengths, mean, std = published_table()
    index = [int(abs(wavelengths - w).argmin()) for w in own.wavelength_nm]
    assert chosen.used == "published" and not chosen.why
    np.testing.assert_array_equal(chosen.stats.mean, mean[index])
    np.testing.assert_array_equal(chosen.stats.std, std[index])
    assert not np.allclose(chosen.stats.mean, own.mean)
    shifted = tmp_path / "shifted"
    shifted.mkdir()
    table = pd.read_csv(release / STATISTICS)
    table.loc[3, "wavelength_nm"] += 2.0
    table.to_csv(shifted / STATISTICS, index=False)
    other = normalisation_for("published", shifted, "desis_cdl")
    assert other.used == "release" and "not all among the 202 published SpectralEarth bands" in other.why
    np.testing.assert_array_equal(other.stats.mean, table["mean"].to_numpy(np.float32))
    with pytest.raises(LookupError, match="normalisation 'paper'"):
        normalisation_for("paper", release, "enmap_nlcd")


def test_benchmark_job_takes_any_encoder(labelled, tmp_path):  # noqa: F811
    """``benchmark_results`` with ``encoder:`` runs that file (no pretrained_encoder needed) and
    records its SHA-256; a path that is no file fails the step naming it."""
    from dagster import DagsterInstance, materialize

    from assets.training.defs import benchmark_results
    from tests.training.test_training_assets import _resources

    layout, pretrained = labelled
    instance = DagsterInstance.ephemeral()
    settings = {"datasets": ["enmap_corine"], "epochs": 1, "batch_size": 2, "encoder": str(pretrained)}
    result = materialize(
        [benchmark_results],
        instance=instance,
        resources=_resources(layout),
        run_config={"ops": {"benchmark_results": {"config": settings}}},
    )
    assert result.success
    (event,) = result.asset_materializations_for_node("benchmark_results")
    assert event.metadata["encoder_sha256"].value == checkpoints.sha256(pretrained)
    missing = str(tmp_path / "nowhere.pt")
    result = materialize(
        [benchmark_results],
        instance=instance,
        resources=_resources(layout),
        run_config={"ops": {"benchmark_results": {"config": {**settings, "encoder": missing}}}},
        raise_on_error=False,
    )
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    assert f"encoder {missing}: no such file" in failure.step_failure_data.error.message


def test_the_benchmark_refuses_a_file_that_is_no_encoder(sources, tmp_path, capsys):
    """A published file given to the benchmark unconverted: exit 2, the file and the fix named."""
    from training.benchmark import main as benchmark

    src, _ = sources("plain", "spec_vit_s")
    config = tmp_path / "bench.yaml"
    config.write_text(f"encoder: {src}\ndata_root: {tmp_path}\nout_dir: {tmp_path / 'out'}\n")
    assert benchmark(["--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert f"{src}: not an encoder.pt" in err and "spectralforge import-checkpoint" in err
    assert not (tmp_path / "out").exists()
