"""The UI's Resources page shows the folders in use: the code location's resources carry the data
root, the archives and the label sources resolved from the environment as config values."""

from __future__ import annotations

import json

from dagster import Definitions
from dagster._core.remote_representation.external_data import RepositorySnap

from pipelines.resources import resources_for


def _configured_values(env: dict[str, str]) -> dict[str, dict[str, str]]:
    """What the UI reads: the repository snapshot's configured values per resource."""
    repo = Definitions(resources=resources_for("local", env=env)).get_repository_def()
    snap = RepositorySnap.from_def(repo)
    return {r.name: {k: json.loads(v) for k, v in r.configured_values.items()} for r in snap.resources}


def test_resources_show_the_paths_resolved_from_the_environment(tmp_path):
    root = tmp_path / "root"
    values = _configured_values(
        {"SPECTRAL_DATA_ROOT": str(root), "DESIS_ARCHIVE": str(tmp_path / "desis_products")}
    )
    assert values["data_root"] == {
        "data_root": str(root),
        "archive": str(root / "archive"),
        "desis_archive": str(tmp_path / "desis_products"),
    }
    assert values["label_sources"] == {"path": str(root / "label_sources")}


def test_explicit_archive_and_label_sources_win_and_relative_paths_become_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    values = _configured_values(
        {"SPECTRAL_DATA_ROOT": "data", "ENMAP_ARCHIVE": "/mnt/enmap", "SPECTRAL_LABEL_SOURCES": "labels"}
    )
    assert values["data_root"]["data_root"] == str(tmp_path / "data")
    assert values["data_root"]["archive"] == "/mnt/enmap"
    assert values["data_root"]["desis_archive"] == str(tmp_path / "data" / "archive_desis")
    assert values["label_sources"] == {"path": str(tmp_path / "labels")}


def test_the_resources_resolve_the_same_files_as_the_environment(tmp_path):
    env = {"SPECTRAL_DATA_ROOT": str(tmp_path / "root"), "ENMAP_ARCHIVE": str(tmp_path / "products")}
    resources = resources_for("local", env=env)
    layout = resources["data_root"].layout()
    assert (layout.root, layout.archive) == (tmp_path / "root", tmp_path / "products")
    assert resources["label_sources"].root(layout) == tmp_path / "root" / "label_sources"
