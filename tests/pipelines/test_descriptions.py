"""Every description the UI shows renders as written: the UI reads descriptions as Markdown, where
a ``<placeholder>`` outside backticks is an HTML tag and vanishes (``releases/<dataset>/`` showed
as ``releases//``)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from pipelines.definitions import defs

CODE_SPAN = re.compile(r"(`+).*?\1", re.DOTALL)
"""A Markdown code span: opened and closed by the same number of backticks (``a`` or `a`)."""
PLACEHOLDER = re.compile(r"<[^<>\s][^<>]*>")


def outside_backticks(text: str) -> list[str]:
    """``<...>`` that Markdown would take for a tag: any outside a code span."""
    return PLACEHOLDER.findall(CODE_SPAN.sub("", text))


def _config_descriptions(config_type, path: str) -> Iterator[tuple[str, str]]:
    for name, field in (getattr(config_type, "fields", None) or {}).items():
        if field.description:
            yield f"{path}.{name}", field.description
        yield from _config_descriptions(field.config_type, f"{path}.{name}")


def descriptions() -> Iterator[tuple[str, str]]:
    """(what, description) of every asset, check, job, sensor, schedule and config field."""
    repository = defs.get_repository_def()
    for spec in defs.resolve_all_asset_specs():
        yield f"asset {spec.key.to_user_string()}", spec.description or ""
    for checks in repository.asset_checks_defs_by_key.values():
        for spec in checks.check_specs:
            yield f"check {spec.key.name} of {spec.asset_key.to_user_string()}", spec.description or ""
    for job in repository.get_all_jobs():
        yield f"job {job.name}", job.description or ""
        yield from _config_descriptions(job.run_config_schema.config_type, f"config of {job.name}")
    for sensor in repository.sensor_defs:
        yield f"sensor {sensor.name}", sensor.description or ""
    for schedule in repository.schedule_defs:
        yield f"schedule {schedule.name}", schedule.description or ""


def test_the_walk_finds_every_kind_of_description():
    found = [what.split()[0] for what, text in descriptions() if text]
    assert {"asset", "check", "job", "sensor", "schedule", "config"} <= set(found)
    assert any(what.endswith(".recreate") for what, _ in descriptions()), "config fields of assets"


@pytest.mark.parametrize(
    ("text", "eaten"),
    [
        ("releases/<dataset>/<version>/", ["<dataset>", "<version>"]),
        ("`releases/<dataset>/<version>/`", []),
        ("a <b>c</b> and `<d>`", ["<b>", "</b>"]),
        ("``<root>/archive`` and ``<root>/x``", []),
        ("x < 3 and y > 2", []),
    ],
)
def test_placeholders_outside_backticks_are_found(text, eaten):
    assert outside_backticks(text) == eaten


def test_no_description_loses_a_placeholder():
    lost = {what: outside_backticks(text) for what, text in descriptions() if outside_backticks(text)}
    assert not lost, "\n".join(f"{what}: {found}" for what, found in sorted(lost.items()))
