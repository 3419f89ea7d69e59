"""What the UI shows about a plan: the paper's statistics, the Figure 6 histogram, the unusual cases.

SpectralEarth reports 538,974 patches at 415,153 locations from 11,636 tiles (46 patches per
tile), 17.5% of locations with more than one timestamp, mostly two, and a few series longer than
25 (its Figure 6, a histogram of timestamps per location on a log scale). The same numbers are
computed here for any plan, so a run on the real archive can be set beside the paper's.
"""

from __future__ import annotations

import io
import numbers
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from assets.geometry.patch_plan import PatchPlan


def series_histogram(n_timestamps: pd.Series) -> dict[int, int]:
    """Locations per number of timestamps."""
    counts = n_timestamps.value_counts().sort_index()
    return {int(k): int(v) for k, v in counts.items()}


def plan_summary(plan: PatchPlan, tiles: int) -> dict[str, float | int]:
    n = plan.locations["n_timestamps"]
    multi = int((n > 1).sum())
    patches = plan.patches
    return {
        "tiles": tiles,
        "locations": len(n),
        "patches": len(patches),
        "patches_per_tile": round(len(patches) / tiles, 2) if tiles else 0.0,
        "multitemporal_locations": multi,
        "multitemporal_share": round(multi / len(n), 4) if len(n) else 0.0,
        "two_timestamp_share_of_multitemporal": round(int((n == 2).sum()) / multi, 4) if multi else 0.0,
        "longest_series": int(n.max()) if len(n) else 0,
        "series_over_25": int((n > 25).sum()),
        "cross_grid_patches": int((~patches["same_grid"]).sum()),
        "southern_locations": int((plan.locations["epsg"] // 100 == 327).sum()),
        **plan.growth,
    }


def histogram_png(n_timestamps: pd.Series, width_px: int = 640) -> bytes:
    """Figure 6: locations per number of timestamps, log-scaled counts."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    counts = series_histogram(n_timestamps)
    fig, ax = plt.subplots(figsize=(width_px / 100, width_px / 200), dpi=100)
    if counts:
        ax.bar(list(counts), list(counts.values()), color="tab:blue", width=0.8)
        ax.set_yscale("log")
    ax.set_xlabel("timestamps per location", fontsize=8)
    ax.set_ylabel("locations", fontsize=8)
    multi = int((n_timestamps > 1).sum())
    share = multi / len(n_timestamps) if len(n_timestamps) else 0.0
    ax.set_title(f"{len(n_timestamps):,} locations, {share:.1%} with more than one timestamp", fontsize=9)
    ax.tick_params(labelsize=7)
    ax.set_xticks(np.arange(1, max(counts, default=1) + 1, max(1, max(counts, default=1) // 16)))
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def markdown_table(counts: Mapping, head: tuple[str, str]) -> str:
    """A two-column Markdown table of ``key -> value``: numbers with thousands separators and
    right-aligned, anything else (a file's CRS and size, a reason) as it is and left-aligned."""
    align = [_alignment(counts.keys()), _alignment(counts.values())]
    rows = [f"| {_cell(k)} | {_cell(v)} |" for k, v in counts.items()]
    return "\n".join([f"| {head[0]} | {head[1]} |", f"|{align[0]}|{align[1]}|", *rows])


def _is_number(value) -> bool:
    return isinstance(value, numbers.Number) and not isinstance(value, bool)


def _cell(value) -> str:
    return f"{value:,}" if _is_number(value) else str(value)


def _alignment(values: Iterable) -> str:
    values = list(values)
    return "---:" if values and all(_is_number(v) for v in values) else "---"
