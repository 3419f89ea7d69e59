"""Alerts that reach a person: a JSON POST to the webhook in ``SPECTRALFORGE_ALERT_WEBHOOK``.

The body carries the alert as data (``kind``, ``summary``, ``details``, ``sent_at``) for whatever
receives it, and a ``text`` field written out for people, which is what a Slack or Microsoft Teams
incoming webhook shows. ``post_alert`` never raises: a webhook that is down must not fail the run,
sensor or schedule that wanted to report something (it is logged and the call returns False).

``run_failure_alert`` is the code location's run-failure sensor: every failed run of one of its jobs
is posted with its failed steps and their errors, its partition or partition range, what launched
it, whether the daemon retries it, and a link to the run in the UI (``SPECTRALFORGE_UI_URL``).
"""

from __future__ import annotations

import json
import logging
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from http.client import HTTPException
from typing import TYPE_CHECKING, Any

from dagster import (
    DagsterEvent,
    DagsterRun,
    DefaultSensorStatus,
    RunFailureSensorContext,
    run_failure_sensor,
)

if TYPE_CHECKING:
    from dagster._utils.error import SerializableErrorInfo

WEBHOOK_ENV = "SPECTRALFORGE_ALERT_WEBHOOK"
UI_URL_ENV = "SPECTRALFORGE_UI_URL"
DEFAULT_UI_URL = "http://127.0.0.1:3000"
TIMEOUT_S = 5.0
"""A webhook that does not answer within this is given up on: alerting must not hold a sensor tick."""
MAX_ERROR_CHARS = 1500
"""Per step: enough for the error and its cause; Slack cuts a message's text at 40,000 characters."""

#: run tags worth a line in an alert, with the label they get there
REPORTED_TAGS = {
    "dagster/partition": "partition",
    "dagster/backfill": "backfill",
    "dagster/sensor_name": "sensor",
    "dagster/schedule_name": "schedule",
    "dagster/retry_number": "retry_number",
    "dagster/will_retry": "will_retry",
}
RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"

_QUALIFIED_CLASS = re.compile(r"^[A-Za-z_][\w]*(?:\.[A-Za-z_]\w*)*\.([A-Za-z_]\w*): ")
"""``dagster._core.definitions.events.Failure: ...`` reads ``Failure: ...`` in an alert."""

log = logging.getLogger("spectralforge.alerts")


def alert_body(summary: str, details: Mapping[str, Any], kind: str, now: datetime | None = None) -> dict:
    """The JSON an alert is posted as: the data, and a ``text`` for chat webhooks (Slack, Teams)."""
    lines = [f"*[SpectralForge {kind}]* {summary}"]
    for key, value in details.items():
        if isinstance(value, list):
            lines.append(f"{key}:")
            lines.extend(f"  - {_one_line(item)}" for item in value)
        else:
            lines.append(f"{key}: {value}")
    return {
        "source": "spectralforge",
        "kind": kind,
        "summary": summary,
        "details": dict(details),
        "sent_at": (now or datetime.now(UTC)).isoformat(timespec="seconds"),
        "text": "\n".join(lines),
    }


def _one_line(item: Any) -> str:
    if isinstance(item, Mapping):
        return "; ".join(f"{k}: {v}" for k, v in item.items())
    return str(item)


def post_alert(
    summary: str, details: Mapping[str, Any], *, kind: str, env: Mapping[str, str] = os.environ
) -> bool:
    """POST the alert to ``SPECTRALFORGE_ALERT_WEBHOOK``; True when the webhook took it (2xx).

    No webhook set: nothing is sent (False). A webhook that refuses, fails or does not answer within
    ``TIMEOUT_S`` is logged as a warning with the alert's summary (False); this never raises."""
    url = env.get(WEBHOOK_ENV, "").strip()
    if not url:
        return False
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        log.warning("%s is not an http(s) URL; alert not sent: %s", WEBHOOK_ENV, summary)
        return False
    body = json.dumps(alert_body(summary, details, kind), default=str).encode()
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "spectralforge-alerts"},
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            status = response.status
    except (urllib.error.URLError, HTTPException, OSError, ValueError) as exc:
        log.warning("alert webhook failed (%s); alert not delivered: %s", exc, summary)
        return False
    if not 200 <= status < 300:
        log.warning("alert webhook answered HTTP %s; alert not delivered: %s", status, summary)
        return False
    return True


def ui_url(env: Mapping[str, str] = os.environ) -> str:
    """Where the Dagster UI is, for links in alerts."""
    return (env.get(UI_URL_ENV) or DEFAULT_UI_URL).rstrip("/")


def error_text(error: SerializableErrorInfo | None) -> str:
    """An error's message and the messages of its causes, without stack traces (those are one click
    away in the UI), cut at ``MAX_ERROR_CHARS``."""
    parts = []
    while error is not None:
        message = _QUALIFIED_CLASS.sub(r"\1: ", error.message.strip())
        if message and message not in parts:
            parts.append(message)
        error = error.cause
    text = " <- caused by: ".join(parts) or "no error message"
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 3] + "..."


def run_failure_report(
    run: DagsterRun,
    step_failures: Sequence[DagsterEvent],
    failure: DagsterEvent | None,
    base_url: str,
) -> tuple[str, dict[str, Any]]:
    """The summary and details of a failed run: its steps' errors (or the run's own failure when no
    step failed, such as a run worker that died), partitions, what launched it, retries, a link."""
    steps = [
        {"step": event.step_key, "error": error_text(getattr(event.event_specific_data, "error", None))}
        for event in step_failures
    ]
    details: dict[str, Any] = {
        "run_id": run.run_id,
        "job": run.job_name,
        "url": f"{base_url}/runs/{run.run_id}",
    }
    if steps:
        details["failed_steps"] = steps
    elif failure is not None:
        error = getattr(failure.event_specific_data, "error", None)
        details["error"] = error_text(error) if error is not None else (failure.message or "run failed")
    tags = run.tags
    if RANGE_START in tags:
        details["partition_range"] = f"{tags[RANGE_START]}...{tags.get(RANGE_END, tags[RANGE_START])}"
    details.update({label: tags[tag] for tag, label in REPORTED_TAGS.items() if tag in tags})
    what = ", ".join(s["step"] for s in steps) if steps else "the run itself"
    retry = " (the daemon retries it)" if tags.get("dagster/will_retry") == "true" else ""
    return f"run {run.run_id[:8]} of {run.job_name} failed in {what}{retry}", details


@run_failure_sensor(
    name="run_failure_alert",
    default_status=DefaultSensorStatus.RUNNING,
    description=f"Posts every failed run of this code location (failed steps and their errors, partitions, "
    f"retries, a link to the run) to the webhook in `{WEBHOOK_ENV}`; without it, only logs.",
)
def run_failure_alert(context: RunFailureSensorContext) -> None:
    summary, details = run_failure_report(
        context.dagster_run, context.get_step_failure_events(), context.failure_event, ui_url()
    )
    if post_alert(summary, details, kind="run_failure"):
        context.log.info(f"alert sent: {summary}")
    elif os.environ.get(WEBHOOK_ENV):
        context.log.warning(f"alert NOT delivered (see the code location's log): {summary}")
    else:
        context.log.info(f"{WEBHOOK_ENV} is not set; not sent: {summary}")


ALERT_SENSORS = [run_failure_alert]
"""The alerting sensors of the code location (``pipelines.definitions``)."""
