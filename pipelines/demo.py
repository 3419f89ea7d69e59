"""``make demo``: materialise every asset through Dagster on the instance under DAGSTER_HOME.

For each sensor's chain (EnMAP, then DESIS when its archive exists): runs the catalog job, then
ticks the chain's tile sensor as the daemon would (``pipelines.location_runs.tick``: the sensor
decides which tiles to register and which runs to request) and runs what it requests (quality and
patches per tile), then the release job. Every run is created as the UI and the daemon create
theirs, with the code location's origin (``pipelines.location_runs``), so that the UI started
afterwards with ``make ui`` lists them under their jobs and on the Timeline, re-executes them, and
shows the tile runs as launched by the sensor. Prints a summary at the end.

Every label dataset must come out with train, val and test samples (the demo's simulated sites are
spread so that the spatially blocked split has blocks for each: ``simulator.sites``); a dataset
not built or with an empty split fails the demo at the end, naming the dataset and the split.
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml
from dagster import DagsterInstance

from assets.chains import CHAINS, Chain
from assets.labels.defs import LABEL_DATASET_ASSETS
from pipelines.location_runs import run_job, tick
from pipelines.resources import resources_for
from pipelines.sensors import TILE_SENSORS
from spectralforge.cli import catalog_summary
from storage_schemas.label_dataset import SPLIT_NAMES
from storage_schemas.paths import DataLayout
from storage_schemas.sensors import sensor_named

QUIET = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}
"""The demo prints what a person reads (quarantine warnings, progress), not every engine event."""

MAX_TICKS = 1000
"""A bound on the sensor ticks of one chain (each registers up to 2,048 tiles)."""


def run_chain(instance: DagsterInstance, chain: Chain) -> list[str] | None:
    """Catalog, tile runs and release of one chain; the summary lines, or None on failure."""
    data_root = resources_for()["data_root"]
    catalog = run_job(instance, chain.job("catalog_job"), QUIET)
    if not catalog.success:
        print(f"{chain.job('catalog_job')} failed; see `make ui` for the run log", file=sys.stderr)
        return None
    runs, cursor = 0, None
    for _ in range(MAX_TICKS):
        ticked = tick(instance, TILE_SENSORS[chain.sensor], cursor, {"data_root": data_root}, QUIET)
        if not ticked.runs:
            if runs == 0 and ticked.skipped:
                print(f"{TILE_SENSORS[chain.sensor].name}: {ticked.skipped}", file=sys.stderr)
            break
        for outcome in ticked.runs:
            if not outcome.success:
                run = instance.get_run_by_id(outcome.run_id)
                print(f"tile run {run.tags.get('dagster/run_key')} failed; see `make ui`", file=sys.stderr)
        runs += len(ticked.runs)
        cursor = ticked.cursor
    release = run_job(instance, chain.job("release_job"), QUIET)
    if not release.success:
        print(f"{chain.job('release_job')} failed; see `make ui` for the run log", file=sys.stderr)
        return None
    node = "__".join(chain.key(chain.release))
    published = release.asset_materializations_for_node(node)[0].metadata
    layout = data_root.layout(chain.sensor)
    return [
        f"== {sensor_named(chain.sensor).mission} ==",
        catalog_summary(layout),
        f"release      {'/'.join(chain.key(chain.release))} {published['version'].value}: "
        f"{published['patches'].value} patches at {published['locations'].value} locations from "
        f"{published['tiles_with_patches'].value} tiles ({published['patches_dropped'].value} patches "
        "dropped as masked)",
        f"             {published['path'].value}",
        f"store        {layout.store}",
        f"runs         {chain.job('catalog_job')} + {runs} {chain.job('tiles_job')} run(s) + "
        f"{chain.job('release_job')}",
    ]


def main() -> int:
    instance = DagsterInstance.get()
    lines = []
    for name, chain in CHAINS.items():
        if name != "enmap" and not DataLayout.from_env(sensor=name).archive.is_dir():
            continue  # DESIS is optional: only when its archive exists
        summary = run_chain(instance, chain)
        if summary is None:
            return 1
        lines += summary
    outcomes = dataset_outcomes(run_job(instance, "labels_job", QUIET))
    lines += ["== label datasets ==", *label_summary(outcomes)]
    incomplete = incomplete_datasets(outcomes)
    lines += [
        "== training (smoke: a small Spec. ViT, MoCo-v2, frozen-encoder benchmark) ==",
        *train_smoke(instance),
    ]
    print()
    print("SpectralForge demo: the archives are simulated (products marked SIMULATED), the pipeline is real.")
    print("\n".join(lines))
    print(f"             recorded in {instance.root_directory}")
    print(
        "next         `make ui` and open http://127.0.0.1:3000 (Assets, Runs, partitions of tile_patches "
        "and desis/tile_patches)"
    )
    if incomplete:
        print("\nincomplete label datasets (the benchmark table is not full):", file=sys.stderr)
        print("\n".join(f"  {line}" for line in incomplete), file=sys.stderr)
        return 1
    return 0


RUN_CONFIGS = Path(__file__).resolve().parent.parent / "deploy" / "run_configs"


def train_smoke(instance: DagsterInstance) -> list[str]:
    """``pretrain_job`` and ``benchmark_job`` with the smoke run configs; the benchmark table."""
    lines = []
    for job, config, asset in (
        ("pretrain_job", "pretrain_smoke.yaml", "pretrained_encoder"),
        ("benchmark_job", "benchmark_smoke.yaml", "benchmark_results"),
    ):
        run_config = {**yaml.safe_load((RUN_CONFIGS / config).read_text()), **QUIET}
        result = run_job(instance, job, run_config)
        if not result.success:
            return [*lines, f"{job} failed; see `make ui` for the run log"]
        md = result.asset_materializations_for_node(asset)[0].metadata
        if asset == "pretrained_encoder":
            sha, loss = md["checkpoint_sha256"].value[:12], md["final_loss"].value
            lines.append(
                f"encoder      {md['checkpoint'].value} (sha256 {sha}, release {md['release'].value}, "
                f"{md['epochs'].value} epochs, final loss {loss:.3f})"
            )
        else:
            lines += [md["table"].value.strip(), f"results      {md['results_csv'].value}"]
    return lines


def dataset_outcomes(result) -> dict[str, dict | str]:
    """Per label dataset of a ``labels_job`` run: its materialisation's metadata, or why it was
    not built."""
    outcomes: dict[str, dict | str] = {}
    for name in sorted(a.key.path[-1] for a in LABEL_DATASET_ASSETS):
        if any(e.step_key == name for e in result.get_step_success_events()):
            md = result.asset_materializations_for_node(name)[0].metadata
            outcomes[name] = {key: value.value for key, value in md.items()}
            continue
        failure = next((e for e in result.all_events if e.step_key == name and e.is_failure), None)
        outcomes[name] = failure.event_specific_data.error.message.strip() if failure else "not run"
    return outcomes


def incomplete_datasets(outcomes: dict[str, dict | str]) -> list[str]:
    """One line per label dataset that was not built or has an empty split, naming the split."""
    lines = []
    for name, md in outcomes.items():
        if isinstance(md, str):
            lines.append(f"{name}: not built: {md[:160]}")
            continue
        sizes = {split: int(md.get(f"samples_{split}", 0)) for split in SPLIT_NAMES}
        empty = [split for split in SPLIT_NAMES if not sizes[split]]
        if empty:
            lines.append(
                f"{name}: split {', '.join(empty)} empty ("
                + ", ".join(f"{k} {v}" for k, v in sizes.items())
                + ")"
            )
    return lines


def label_summary(outcomes: dict[str, dict | str]) -> list[str]:
    """One line per label dataset: samples per split, or why it failed."""
    lines = []
    for name, md in outcomes.items():
        if isinstance(md, str):
            lines.append(f"labels       {name}: not built: {md[:160]}")
            continue
        lines.append(
            f"labels       {name} {md['version']}: {md['dagster/row_count']} samples "
            f"(train {md['samples_train']}, val {md['samples_val']}, test {md['samples_test']}), "
            f"{md['left_out']} release patches left out"
        )
    return lines


if __name__ == "__main__":
    sys.exit(main())
