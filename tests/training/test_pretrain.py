"""The pretraining entry point: a run killed mid-epoch and started again ends with the weights of
an uninterrupted run; a loss that is not finite stops the run and keeps the last good checkpoint;
a release smaller than a batch is refused with what to do; the documented
``dagster job execute`` command pretrains through Pipes; and MoCo, DINO and MAE each train with
their optimiser and learning-rate schedule, the global batch's per-process split logged."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from training.checkpoints import ENCODER, LAST, load, sha256

TINY = {
    "model": "spec_vit",
    "model_args": {"embed_dim": 32, "depth": 1, "num_heads": 2, "mlp_dim": 64},
    "method": "moco",
    "method_args": {"queue_size": 16, "hidden": 32, "dim": 16},
    "batch_size": 2,
    "lr": 0.001,
    "workers": 0,
    "image_px": 16,
    "seed": 7,
}


def _config(tmp_path: Path, layout, name: str, **kw) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(
        yaml.safe_dump({**TINY, "data_root": str(layout.root), "out_dir": str(tmp_path / name), **kw})
    )
    return path


def _run(config: Path, *extra: str, **popen) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "training.pretrain", "--config", str(config), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


def test_a_killed_run_resumes_to_the_weights_of_an_uninterrupted_one(released, tmp_path):
    whole = _run(_config(tmp_path, released, "whole", epochs=4))
    assert whole.wait(timeout=300) == 0, whole.stderr.read()
    broken_cfg = _config(tmp_path, released, "broken", epochs=4)
    broken = _run(broken_cfg, start_new_session=True)
    last = tmp_path / "broken" / LAST
    while not last.exists() and broken.poll() is None:
        time.sleep(0.02)
    os.killpg(broken.pid, signal.SIGKILL)
    broken.wait()
    assert load(last)["epoch"] < 3, "the kill came before the run finished"
    assert not (tmp_path / "broken" / ENCODER).exists()
    again = _run(broken_cfg)
    out, err = again.communicate(timeout=300)
    assert again.returncode == 0, err
    assert "resuming from" in out
    a = load(tmp_path / "whole" / ENCODER)
    b = load(tmp_path / "broken" / ENCODER)
    assert a["history"] == b["history"] or [r["loss"] for r in a["history"]] == [
        r["loss"] for r in b["history"]
    ]
    for key, value in a["state_dict"].items():
        assert torch.equal(value, b["state_dict"][key]), key
    assert a["release"] == b["release"] and len(a["release"]) == 16


def test_a_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(released, tmp_path):
    config = _config(tmp_path, released, "nan", epochs=1)
    first = _run(config)
    assert first.wait(timeout=300) == 0
    kept = sha256(tmp_path / "nan" / LAST)
    blown = _run(config, "--set", "epochs=4", "lr=1.0e+30")
    _, err = blown.communicate(timeout=300)
    assert blown.returncode == 2
    assert "at epoch 1, step" in err and "last good checkpoint" in err and "(after epoch 0)" in err
    assert sha256(tmp_path / "nan" / LAST) == kept


def test_a_release_smaller_than_a_batch_is_refused_with_what_to_do(released, tmp_path):
    run = _run(_config(tmp_path, released, "few", epochs=1, batch_size=64))
    _, err = run.communicate(timeout=300)
    assert run.returncode == 2
    assert "a batch of 64" in err and "lower batch_size" in err


def test_dagster_job_execute_pretrains_through_pipes(released, tmp_path):
    smoke = yaml.safe_load((Path(__file__).parents[2] / "deploy/run_configs/pretrain_smoke.yaml").read_text())
    op = smoke["ops"]["pretrained_encoder"]["config"]
    op.update(epochs=1, batch_size=2, image_px=16)
    config = tmp_path / "smoke.yaml"
    config.write_text(yaml.safe_dump(smoke))
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry: {enabled: false}\n")
    env = {**os.environ, "SPECTRAL_DATA_ROOT": str(released.root), "DAGSTER_HOME": str(home)}
    command = [
        str(Path(sys.executable).with_name("dagster")),
        "job", "execute", "-m", "pipelines.definitions", "-j", "pretrain_job", "-c", str(config),
    ]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    encoders = list((released.root / "runs" / "pretrain").glob(f"*/{ENCODER}"))
    assert len(encoders) == 1
    saved = load(encoders[0])
    assert saved["release"] == (released.releases / "LATEST").read_text().strip()
    assert "ASSET_MATERIALIZATION" in done.stdout + done.stderr


def test_progressive_pretraining_starts_from_another_runs_encoder(released, tmp_path):
    first = _run(_config(tmp_path, released, "first", epochs=1))
    assert first.wait(timeout=300) == 0
    start = tmp_path / "first" / ENCODER
    mae = {"method": "mae", "method_args": {"decoder_dim": 16, "decoder_depth": 1, "decoder_heads": 2}}
    then = _run(_config(tmp_path, released, "then", epochs=0, init_from=str(start), **mae))
    out, err = then.communicate(timeout=300)
    assert then.returncode == 0, err
    assert "progressive" in out
    a, b = load(start)["state_dict"], load(tmp_path / "then" / ENCODER)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a), "the second run starts from the first run's encoder"
    wider = {**TINY["model_args"], "embed_dim": 48}
    other = _run(_config(tmp_path, released, "other", epochs=0, init_from=str(start), model_args=wider))
    _, err = other.communicate(timeout=300)
    assert other.returncode == 2 and f"{start}: an encoder of spec_vit" in err, err[-2000:]


@pytest.mark.parametrize(
    ("method", "extra"),
    [
        ("moco", {"optimizer": "sgd", "schedule": "multistep", "milestones": [1], "lr": 0.01}),
        ("dino", {"method_args": {"out_dim": 16, "hidden": 32, "bottleneck": 8}, "warmup_epochs": 1}),
        ("mae", {"method_args": {"decoder_dim": 16, "decoder_depth": 1, "decoder_heads": 2}}),
    ],
)
def test_each_method_trains_with_its_optimiser_and_schedule_and_logs_the_batch_split(
    released, tmp_path, method, extra
):
    run = _run(_config(tmp_path, released, method, epochs=2, method=method, **extra))
    out, err = run.communicate(timeout=300)
    assert run.returncode == 0, err[-3000:]
    assert "global batch 2 = 2 per process x 1 process(es)" in out
    saved = load(tmp_path / method / ENCODER)
    lrs = [row["lr"] for row in saved["history"]]
    assert lrs == pytest.approx(
        {"moco": [0.01, 0.001], "dino": [0.001, 0.001], "mae": [0.001, 0.0005]}[method]
    )
    assert saved["config"]["optimizer"] == extra.get("optimizer", "adamw")
