"""A training run killed after its first epoch's checkpoint is retried the way the run-retry
daemon retries it (``pretrain_job`` asks for it by its tags): a re-execution of the failed run from
failure (``ReexecutionOptions.from_failure`` through ``execute_job`` of the reconstructable job,
with the failed run's config). The retry lands in the same run folder (a hash of the settings),
resumes from ``checkpoint-last.pt`` after epoch 0 and finishes with every epoch in the history."""

from __future__ import annotations

import sys
from pathlib import Path

from dagster import (
    AssetKey,
    DagsterEventType,
    Definitions,
    PipesSubprocessClient,
    ReexecutionOptions,
    execute_job,
    in_process_executor,
    instance_for_test,
    reconstructable,
)

from assets.launchers import TrainingLauncher
from assets.resources import DataRoot
from assets.training.defs import pretrained_encoder
from pipelines.jobs import pretrain_job
from tests.training.test_pretrain import TINY
from training.checkpoints import LAST, load

EPOCHS = 2


class KilledOnceLauncher(TrainingLauncher):
    """The local launcher with the entry point run by ``tests.training.pretrain_killed_once``: the
    first attempt in a run folder dies right after its first checkpoint, the retry runs as is."""

    def run(self, context, entry, config_file):
        command = [sys.executable, "-m", "tests.training.pretrain_killed_once", "--config", str(config_file)]
        return PipesSubprocessClient().run(command=command, context=context)


def pretrain_job_killed_once():
    """``pretrain_job`` (with its retry tags) on the data root of ``SPECTRAL_DATA_ROOT``, run in
    process: the job the daemon's retry launches, with the test's launcher."""
    defs = Definitions(
        assets=[pretrained_encoder],
        jobs=[pretrain_job],
        resources={"data_root": DataRoot(), "launcher": KilledOnceLauncher()},
        executor=in_process_executor,
    )
    return defs.resolve_job_def("pretrain_job")


def test_a_killed_training_run_retried_from_failure_resumes_from_its_checkpoint(
    released, tmp_path, monkeypatch
):
    monkeypatch.setenv("SPECTRAL_DATA_ROOT", str(released.root))
    job = reconstructable(pretrain_job_killed_once)
    run_config = {"ops": {"pretrained_encoder": {"config": {**TINY, "epochs": EPOCHS}}}}
    with instance_for_test() as instance:
        with execute_job(job, instance, run_config=run_config) as first:
            assert not first.success
            failed = instance.get_run_by_id(first.run_id)
        assert failed.tags["dagster/max_retries"] == "1"
        assert failed.tags["dagster/retry_strategy"] == "FROM_FAILURE"
        (folder,) = (released.root / "runs" / "pretrain").iterdir()
        assert load(folder / LAST)["epoch"] == 0, "killed after the first epoch's checkpoint"

        retry_tags = {**failed.tags, "dagster/retry_number": "1"}
        options = ReexecutionOptions.from_failure(failed.run_id, instance)
        with execute_job(
            job, instance, run_config=failed.run_config, tags=retry_tags, reexecution_options=options
        ) as retry:
            assert retry.success
            retried = instance.get_run_by_id(retry.run_id)
        assert retried.parent_run_id == failed.run_id
        messages = [entry.user_message for entry in instance.all_logs(retry.run_id)]
        assert any("resuming from" in m and f"{folder / LAST} after epoch 0" in m for m in messages), messages
        starts = instance.all_logs(retry.run_id, of_type=DagsterEventType.STEP_START)
        assert [e.step_key for e in starts] == ["pretrained_encoder"]
        event = instance.get_latest_materialization_event(AssetKey("pretrained_encoder"))
        assert event.run_id == retry.run_id
        assert event.asset_materialization.metadata["epochs"].value == EPOCHS
    checkpoint = Path(event.asset_materialization.metadata["checkpoint"].value)
    assert checkpoint.parent == folder, "the retry trained in the killed run's folder"
    encoder = load(checkpoint)
    assert [row["epoch"] for row in encoder["history"]] == list(range(EPOCHS))
