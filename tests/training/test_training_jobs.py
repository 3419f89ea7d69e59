"""The documented commands, as a researcher runs them: ``dagster job execute`` of pretrain_job,
then of benchmark_job, on one instance; the benchmark uses the encoder that the first recorded.
Every run config under ``deploy/run_configs`` is valid for its job."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.training.test_benchmark import labelled  # noqa: F401  (the fixture)
from training.checkpoints import ENCODER, sha256

RUN_CONFIGS = Path(__file__).parents[2] / "deploy" / "run_configs"


def _execute(job: str, config: dict, env: dict, tmp_path: Path) -> subprocess.CompletedProcess:
    path = tmp_path / f"{job}.yaml"
    path.write_text(yaml.safe_dump(config))
    dagster = str(Path(sys.executable).with_name("dagster"))
    command = [dagster, "job", "execute", "-m", "pipelines.definitions", "-j", job, "-c", str(path)]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)


def test_pretrain_then_benchmark_through_dagster_job_execute(labelled, tmp_path):  # noqa: F811
    layout, _ = labelled
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry: {enabled: false}\n")
    env = {**os.environ, "SPECTRAL_DATA_ROOT": str(layout.root), "DAGSTER_HOME": str(home)}
    pretrain = yaml.safe_load((RUN_CONFIGS / "pretrain_smoke.yaml").read_text())
    pretrain["ops"]["pretrained_encoder"]["config"].update(epochs=1, batch_size=2, image_px=16)
    done = _execute("pretrain_job", pretrain, env, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    bench = yaml.safe_load((RUN_CONFIGS / "benchmark_smoke.yaml").read_text())
    bench["ops"]["benchmark_results"]["config"].update(
        datasets=["enmap_corine", "enmap_nlcd"], epochs=1, batch_size=2
    )
    done = _execute("benchmark_job", bench, env, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    (encoder,) = (layout.root / "runs" / "pretrain").glob(f"*/{ENCODER}")
    (results,) = (layout.root / "runs" / "benchmark").glob("*/results.csv")
    with open(results) as f:
        rows = list(csv.DictReader(f))
    assert [(r["dataset"], r["protocol"]) for r in rows] == [
        ("enmap_corine", "frozen"),
        ("enmap_nlcd", "frozen"),
    ]
    assert {r["encoder_sha256"] for r in rows} == {sha256(encoder)}


@pytest.mark.parametrize("path", sorted(RUN_CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_every_run_config_is_valid_for_its_job_and_names_what_exists(path):
    """Each file in ``deploy/run_configs`` passes its job's config schema, and what it names
    exists: the pretraining model and method (built, with their arguments, at 8 bands) or the
    benchmark's datasets and protocols."""
    from dagster import validate_run_config

    from pipelines.definitions import defs
    from storage_schemas.label_products import LABEL_PRODUCTS
    from training.models.registry import build_encoder
    from training.protocols import PROTOCOLS
    from training.recipes import recipe

    config = yaml.safe_load(path.read_text())
    job = "pretrain_job" if path.name.startswith("pretrain") else "benchmark_job"
    validate_run_config(defs.resolve_job_def(job), config)
    if job == "pretrain_job":
        op = config["ops"]["pretrained_encoder"]["config"]
        encoder = build_encoder(op["model"], 8, **op.get("model_args", {}))
        assert recipe(op["method"]).build(encoder, **op.get("method_args", {})) is not None
    else:
        op = config["ops"]["benchmark_results"]["config"]
        assert set(op["datasets"]) <= set(LABEL_PRODUCTS) and set(op["protocols"]) <= set(PROTOCOLS)


@pytest.mark.parametrize("job", ["pretrain_job", "benchmark_job"])
def test_a_run_launched_without_a_config_is_the_smoke_run(job):
    """What one click in the UI launches (no run config: the schema's defaults, then the config
    class's own for what the schema leaves out) is the smoke run of deploy/run_configs."""
    from dagster import validate_run_config

    from assets.training.defs import BenchmarkRunConfig, PretrainRunConfig
    from pipelines.definitions import defs

    op, config_class, smoke = {
        "pretrain_job": ("pretrained_encoder", PretrainRunConfig, "pretrain_smoke"),
        "benchmark_job": ("benchmark_results", BenchmarkRunConfig, "benchmark_smoke"),
    }[job]
    resolved = validate_run_config(defs.resolve_job_def(job), {})["ops"][op]["config"]
    launched = config_class(**resolved).model_dump()
    expected = yaml.safe_load((RUN_CONFIGS / f"{smoke}.yaml").read_text())["ops"][op]["config"]
    assert {key: launched[key] for key in expected} == expected
