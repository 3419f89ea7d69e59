"""Staleness that means something: an unchanged nightly re-scan leaves the curation chain fresh, a
new product marks it out of date, and every table the chain writes has the columns the UI shows.

The stale status is read with the resolver the UI's GraphQL asks (``CachingStaleStatusResolver``,
a private Dagster module) over the code location's own asset graph, so the code versions, data
versions and lineage are exactly those the UI sees.
"""

from __future__ import annotations

import pyarrow.parquet as pq
from dagster import AssetKey, AssetsDefinition, DagsterInstance, materialize
from dagster._core.asset_graph_view.asset_graph_view import AssetGraphView, TemporalContext
from dagster._core.definitions.data_version import (
    DATA_VERSION_TAG,
    CachingStaleStatusResolver,
    StaleStatus,
)
from dagster._time import get_current_datetime

from pipelines.definitions import ASSETS, defs
from storage_schemas.paths import DataLayout
from tests.patches.conftest import resources
from tests.pipelines.conftest import deliver

CURATION = [
    AssetKey(k) for k in ("tile_catalog", "tile_overlap_graph", "temporal_intersections", "patch_plan")
] + [AssetKey("patch_store")]
"""``catalog_job``'s assets: scan, graph, Algorithm 1, plan, store allocation."""


def _materialise(layout: DataLayout, instance: DagsterInstance, keys: list[AssetKey]) -> None:
    """Materialise ``keys`` as the code location defines them (its code versions and all)."""
    chain = [a for a in ASSETS if isinstance(a, AssetsDefinition) and a.key in CURATION]
    result = materialize(chain, selection=keys, instance=instance, resources=resources(layout))
    assert result.success


def _data_versions(instance: DagsterInstance) -> dict[AssetKey, str]:
    return {
        key: instance.get_latest_materialization_event(key).asset_materialization.tags[DATA_VERSION_TAG]
        for key in CURATION
    }


def _status(instance: DagsterInstance) -> dict[AssetKey, StaleStatus]:
    """What the UI shows for each curation asset now."""
    graph = defs.resolve_asset_graph()
    view = AssetGraphView(
        temporal_context=TemporalContext(effective_dt=get_current_datetime(), last_event_id=None),
        instance=instance,
        asset_graph=graph,
    )
    resolver = CachingStaleStatusResolver(instance=instance, asset_graph=graph, loading_context=view)
    return {key: resolver.get_status(key) for key in CURATION}


def test_an_unchanged_rescan_keeps_the_chain_fresh_and_a_new_product_makes_it_stale(growing):
    layout, later = growing
    instance = DagsterInstance.ephemeral()
    _materialise(layout, instance, CURATION)
    first = _data_versions(instance)
    assert _status(instance) == dict.fromkeys(CURATION, StaleStatus.FRESH)

    _materialise(layout, instance, CURATION)  # the nightly catalog_job on an unchanged archive
    assert _data_versions(instance) == first
    _materialise(layout, instance, CURATION[:1])  # a catalog-only run from the UI: nothing moves
    assert _data_versions(instance) == first
    assert _status(instance) == dict.fromkeys(CURATION, StaleStatus.FRESH)

    deliver(later, layout.archive)  # new products arrive
    _materialise(layout, instance, CURATION[:1])
    assert _data_versions(instance)[CURATION[0]] != first[CURATION[0]]
    # what reads the catalog is out of date (the graph, Algorithm 1 and the plan read tiles.parquet);
    # the store reads only the plan, which has not changed yet (Dagster's staleness is one step deep)
    catalog, graph, tuples, plan, store = CURATION
    stale, fresh = StaleStatus.STALE, StaleStatus.FRESH
    assert _status(instance) == {
        catalog: fresh,
        graph: stale,
        tuples: stale,
        plan: stale,
        store: fresh,
    }

    _materialise(layout, instance, CURATION)  # the rest of the nightly job catches up
    assert _status(instance) == dict.fromkeys(CURATION, StaleStatus.FRESH)


def test_every_table_has_the_columns_the_ui_shows(growing):
    """The definition metadata (what the UI shows before any run) against the written files."""
    layout, _ = growing
    _materialise(layout, DagsterInstance.ephemeral(), CURATION)
    graph = defs.resolve_asset_graph()

    def shown(key: str, table: str = "") -> list[str]:
        metadata = graph.get(AssetKey(key)).metadata
        schema = metadata[f"{table}_column_schema" if table else "dagster/column_schema"].value
        return [c.name for c in schema.columns]

    files = {
        ("tile_catalog", ""): layout.tiles,
        ("tile_catalog", "quarantine"): layout.quarantine,
        ("tile_overlap_graph", ""): layout.overlap_graph,
        ("temporal_intersections", ""): layout.intersections,
        ("patch_plan", ""): layout.locations,
        ("patch_plan", "patches"): layout.patches,
    }
    for (key, table), path in files.items():
        written = [c for c in pq.read_schema(path).names if c != "bbox"]  # GeoParquet's covering column
        assert written == shown(key, table), (key, table)
