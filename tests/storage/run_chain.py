"""Run the EnMAP chain as ``make demo`` does on the roots the environment names, on the instance
under DAGSTER_HOME, and print what it made as JSON on the last line.

``chain``: the catalog job, the tile sensor's runs, the release job; prints the release version.
``labels OUT``: the NLCD label source and the ``enmap_nlcd`` dataset through Dagster, then
``spectralforge export enmap_nlcd --out OUT``; prints the dataset's version.

A process of its own per configuration: the code location reads its roots from the environment
when it is imported, as a deployment's does."""

from __future__ import annotations

import json
import sys

from dagster import DagsterInstance, materialize

from assets.chains import CHAINS
from assets.labels.defs import label_dataset_asset, label_source_asset
from pipelines.demo import run_chain
from pipelines.resources import resources_for
from spectralforge.cli import main as cli
from storage_schemas.label_products import LABEL_PRODUCTS
from storage_schemas.paths import DataLayout
from storage_schemas.release import LATEST


def chain() -> dict | None:
    summary = run_chain(DagsterInstance.get(), CHAINS["enmap"])
    if summary is None:
        return None
    layout = DataLayout.from_env()
    return {"version": (layout.releases / LATEST).read_text().strip(), "summary": summary}


def labels(out: str) -> dict | None:
    product = LABEL_PRODUCTS["enmap_nlcd"]
    assets = [label_source_asset(product.source), label_dataset_asset(product)]
    result = materialize(
        assets, instance=DagsterInstance.get(), resources=resources_for(), raise_on_error=False
    )
    if not result.success or cli(["export", product.name, "--out", out]) != 0:
        return None
    (event,) = result.asset_materializations_for_node(product.name)
    return {"version": event.metadata["version"].value}


def main(argv: list[str]) -> int:
    made = chain() if argv[0] == "chain" else labels(argv[1])
    if made is None:
        return 1
    print(json.dumps(made))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
