"""Alerts reach a webhook: a failed run, evaluated by the run-failure sensor the way the daemon
does, is posted to a real HTTP server with its run id, job, failed step and error text, partition
range and a link to the run; no webhook set is a no-op; a dead or failing webhook never raises."""

from __future__ import annotations

import socket

from dagster import (
    Definitions,
    Failure,
    StaticPartitionsDefinition,
    asset,
    build_run_status_sensor_context,
    define_asset_job,
    instance_for_test,
)

from assets.launchers import TrainingLauncher
from assets.resources import DataRoot
from assets.training.defs import pretrained_encoder
from pipelines.alerts import UI_URL_ENV, WEBHOOK_ENV, alert_body, post_alert, run_failure_alert
from pipelines.jobs import pretrain_job


def _evaluate_sensor_on(result, instance) -> None:
    """The run-failure sensor evaluated on a failed run, as the daemon hands it one."""
    context = build_run_status_sensor_context(
        sensor_name="run_failure_alert",
        dagster_event=result.get_run_failure_event(),
        dagster_instance=instance,
        dagster_run=result.dagster_run,
    )
    run_failure_alert(context)


def test_a_failed_run_reaches_the_webhook_with_its_step_error_and_a_link(webhook, tmp_path, monkeypatch):
    monkeypatch.setenv(WEBHOOK_ENV, webhook.url)
    monkeypatch.setenv(UI_URL_ENV, "http://dagster.example.org/")
    defs = Definitions(
        assets=[pretrained_encoder],
        jobs=[pretrain_job],
        resources={"data_root": DataRoot(data_root=str(tmp_path / "empty")), "launcher": TrainingLauncher()},
    )
    with instance_for_test() as instance:
        result = defs.resolve_job_def("pretrain_job").execute_in_process(
            instance=instance, raise_on_error=False
        )
        assert not result.success
        _evaluate_sensor_on(result, instance)
    ((content_type, body),) = webhook.received
    run_id = result.run_id
    assert content_type == "application/json" and body["kind"] == "run_failure"
    details = body["details"]
    assert details["run_id"] == run_id and details["job"] == "pretrain_job"
    assert details["url"] == f"http://dagster.example.org/runs/{run_id}"
    (step,) = details["failed_steps"]
    assert step["step"] == "pretrained_encoder" and step["error"].startswith("Failure: ")
    assert "no release" in step["error"]
    assert run_id[:8] in body["summary"] and "pretrain_job" in body["summary"]
    assert details["url"] in body["text"] and step["error"] in body["text"], "the chat text says it all"


def test_a_failed_partition_range_is_named_in_the_alert(webhook, monkeypatch):
    monkeypatch.setenv(WEBHOOK_ENV, webhook.url)
    tiles = StaticPartitionsDefinition(["t001", "t002", "t003"])

    @asset(partitions_def=tiles)
    def broken_tiles(context) -> None:
        raise Failure(description=f"tiles {context.partition_key_range.start}..: product truncated")

    job = define_asset_job("broken_tiles_job", selection=[broken_tiles])
    defs = Definitions(assets=[broken_tiles], jobs=[job])
    tags = {"dagster/asset_partition_range_start": "t001", "dagster/asset_partition_range_end": "t003"}
    with instance_for_test() as instance:
        result = defs.resolve_job_def("broken_tiles_job").execute_in_process(
            instance=instance, tags=tags, raise_on_error=False
        )
        _evaluate_sensor_on(result, instance)
    ((_, body),) = webhook.received
    assert body["details"]["partition_range"] == "t001...t003"
    assert "product truncated" in body["details"]["failed_steps"][0]["error"]


def test_no_webhook_set_sends_nothing(webhook):
    assert post_alert("tiles left the archive", {"tiles": ["t1"]}, kind="sensor_warning", env={}) is False
    assert webhook.received == []


def test_a_dead_or_failing_webhook_returns_false_and_never_raises(webhook):
    with socket.socket() as probe:  # a port that nobody listens on once closed
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}/hook"
    assert post_alert("x", {}, kind="test", env={WEBHOOK_ENV: dead}) is False
    assert post_alert("x", {}, kind="test", env={WEBHOOK_ENV: "not a url"}) is False
    webhook.status = 500
    assert post_alert("x", {"n": 1}, kind="test", env={WEBHOOK_ENV: webhook.url}) is False
    assert len(webhook.received) == 1, "the failing webhook was asked once"
    webhook.status = 204
    assert post_alert("x", {"n": 1}, kind="test", env={WEBHOOK_ENV: webhook.url}) is True


def test_the_chat_text_lists_the_details():
    body = alert_body("2 tiles left the archive", {"sensor": "enmap_tiles", "tiles": ["t1", "t2"]}, "warning")
    assert body["text"].splitlines() == [
        "*[SpectralForge warning]* 2 tiles left the archive",
        "sensor: enmap_tiles",
        "tiles:",
        "  - t1",
        "  - t2",
    ]
    assert {"kind", "summary", "details", "sent_at", "text"} <= set(body)
