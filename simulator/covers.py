"""Cloud, haze, cirrus, snow and cloud-shadow cover of each planned tile, in percent.

Drawn from a random stream of their own, so the plan's geometry does not depend on them. In
pixel mode they are targets: the scene draws masks with these fractions and METADATA.XML reports
the fractions of the masks it wrote. The catalog-only mode writes the catalog *after* acceptance,
so there every cover stays below the catalog's 10% limit.
"""

from __future__ import annotations

import numpy as np

from simulator.acquisitions import AcquisitionPlan

COVER_KEYS = ("cloud_cover", "haze_cover", "cirrus_cover", "snow_cover", "cloud_shadow_cover")
CLOUDY_SHARE = 0.15
"""Share of products with more than 10% cloud (pixel mode): the catalog quarantines those."""
CLEAR_SHARE = 0.35
"""Share of the other products with no cloud at all; the rest has 1-9%, mostly below 5%."""


def draw_covers(plan: AcquisitionPlan, seed: int, accepted_only: bool) -> dict[str, np.ndarray]:
    """Whole percentages per tile (float32), as DLR writes them in ``specific/qualityFlag``."""
    rng = np.random.default_rng([seed, 0x434F5652])  # "COVR"
    n = len(plan)
    cloudy = rng.random(n) < CLOUDY_SHARE
    clear = rng.random(n) < CLEAR_SHARE
    low = np.minimum(np.floor(rng.exponential(2.2, n)) + 1, 9)
    high = rng.integers(11, 61, n)
    cloud = np.where(clear, 0, low)
    if not accepted_only:
        cloud = np.where(cloudy, high, cloud)
    shadow = np.floor(cloud * rng.uniform(0.2, 0.7, n))
    haze = np.where(rng.random(n) < 0.3, rng.integers(1, 6, n), 0)
    cirrus = np.where(rng.random(n) < 0.15, rng.integers(1, 4, n), 0)
    month = plan.start.astype("datetime64[M]").astype(np.int64) % 12 + 1
    winter = np.where(
        plan.center_lat >= 0, np.isin(month, (11, 12, 1, 2, 3)), np.isin(month, (5, 6, 7, 8, 9))
    )
    snowy = np.where(winter & (np.abs(plan.center_lat) > 40), 0.3, 0.02)
    snow = np.where(rng.random(n) < snowy, rng.integers(1, 9, n), 0)
    covers = {
        "cloud_cover": cloud,
        "haze_cover": haze,
        "cirrus_cover": cirrus,
        "snow_cover": snow,
        "cloud_shadow_cover": shadow,
    }
    return {k: np.asarray(v, dtype=np.float32) for k, v in covers.items()}
