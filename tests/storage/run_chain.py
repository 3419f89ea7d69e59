"""Run the EnMAP chain as ``make demo`` does (catalog job, the tile sensor's runs, release job) on
the roots the environment names, on the instance under DAGSTER_HOME; print the release version.

A process of its own per configuration: the code location reads its roots from the environment
when it is imported, as a deployment's does."""

from __future__ import annotations

import json
import sys

from dagster import DagsterInstance

from assets.chains import CHAINS
from pipelines.demo import run_chain
from storage_schemas.paths import DataLayout
from storage_schemas.release import LATEST


def main() -> int:
    summary = run_chain(DagsterInstance.get(), CHAINS["enmap"])
    if summary is None:
        return 1
    layout = DataLayout.from_env()
    print(json.dumps({"version": (layout.releases / LATEST).read_text().strip(), "summary": summary}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
