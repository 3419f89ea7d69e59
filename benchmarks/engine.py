"""Seconds the Dagster engine costs around the work: a run launched from the UI, and the plan
command at mission scale.

    .venv/bin/python benchmarks/engine.py [--tiles 11636] [--ui-tiles 8] [--data DIR] [--skip-ui]

Why: a run launched from the UI used to spend 10-15 s starting each step's process (each imported
the code location, torch included), and ``dagster asset materialize`` of the plan at 11,636 tiles
took 63 s for 26.5 s of computing. Targets: at most 3 s per step before its work starts, and the
plan command within 40 s.

What:
1. **UI run.** A small simulated archive, ``dagster dev -w deploy/workspace.yaml`` on a free port
   (the webserver and the daemon, as ``make ui`` runs them), ``catalog_job`` launched through the
   webserver's GraphQL ``launchPipelineExecution`` (what the Launchpad's button sends). From the
   run's events: launch to the first step's start (queue, run worker start, code location
   import), each step's wait (from the previous step's end, or the run's start, to its start) and
   its work (start to success).
2. **Plan command.** A catalog-only simulated archive of ``--tiles`` tiles (cached under
   ``--data``), then ``dagster asset materialize --select
   tile_overlap_graph,temporal_intersections,patch_plan -m pipelines.definitions`` timed as a
   whole process, against the seconds the three assets report having computed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PLAN_ASSETS = ("tile_overlap_graph", "temporal_intersections", "patch_plan")
TARGET_STEP_WAIT_S = 3.0
TARGET_PLAN_COMMAND_S = 40.0


def environment(data: Path, home: Path) -> dict[str, str]:
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "deploy" / "dagster.dev.yaml", home / "dagster.yaml")
    inherited = {k: v for k, v in os.environ.items() if k not in ("ENMAP_ARCHIVE", "DESIS_ARCHIVE")}
    return {**inherited, "SPECTRAL_DATA_ROOT": str(data), "DAGSTER_HOME": str(home)}


def graphql(url: str, query: str, variables: dict | None = None) -> dict:
    request = urllib.request.Request(
        f"{url}/graphql",
        data=json.dumps({"query": query, "variables": variables or {}}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.loads(response.read())["data"]


LAUNCH = """mutation($p: ExecutionParams!) { launchPipelineExecution(executionParams: $p) {
  __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message } } }"""
STATUS = """query($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ui_run(work: Path, tiles: int) -> dict:
    """``catalog_job`` launched through the webserver; the engine's seconds around each step."""
    from dagster import DagsterEventType, DagsterInstance

    from simulator import simulate_archive

    data = work / "ui" / "data"
    simulate_archive(data, tiles=tiles, tile_size=128, seed=1)
    env = environment(data, work / "ui" / "home")
    port = free_port()
    command = [sys.executable, str(ROOT / "deploy" / "serve.py"), str(BIN / "dagster"), "dev"]
    command += ["-w", "deploy/workspace.yaml", "-h", "127.0.0.1", "-p", str(port)]
    log = (work / "ui" / "dagster-dev.log").open("wb")
    server = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                graphql(url, "{ version }")
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError(f"dagster dev did not serve; see {log.name}") from None
                time.sleep(1)
        selector = {"repositoryLocationName": "spectralforge", "repositoryName": "__repository__"}
        params = {"selector": {**selector, "jobName": "catalog_job"}, "runConfigData": {}}
        launched = time.time()
        run_id = graphql(url, LAUNCH, {"p": params})["launchPipelineExecution"]["run"]["runId"]
        while graphql(url, STATUS, {"id": run_id})["runOrError"]["status"] not in ("SUCCESS", "FAILURE"):
            time.sleep(0.5)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(60)
    os.environ["DAGSTER_HOME"] = env["DAGSTER_HOME"]
    with DagsterInstance.get() as instance:
        events = [e for e in instance.all_logs(run_id) if e.is_dagster_event]
        status = instance.get_run_by_id(run_id).status.value

    def first(kind, step=None):
        return next(
            e.timestamp
            for e in events
            if e.dagster_event_type == kind and (step is None or e.step_key == step)
        )

    steps = [e.step_key for e in events if e.dagster_event_type == DagsterEventType.STEP_START]
    rows, previous_end = [], first(DagsterEventType.RUN_START)
    for step in steps:
        start, end = first(DagsterEventType.STEP_START, step), first(DagsterEventType.STEP_SUCCESS, step)
        rows.append((step, start - previous_end, end - start))
        previous_end = end
    return {
        "status": status,
        "launch_to_first_step_s": first(DagsterEventType.STEP_START, steps[0]) - launched,
        "launch_to_run_start_s": first(DagsterEventType.RUN_START) - launched,
        "steps": rows,
    }


def plan_command(work: Path, tiles: int, cache: Path | None) -> dict:
    """The three plan assets through ``dagster asset materialize`` at ``tiles`` catalog-only tiles."""
    from dagster import AssetKey, DagsterInstance

    from simulator import simulate_archive

    data = (cache or work) / f"plan-{tiles}" / "data"
    if not (data / "catalog" / "tiles.parquet").exists():
        simulate_archive(data, tiles=tiles, tile_size=1000, catalog_only=True, seed=0)
    shutil.rmtree(data / "plan", ignore_errors=True)
    env = environment(data, work / "plan-home")
    command = [str(BIN / "dagster"), "asset", "materialize", "-m", "pipelines.definitions"]
    command += ["--select", ",".join(PLAN_ASSETS)]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode:
        raise RuntimeError(done.stdout[-3000:] + done.stderr[-3000:])
    os.environ["DAGSTER_HOME"] = env["DAGSTER_HOME"]
    with DagsterInstance.get() as instance:
        computed = {
            key: instance.get_latest_materialization_event(AssetKey(key))
            .asset_materialization.metadata["seconds"]
            .value
            for key in PLAN_ASSETS
        }
    return {"wall_s": wall, "computed_s": computed}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiles", type=int, default=11_636)
    parser.add_argument("--ui-tiles", type=int, default=8)
    parser.add_argument("--data", type=Path, help="cache the catalog-only archive here")
    parser.add_argument("--skip-ui", action="store_true")
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory(prefix="engine-bench-") as tmp:
        work = Path(tmp)
        if not args.skip_ui:
            ui = ui_run(work, args.ui_tiles)
            print(f"UI run of catalog_job ({args.ui_tiles} simulated products): {ui['status']}")
            print(
                f"  launch -> run start {ui['launch_to_run_start_s']:.1f} s, -> first step "
                f"{ui['launch_to_first_step_s']:.1f} s"
            )
            print("  | step | wait before it (s) | work (s) |\n  |---|---:|---:|")
            for step, wait, work_s in ui["steps"]:
                print(f"  | {step} | {wait:.2f} | {work_s:.2f} |")
            waits = [w for _, w, _ in ui["steps"]]
            results |= {
                "ui_launch_to_first_step_s": round(ui["launch_to_first_step_s"], 2),
                "ui_max_step_wait_s": round(max(waits), 2),
                "ui_engine_s_per_step": round(
                    ui["launch_to_first_step_s"] / len(waits) + sum(waits[1:]) / len(waits), 2
                ),
            }
        plan = plan_command(work, args.tiles, args.data)
        computed = sum(plan["computed_s"].values())
        print(
            f"plan command at {args.tiles:,} catalog-only tiles: {plan['wall_s']:.1f} s whole, "
            f"{computed:.1f} s computed ({', '.join(f'{k} {v:.1f}' for k, v in plan['computed_s'].items())})"
        )
        print(
            f"targets: at most {TARGET_STEP_WAIT_S:g} s per step before its work; the plan command in "
            f"{TARGET_PLAN_COMMAND_S:g} s"
        )
        results |= {"plan_command_s": round(plan["wall_s"], 1), "plan_computed_s": round(computed, 1)}
    print("RESULT " + " ".join(f"{k}={v}" for k, v in results.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
