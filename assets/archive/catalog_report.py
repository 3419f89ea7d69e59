"""Small summaries of the catalog for the UI: footprint map, months, quarantine reasons.

Kept small on purpose (DESIGN: metadata lives in the event log once per materialisation): a
PNG of a few tens of kB and short markdown tables.
"""

from __future__ import annotations

import io
import re

import geopandas as gpd
import pandas as pd

from storage_schemas.catalog import STATUS_PRESENT
from storage_schemas.sensors import SENSORS


def footprint_map_png(tiles: gpd.GeoDataFrame, width_px: int = 900) -> bytes:
    """World map of footprints (accepted: blue, missing: red), drawn on a lon/lat grid."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(width_px / 100, width_px / 200), dpi=100)
    ax.set_xlim(-180, 180)
    ax.set_ylim(-90, 90)
    ax.set_aspect("equal")
    ax.grid(True, lw=0.3, color="0.8")
    present = tiles["status"] == STATUS_PRESENT
    for selection, colour in ((present, "tab:blue"), (~present, "tab:red")):
        part = tiles[selection]
        if len(part):
            part.boundary.plot(ax=ax, linewidth=0.6, color=colour)
            ax.scatter(part["center_lon"], part["center_lat"], s=4, color=colour)
    ax.set_title(f"{int(present.sum())} tiles ({int((~present).sum())} missing from the archive)", fontsize=9)
    ax.tick_params(labelsize=7)
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def month_histogram(tiles: pd.DataFrame) -> dict[str, int]:
    """Acquisitions per calendar month (``YYYY-MM``), every month between first and last."""
    if tiles.empty:
        return {}
    months = tiles["acquired"].dt.tz_convert("UTC").dt.strftime("%Y-%m")
    counts = months.value_counts()
    span = pd.period_range(min(counts.index), max(counts.index), freq="M").strftime("%Y-%m")
    return {m: int(counts.get(m, 0)) for m in span}


def markdown_bars(counts: dict[str, int], width: int = 30) -> str:
    top = max(counts.values(), default=1) or 1
    rows = [f"| {k} | {v} | {'█' * round(width * v / top)} |" for k, v in counts.items()]
    return "\n".join(["| month | tiles | |", "|---|---:|---|", *rows])


def _unanchored(pattern: re.Pattern) -> str:
    """A sensor's product-name pattern without anchors and group names, to find names inside text."""
    return re.sub(r"\(\?P<\w+>", "(?:", pattern.pattern).removeprefix("^").removesuffix("$")


_DETAILS = re.compile(
    "|".join(
        (
            r"'[^']*'|\"[^\"]*\"",  # quoted values: member names, XML text
            *(_unanchored(s.product_name) for s in SENSORS.values()),  # product names of every sensor
            # paths: a slash and a digit or a dot (XML element paths such as specific/qualityFlag stay)
            r"(?=[^\s,;()'\"]*[\d.])[^\s,;:()'\"]*/[^\s,;()'\"]*",
            r"[^\s/]+\.(?:zip|ZIP|tar\.gz)\b",  # delivery and product containers
            r"(?<![\w-])-?\d+(?:[.,]\d+)*(?!\w)",  # whole numbers only: L1B, V010302, EPSG: stay
        )
    )
)
"""What varies between products inside one kind of quarantine reason. Numbers are masked only
when they stand alone, so product levels (L1B, L2A), versions and element names keep their digits."""


def reason_kind(reason: str) -> str:
    """A quarantine reason with its product-specific details (numbers, names, paths) blanked out."""
    return _DETAILS.sub("…", reason)


def reason_counts(quarantine: pd.DataFrame) -> dict[str, int]:
    """Quarantine reasons grouped by kind (:func:`reason_kind`), most frequent first."""
    if quarantine.empty:
        return {}
    kinds = quarantine["reason"].map(reason_kind)
    return {k: int(v) for k, v in kinds.value_counts().items()}


def reasons_markdown(reasons: dict[str, int]) -> str:
    """:func:`reason_counts` as a markdown table; ``<``, ``>`` and ``|`` escaped, since a reason such
    as lxml's ``(<string>, line …)`` would otherwise be taken for HTML or a cell border."""
    rows = [f"| {_escape_markdown(k)} | {v} |" for k, v in reasons.items()]
    return "\n".join(["| reason | products |", "|---|---:|", *rows])


def _escape_markdown(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")
