"""How often the plan sees each 128 px location: the statistic the visit model is calibrated on.

The SpectralEarth paper reports, for its 11,636 tiles, that 17.5% of its non-overlapping
128 x 128 px locations have more than one timestamp, mostly two, a few more than 25. This module
estimates the same numbers from an acquisition plan without writing a pixel: locations are the
cells of a 3840 m grid per UTM zone (aligned with the 30 m pixel grid), and a tile covers a cell
when all four cell corners lie inside its swath square. The patch plan of the pipeline decides
its own locations; this is the simulator's yardstick, not a replacement.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulator.acquisitions import GRID_OFFSET_M, PIXEL_SIZE_M, AcquisitionPlan


@dataclass(frozen=True)
class CoverageStats:
    """Summary of location visit counts."""

    locations: int
    patches: int
    multi_fraction: float
    """Share of locations covered by more than one tile."""
    twice_fraction: float
    over_25: int
    max_visits: int

    def describe(self) -> str:
        return (
            f"{self.locations:,} locations, {self.patches:,} patches, "
            f"{self.multi_fraction:.1%} seen more than once ({self.twice_fraction:.1%} exactly twice), "
            f"{self.over_25} seen more than 25 times, at most {self.max_visits}"
        )


def location_visit_counts(plan: AcquisitionPlan, patch_px: int = 128, chunk: int = 20_000) -> np.ndarray:
    """Number of tiles covering each location that at least one tile covers fully."""
    cell = patch_px * PIXEL_SIZE_M
    half = plan.side_m / 2.0
    keys = []
    for lo in range(0, len(plan), chunk):
        sl = slice(lo, min(lo + chunk, len(plan)))
        x0, y0 = plan.grid_x0[sl], plan.grid_y0[sl]
        x1 = x0 + plan.width[sl] * PIXEL_SIZE_M
        y1 = y0 - plan.height[sl] * PIXEL_SIZE_M
        kx0 = np.ceil((x0 - GRID_OFFSET_M) / cell).astype(np.int64)
        ky0 = np.ceil((y1 - GRID_OFFSET_M) / cell).astype(np.int64)
        nx = np.floor((x1 - GRID_OFFSET_M) / cell).astype(np.int64) - kx0
        ny = np.floor((y0 - GRID_OFFSET_M) / cell).astype(np.int64) - ky0
        size = int(max(nx.max(initial=0), ny.max(initial=0)))
        if size <= 0:
            continue
        ix = np.arange(size)
        shape = (len(kx0), size, size)  # (tile, row, col)
        kx = np.broadcast_to(kx0[:, None, None] + ix[None, None, :], shape)
        ky = np.broadcast_to(ky0[:, None, None] + ix[None, :, None], shape)
        inside = (ix[None, None, :] < nx[:, None, None]) & (ix[None, :, None] < ny[:, None, None])
        for ddx in (0, 1):
            for ddy in (0, 1):
                px = (kx + ddx) * cell + GRID_OFFSET_M - plan.center_x[sl][:, None, None]
                py = (ky + ddy) * cell + GRID_OFFSET_M - plan.center_y[sl][:, None, None]
                ux, uy = plan.along_x[sl][:, None, None], plan.along_y[sl][:, None, None]
                inside &= np.abs(px * ux + py * uy) <= half
                inside &= np.abs(-px * uy + py * ux) <= half
        epsg = np.broadcast_to(plan.epsg[sl][:, None, None].astype(np.int64), inside.shape)
        keys.append((epsg[inside] << 40) | ((kx[inside] & 0xFFFFF) << 20) | (ky[inside] & 0xFFFFF))
    if not keys:
        return np.zeros(0, dtype=np.int64)
    _, counts = np.unique(np.concatenate(keys), return_counts=True)
    return counts


def coverage_stats(plan: AcquisitionPlan, patch_px: int = 128) -> CoverageStats:
    counts = location_visit_counts(plan, patch_px)
    n = max(len(counts), 1)
    return CoverageStats(
        locations=len(counts),
        patches=int(counts.sum()),
        multi_fraction=float((counts > 1).sum() / n),
        twice_fraction=float((counts == 2).sum() / n),
        over_25=int((counts > 25).sum()),
        max_visits=int(counts.max(initial=0)),
    )
