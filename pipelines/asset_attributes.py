"""What the UI shows about every asset beyond its own definition, applied once to the whole code
location: owners, the ``stage`` and ``sensor`` tags, freshness expectations and links to source.

The stage ``defs.py`` files say what an asset computes (its code version, pool and column
schemas live there, beside the code); who answers for it, which stage and satellite it belongs
to, and when the nightly operation expects it are properties of the deployment, so they are one
table here, keyed by asset group, rather than repeated on every decorator.

Freshness: the EnMAP catalog is expected every night (the nightly schedule re-scans at 02:00 UTC;
a catalog not re-materialised by the deadline two hours later reads FAIL) and the EnMAP release
within a few days (nothing schedules it: it is published when an operator or a sensor decides,
so it warns after three days and fails after a week). DESIS's chain gets no policy: its nightly
schedule is off by default (most deployments have no DESIS archive), and a policy that fails
forever where nobody runs the chain would only teach people to ignore the red.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from datetime import timedelta

from dagster import AssetKey, AssetsDefinition, AssetSpec, FreshnessPolicy, SourceAsset, map_asset_specs
from dagster import with_source_code_references as _with_source_code_references
from dagster._core.definitions.external_asset import create_external_asset_from_source_asset
from dagster._core.definitions.metadata.source_code import local_source_path_from_fn, merge_code_references

from assets.chains import CHAINS, ENMAP_CHAIN
from assets.patches.defs import RELEASE_ASSET
from pipelines.schedules import nightly_catalog_schedule
from storage_schemas.label_products import LABEL_PRODUCTS

CHAIN_STAGES = ("archive", "geometry", "patches")
"""The stages every sensor's chain has (``Chain.group``: ``archive``, ``desis_archive``, ...)."""
NO_SENSOR = "none"
"""``sensor`` tag of assets that belong to no one satellite (label sources, training)."""

OWNERS = {
    "archive": ["team:curation"],
    "geometry": ["team:curation"],
    "patches": ["team:curation"],
    "release": ["team:curation"],
    "labels": ["team:curation"],
    "training": ["team:ml"],
}
"""Stage -> who answers for its assets (the curation team up to the datasets, ML for training)."""

GROUPS: dict[str, tuple[str, str]] = {
    **{chain.group(stage): (stage, chain.sensor) for chain in CHAINS.values() for stage in CHAIN_STAGES},
    "label_sources": ("labels", NO_SENSOR),
    "labels": ("labels", NO_SENSOR),
    "training": ("training", NO_SENSOR),
}
"""Asset group -> (stage, sensor). Two refinements by key: a chain's release is stage ``release``
(it sits in the patches group), and a label dataset has its product's sensor."""

DEADLINE_AFTER_SCHEDULE = timedelta(hours=2)
"""How long after the nightly schedule's tick the catalog must be there (the scan of 11,636
products takes minutes; a queue or a retry gets the rest)."""


def deadline_cron(cron: str, after: timedelta) -> str:
    """The daily cron ``after`` (whole hours) a daily ``minute hour * * *`` cron."""
    minute, hour, *rest = cron.split()
    if rest != ["*", "*", "*"] or after % timedelta(hours=1):
        raise ValueError(f"{cron!r} + {after}: only daily crons and whole hours are supported")
    return " ".join([minute, str((int(hour) + after // timedelta(hours=1)) % 24), *rest])


FRESHNESS = {
    AssetKey(ENMAP_CHAIN.key("tile_catalog")): FreshnessPolicy.cron(
        deadline_cron=deadline_cron(nightly_catalog_schedule.cron_schedule, DEADLINE_AFTER_SCHEDULE),
        lower_bound_delta=DEADLINE_AFTER_SCHEDULE,
        timezone=nightly_catalog_schedule.execution_timezone or "UTC",
    ),
    RELEASE_ASSET[ENMAP_CHAIN.sensor]: FreshnessPolicy.time_window(
        fail_window=timedelta(days=7), warn_window=timedelta(days=3)
    ),
}
"""Asset key -> its freshness policy (see the module docstring for why these and no others)."""


def stage_and_sensor(spec: AssetSpec) -> tuple[str, str]:
    """The ``stage`` and ``sensor`` tags of one asset."""
    stage, sensor = GROUPS[spec.group_name]
    if spec.key in RELEASE_ASSET.values():
        stage = "release"
    product = LABEL_PRODUCTS.get(spec.key.to_user_string())
    if product is not None:
        sensor = product.sensor
    return stage, sensor


def with_attributes(spec: AssetSpec) -> AssetSpec:
    """One asset with its owners, tags and freshness policy."""
    stage, sensor = stage_and_sensor(spec)
    spec = spec.merge_attributes(owners=OWNERS[stage], tags={"stage": stage, "sensor": sensor})
    policy = FRESHNESS.get(spec.key)
    return spec.replace_attributes(freshness_policy=policy) if policy else spec


def with_ui_attributes(
    assets: Sequence[AssetsDefinition | AssetSpec | SourceAsset],
) -> list[AssetsDefinition | AssetSpec]:
    """Every asset of the code location with owners, tags, freshness and a link to its source
    (the file and line of its function; no git remote is configured, so local references, which
    ``link_code_references_to_git`` would turn into URLs where one is).

    Observable source assets (the label sources) are ``SourceAsset`` objects, which carry no owners;
    they become the external ``AssetsDefinition`` that Dagster's asset graph turns them into anyway
    (the same observation op), with a reference to their observe function (Dagster's own would point
    at the wrapper it puts around it)."""
    linked = [
        observed_with_source(a) if isinstance(a, SourceAsset) else _with_source_code_references([a])[0]
        for a in assets
    ]
    return list(map_asset_specs(with_attributes, linked))


def observed_with_source(source: SourceAsset) -> AssetsDefinition:
    """An observable source asset as an external asset, linked to its observe function."""
    reference = local_source_path_from_fn(source.observe_fn)
    with warnings.catch_warnings():  # Dagster's own conversion reads its deprecated OpDefinition.version
        warnings.simplefilter("ignore", DeprecationWarning)
        external = create_external_asset_from_source_asset(source)
    return external.map_asset_specs(lambda spec: merge_code_references(spec, [reference]))
