"""Materialising assets for a benchmark: an ephemeral instance, in-process, no Dask, quiet.

The benchmarks time the stage code, not Dagster's logging or a cluster's start; they share this
one way of setting a data root up through the real assets.
"""

from __future__ import annotations


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
