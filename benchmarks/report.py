"""What the benchmark scripts print alike: the load average beside their figures (the machine is
shared, so a figure without its load cannot be compared) and a three-column table.

Scripts import it as a sibling module (``python benchmarks/<script>.py`` puts this folder first
on ``sys.path``)."""

from __future__ import annotations

import os


def load() -> str:
    """The 1, 5 and 15-minute load averages, ``1.2/0.9/0.7``."""
    return "/".join(f"{v:.1f}" for v in os.getloadavg())


def print_table(rows: list[tuple[str, str, str]]) -> None:
    """Rows of (what, value, note), the first one the header: names left, values right."""
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for i, (what, value, note) in enumerate(rows):
        print(f"{what.ljust(widths[0])}  {value.rjust(widths[1])}  {note}".rstrip())
        if i == 0:
            print(f"{'-' * widths[0]}  {'-' * widths[1]}  {'-' * widths[2]}")
