"""Materialising assets for a benchmark: an ephemeral instance, in-process, no Dask, quiet.

The benchmarks time the stage code, not Dagster's logging or a cluster's start; they share this
one way of setting a data root up through the real assets.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path


def materialize_quietly(assets: list, layout, what: str) -> None:
    """Materialise ``assets`` over the data root ``layout``; exit naming ``what`` if it fails."""
    from dagster import DagsterInstance, materialize

    from assets.resources import DaskCluster, DataRoot

    result = materialize(
        assets,
        instance=DagsterInstance.ephemeral(),
        resources={
            "data_root": DataRoot(data_root=str(layout.root), archive=str(layout.archive)),
            "dask": DaskCluster(n_workers=0),
        },
        run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
    )
    if not result.success:
        raise SystemExit(f"{what} failed under {layout.root}")


def in_data_root(run: Callable, args, name: str) -> None:
    """``run(args, root)`` with ``root`` named by the archive's settings: under ``args.data`` when
    given (kept, and reused by the next run), else in a scratch folder removed afterwards."""
    scratch = None if args.data else Path(tempfile.mkdtemp(prefix=f"sf-bench-{name}-"))
    root = (args.data or scratch) / f"tiles-{args.tiles}-px{args.tile_size}-seed{args.seed}"
    try:
        run(args, root)
    finally:
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)
