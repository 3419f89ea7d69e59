"""Where a training run reports: to Dagster through Pipes when Dagster launched it, else to the
terminal. The entry points run the same way in both cases; only this changes."""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from typing import Any

from dagster_pipes import DAGSTER_PIPES_CONTEXT_ENV_VAR, open_dagster_pipes


class Reporter:
    def __init__(self, pipes=None, rank: int = 0):
        self.pipes = pipes
        self.rank = rank

    def info(self, message: str) -> None:
        if self.rank:
            return
        if self.pipes is not None:
            self.pipes.log.info(message)
        else:
            print(message, flush=True)

    def error(self, message: str) -> None:
        if self.pipes is not None:
            self.pipes.log.error(message)
        print(message, file=sys.stderr, flush=True)

    def materialization(self, metadata: dict[str, Any], data_version: str | None = None) -> None:
        """The run's result: asset metadata under Dagster, a summary on the terminal otherwise."""
        if self.rank:
            return
        if self.pipes is not None:
            self.pipes.report_asset_materialization(metadata=metadata, data_version=data_version)
            return
        for key, value in metadata.items():
            shown = value["raw_value"] if isinstance(value, dict) and "raw_value" in value else value
            if isinstance(shown, str) and len(shown) > 200:
                shown = shown[:200] + "..."
            print(f"{key:>22}: {shown}", flush=True)


@contextmanager
def reporter(rank: int = 0):
    """A Pipes-backed reporter when launched by Dagster (its context variable is set)."""
    if os.environ.get(DAGSTER_PIPES_CONTEXT_ENV_VAR) and rank == 0:
        with open_dagster_pipes() as pipes:
            yield Reporter(pipes, rank)
    else:
        yield Reporter(None, rank)
