"""What the UI shows about every asset: column schemas from the contracts, owners and tags, links to
source, code versions, pools, freshness policies, small figures, and no warnings on loading.

Read from the code location's own asset graph (``defs.resolve_asset_graph()``), which is what the
UI's GraphQL serves.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from dagster import AssetKey, AssetsDefinition, DagsterEventType, DagsterInstance, materialize
from dagster._serdes import serialize_value

from assets.geometry.plan_report import markdown_table
from assets.resources import DASK_POOL, DataRoot
from assets.versions import source_version, table_digest
from pipelines.asset_attributes import deadline_cron
from pipelines.definitions import ASSETS, defs
from pipelines.schedules import nightly_catalog_schedule
from storage_schemas.catalog import QUARANTINE_SCHEMA, TILE_COLUMNS
from storage_schemas.label_dataset import SAMPLE_COORDS
from storage_schemas.label_products import LABEL_PRODUCTS
from storage_schemas.plan import INTERSECTION_COLUMNS, LOCATION_COLUMNS, OVERLAP_EDGE_SCHEMA, PATCH_SCHEMA
from storage_schemas.release import PATCH_INDEX_SCHEMA
from tests.labels.conftest import released, released_template  # noqa: F401  (session fixtures)
from tests.patches.conftest import planned_template  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]
GRAPH = defs.resolve_asset_graph()
KEYS = sorted(GRAPH.get_all_asset_keys(), key=lambda k: k.to_user_string())
STAGES = {"archive", "geometry", "patches", "release", "labels", "training"}
SENSORS = {"enmap", "desis", "none"}
MAX_EVENT_BYTES = 100_000


def _node(key: str):
    return GRAPH.get(AssetKey.from_user_string(key))


def _columns(key: str, table: str = "") -> list[str]:
    schema = _node(key).metadata[f"{table}_column_schema" if table else "dagster/column_schema"].value
    return [c.name for c in schema.columns]


@pytest.mark.parametrize("prefix", ["", "desis/"])
def test_every_table_shows_the_columns_its_contract_declares(prefix):
    expected = {
        ("tile_catalog", ""): TILE_COLUMNS,
        ("tile_catalog", "quarantine"): QUARANTINE_SCHEMA.names,
        ("tile_overlap_graph", ""): OVERLAP_EDGE_SCHEMA.names,
        ("temporal_intersections", ""): INTERSECTION_COLUMNS,
        ("patch_plan", ""): LOCATION_COLUMNS,
        ("patch_plan", "patches"): PATCH_SCHEMA.names,
        ("spectral_earth" if not prefix else "release", ""): PATCH_INDEX_SCHEMA.names,
    }
    for (name, table), columns in expected.items():
        assert _columns(prefix + name, table) == list(columns), (prefix + name, table)
    schema = _node(f"{prefix}tile_catalog").metadata["dagster/column_schema"].value
    tiles = {c.name: c for c in schema.columns}
    assert not tiles["tile_id"].constraints.nullable and tiles["cloud_cover"].constraints.nullable
    assert tiles["acquired"].type == "timestamp[us, tz=UTC]" and "EPSG:4326" in tiles["geometry"].description


def test_every_label_dataset_shows_its_sample_table():
    for name in LABEL_PRODUCTS:
        assert _columns(name) == list(SAMPLE_COORDS)


def test_every_asset_has_owners_a_stage_and_a_sensor():
    for key in KEYS:
        node = GRAPH.get(key)
        assert node.owners, key
        assert node.tags["stage"] in STAGES and node.tags["sensor"] in SENSORS, (key, node.tags)
    tags = {k: (_node(k).tags["stage"], _node(k).tags["sensor"]) for k in ("spectral_earth", "desis/release")}
    assert tags == {"spectral_earth": ("release", "enmap"), "desis/release": ("release", "desis")}
    assert _node("desis_cdl").tags["sensor"] == "desis" and _node("enmap_corine").tags["sensor"] == "enmap"
    assert _node("label_sources/cdl").tags == {**_node("label_sources/cdl").tags, "stage": "labels"}
    assert _node("pretrained_encoder").owners == ["team:ml"]
    assert _node("tile_catalog").owners == ["team:curation"]


def test_every_computed_asset_links_to_the_function_that_computes_it():
    for key in KEYS:
        node = GRAPH.get(key)
        if not node.is_executable:  # the archives: written by DLR, no code of ours
            continue
        (reference,) = node.metadata["dagster/code_references"].code_references
        path = Path(reference.file_path)
        assert path.is_relative_to(ROOT) and path.is_file(), (key, path)
        line = path.read_text().splitlines()[reference.line_number - 1].lstrip()
        assert line.startswith(("def ", "@")), (key, line)  # the function, or its decorator


def test_every_materialised_asset_has_the_code_version_of_its_stage():
    for key in KEYS:
        node = GRAPH.get(key)
        if node.is_materializable:
            assert node.code_version, key
    by_stage = {}
    for key in KEYS:
        node = GRAPH.get(key)
        if node.is_materializable and node.tags["stage"] != "release":
            by_stage.setdefault(node.tags["stage"], set()).add(node.code_version)
    assert all(len(versions) == 1 for versions in by_stage.values()), by_stage
    assert len({v for versions in by_stage.values() for v in versions}) == len(by_stage)


def test_a_stage_code_version_follows_its_source_files(tmp_path):
    (tmp_path / "part").mkdir()
    (tmp_path / "step.py").write_text("x = 1\n")
    (tmp_path / "part" / "writer.py").write_text("y = 1\n")
    before = source_version(tmp_path)
    assert source_version(tmp_path) == before, "the same files, the same version"
    (tmp_path / "part" / "writer.py").write_text("y = 2\n")
    changed = source_version(tmp_path)
    assert changed != before
    (tmp_path / "step.py").write_text("x = 2\n")
    assert source_version(tmp_path) not in (before, changed)


def test_a_table_digest_sees_values_not_layout():
    table = pa.table({"id": pa.array(["a", "b"]), "n": [1, 2], "at": [10, 20]})
    digest = table_digest(table, ignore=["at"])
    large = table.cast(pa.schema([("id", pa.large_string()), ("n", pa.int64()), ("at", pa.int64())]))
    assert table_digest(large.replace_schema_metadata({"pandas": "{}"}), ignore=["at"]) == digest
    assert table_digest(table.set_column(2, "at", pa.array([11, 21])), ignore=["at"]) == digest
    assert table_digest(table.set_column(1, "n", pa.array([1, 3])), ignore=["at"]) != digest


def test_every_asset_on_the_dask_cluster_is_in_the_dask_pool():
    for assets_def in (a for a in ASSETS if isinstance(a, AssetsDefinition)):
        for key in assets_def.keys:
            uses_dask = "dask" in assets_def.required_resource_keys
            assert (DASK_POOL in GRAPH.get(key).pools) == uses_dask, key


def test_the_enmap_catalog_is_expected_nightly_and_the_release_within_a_week():
    catalog = _node("tile_catalog").freshness_policy
    assert catalog.deadline_cron == "0 4 * * *" and nightly_catalog_schedule.cron_schedule == "0 2 * * *"
    assert catalog.lower_bound_delta == timedelta(hours=2) and catalog.timezone == "UTC"
    release = _node("spectral_earth").freshness_policy
    assert (release.warn_window.to_timedelta(), release.fail_window.to_timedelta()) == (
        timedelta(days=3),
        timedelta(days=7),
    )
    with_policy = {k.to_user_string() for k in KEYS if GRAPH.get(k).freshness_policy is not None}
    assert with_policy == {"tile_catalog", "spectral_earth"}  # DESIS's schedule is off by default
    assert deadline_cron("30 23 * * *", timedelta(hours=2)) == "30 1 * * *"
    with pytest.raises(ValueError, match="only daily"):
        deadline_cron("0 2 * * 1", timedelta(hours=2))


def test_a_markdown_table_formats_numbers_and_keeps_text():
    numbers = markdown_table({2: 1234567, 3: 5}, ("order", "tuples"))
    assert numbers.splitlines() == ["| order | tuples |", "|---:|---:|", "| 2 | 1,234,567 |", "| 3 | 5 |"]
    text = markdown_table({"cdl/2022_30m_cdls.tif": "EPSG:5070, 1.2 MB"}, ("file", "CRS, size"))
    assert text.splitlines()[1:] == ["|---|---|", "| cdl/2022_30m_cdls.tif | EPSG:5070, 1.2 MB |"]


def test_the_release_links_its_figures_and_shows_one_small_thumbnail(released):  # noqa: F811
    (release,) = [
        a for a in ASSETS if isinstance(a, AssetsDefinition) and a.key == AssetKey("spectral_earth")
    ]
    result = materialize(
        [release],
        instance=DagsterInstance.ephemeral(),
        resources={"data_root": DataRoot(data_root=str(released.root), archive=str(released.archive))},
    )
    assert result.success
    (event,) = [e for e in result.all_events if e.event_type == DagsterEventType.ASSET_MATERIALIZATION]
    metadata = event.event_specific_data.materialization.metadata
    for name in ("coverage_map", "timestamps_per_location", "patches_per_month", "pca_mosaic"):
        assert Path(metadata[name].value).read_bytes().startswith(b"\x89PNG"), name
    assert sum("base64" in str(v.value) for v in metadata.values()) == 1
    assert "data:image/png;base64," in metadata["thumbnail"].value
    assert len(serialize_value(event)) < MAX_EVENT_BYTES


def test_loading_the_code_location_prints_no_warnings(tmp_path):
    """What every CLI command prints when it loads the code location; ``definitions validate``
    itself is superseded by ``dg check defs`` and says so, about itself, before loading anything."""
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path)}  # an instance of its own, whatever make exports

    def dagster(*args: str) -> subprocess.CompletedProcess:
        command = [str(Path(sys.executable).parent / "dagster"), *args, "-m", "pipelines.definitions"]
        return subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env)

    listed = dagster("asset", "list")
    assert listed.returncode == 0 and "tile_catalog" in listed.stdout
    assert "Warning" not in listed.stderr + listed.stdout
    validated = dagster("definitions", "validate")
    assert validated.returncode == 0
    warnings = [line for line in validated.stderr.splitlines() if "Warning" in line]
    assert all("definitions_validate_command" in line for line in warnings), warnings
