"""Where the sun stands at an acquisition: for METADATA.XML's sun angles and for cloud shadows.

The NOAA general solar position approximation (Spencer's series for declination and the
equation of time); good to a fraction of a degree, far better than the simulator needs.
"""

from __future__ import annotations

import numpy as np


def solar_position(lon_deg, lat_deg, time_utc) -> tuple[np.ndarray, np.ndarray]:
    """(elevation, azimuth) in degrees; azimuth clockwise from north. ``time_utc`` is datetime64."""
    t = np.asarray(time_utc, dtype="datetime64[us]")
    day_start = t.astype("datetime64[D]")
    year_start = t.astype("datetime64[Y]").astype("datetime64[D]")
    doy = (day_start - year_start).astype(np.int64) + 1
    hour = (t - day_start).astype(np.int64) / 3.6e9
    gamma = 2 * np.pi / 365.0 * (doy - 1 + (hour - 12) / 24)
    decl = (
        0.006918
        - 0.399912 * np.cos(gamma)
        + 0.070257 * np.sin(gamma)
        - 0.006758 * np.cos(2 * gamma)
        + 0.000907 * np.sin(2 * gamma)
        - 0.002697 * np.cos(3 * gamma)
        + 0.00148 * np.sin(3 * gamma)
    )
    eqtime = 229.18 * (
        0.000075
        + 0.001868 * np.cos(gamma)
        - 0.032077 * np.sin(gamma)
        - 0.014615 * np.cos(2 * gamma)
        - 0.040849 * np.sin(2 * gamma)
    )
    true_solar_min = hour * 60 + eqtime + 4 * np.asarray(lon_deg, dtype=np.float64)
    ha = np.radians(true_solar_min / 4 - 180)
    lat = np.radians(np.asarray(lat_deg, dtype=np.float64))
    cos_zen = np.sin(lat) * np.sin(decl) + np.cos(lat) * np.cos(decl) * np.cos(ha)
    elevation = 90 - np.degrees(np.arccos(np.clip(cos_zen, -1, 1)))
    azimuth = (
        np.degrees(np.arctan2(np.sin(ha), np.cos(ha) * np.sin(lat) - np.tan(decl) * np.cos(lat))) + 180
    ) % 360
    return elevation, azimuth
