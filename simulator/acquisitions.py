"""The acquisition plan: which tiles the simulated mission took, where, when, on which pixel grid.

One plan feeds both modes of the simulator, so a catalog written with ``--catalog-only`` holds
exactly the footprints, grids and names that pixel mode writes into its products for the same
seed and tile size. Everything is vectorised with numpy (116,360 tiles plan in about a second)
and deterministic: the plan draws from its own random stream, seeded by ``seed`` alone.

How the real mission acquires, and how the plan copies it:

- EnMAP flies a sun-synchronous orbit (inclination 97.96 deg) and images in daytime on the
  descending pass, at about 10:30-11:00 local solar time. Its ground track runs SSW: the
  inertial heading ``180 - asin(cos i / cos lat)`` (191.9 deg at 47.6 N) plus the Earth's
  rotation under it gives 194.3 deg there, which is the ``sceneAzimuthAngle`` of 14.3 deg in
  the real sample products (upper_left -> lower_left runs south and to the west).
- A datatake is a strip of consecutive tiles (tile numbers 001, 002, ... along track); each tile
  is a square ``tile_size`` px (30 m) on a side, the next one starts ``tile_size * 4.5 ms`` later
  and one tile length further along track.
- The mission is tasked: it revisits areas of interest on other days (other seasons), pointing
  across track by up to about half a swath, so footprints of one place overlap only partly.
  :class:`VisitModel` holds how many visits a place gets and how long strips are: the knobs
  to calibrate the fraction of 128 px locations seen more than once (see ``coverage``).
- Each product is delivered in the UTM zone of its scene centre, on a 30 m grid whose pixel
  edges lie 15 m off multiples of 30 m (a real product: x0 = 366015). The raster is the
  axis-aligned bounding box of the rotated swath square.

A :class:`Mission` holds what differs between sensors (orbit, operating years, local time of
acquisitions, where sites are drawn, product names): ``ENMAP_MISSION`` above, and
``DESIS_MISSION``: DESIS on the ISS (51.6 deg inclination, about 410 km, not sun-synchronous,
so it images at any time of day) over CONUS land only, 2019-2023, because the DESIS-CDL
benchmark pairs it with the USDA Cropland Data Layer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

import numpy as np
from pyproj import Geod, Transformer

from simulator.sites import (
    ANCHOR_SITES,
    CONUS_REGIONS,
    LABEL_ANCHOR_SITES,
    LAND_REGIONS,
    AnchorSite,
    draw_sites,
)
from storage_schemas.sensors import DESIS, ENMAP, Sensor

PIXEL_SIZE_M = 30.0
GRID_OFFSET_M = 15.0
"""Pixel edges of EnMAP L2A grids lie at 15 m + multiples of 30 m (real: x0 = 366015, 628785)."""
INCLINATION_DEG = 97.96
ORBIT_ALTITUDE_M = 653_000.0
EARTH_RADIUS_M = 6_371_008.8
EARTH_ROTATION_RAD_S = 7.2921159e-5
GM_M3_S2 = 3.986004418e14
LINE_TIME_S = 4.5e-3
"""Seconds per along-track pixel of a tile: a 1000 px tile lasts 4.5 s (real: 1024 lines x 4.4 ms)."""
MISSION_START = np.datetime64("2022-04-02", "D")
MISSION_END = np.datetime64("2024-04-30", "D")
"""Acquisition days (inclusive); a day inside 2022-04-01 .. 2024-04-30 also east of Greenwich,
where 10:30 local solar time can fall on the previous UTC day."""
LOCAL_SOLAR_TIME_H = (10.5, 11.0)
PROCESSOR_VERSION = "010502"
PROCESSING_DELAY_DAYS = (2.0, 9.0)
FIRST_DATATAKE = 100
DATATAKE_GAP_S = 20.0
"""Slew time between datatakes: one satellite cannot take two at once, so none overlap in time."""


def ground_speed(altitude_m: float) -> float:
    """Speed of the sub-satellite point of a circular orbit over a non-rotating Earth (EnMAP at
    653 km: about 6.83 km/s)."""
    radius = EARTH_RADIUS_M + altitude_m
    return float(np.sqrt(GM_M3_S2 / radius) * EARTH_RADIUS_M / radius)


@dataclass(frozen=True)
class Mission:
    """What the plan needs to know about a sensor's mission."""

    sensor: Sensor
    inclination_deg: float
    altitude_m: float
    start: np.datetime64
    end: np.datetime64
    """First and last acquisition day (inclusive)."""
    local_solar_time_h: tuple[float, float]
    line_time_s: float
    processor_version: str
    regions: tuple[tuple[str, float, float, float, float], ...]
    anchors: tuple[AnchorSite, ...]

    @property
    def ground_speed_m_s(self) -> float:
        return ground_speed(self.altitude_m)


ENMAP_MISSION = Mission(
    ENMAP,
    INCLINATION_DEG,
    ORBIT_ALTITUDE_M,
    MISSION_START,
    MISSION_END,
    LOCAL_SOLAR_TIME_H,
    LINE_TIME_S,
    PROCESSOR_VERSION,
    LAND_REGIONS,
    ANCHOR_SITES,
)
DESIS_MISSION = Mission(
    DESIS,
    inclination_deg=51.64,
    altitude_m=410_000.0,
    start=np.datetime64("2019-01-01", "D"),
    end=np.datetime64("2023-12-31", "D"),
    local_solar_time_h=(8.0, 16.0),
    line_time_s=4.1e-3,
    processor_version="0213",
    regions=CONUS_REGIONS,
    anchors=(),
)
"""DESIS on the ISS: operations began in 2018-08; the ISS orbit precesses, so acquisitions fall at
any daylight hour (8-16 h local solar time here); 30 m lines at ~7.3 km/s take ~4.1 ms."""
MISSIONS = {m.sensor.name: m for m in (ENMAP_MISSION, DESIS_MISSION)}


VISIT_COUNT_PMF: tuple[tuple[int, float], ...] = (
    (1, 0.603),
    (2, 0.270),
    (3, 0.060),
    (4, 0.025),
    (5, 0.012),
    (7, 0.010),
    (10, 0.007),
    (15, 0.005),
    (22, 0.003),
    (30, 0.003),
    (40, 0.002),
)
"""How many datatakes image one area of interest: (visits, probability). Calibrated so that at
11,636 tiles (1000 px) about 17.5% of 128 px locations are seen more than once (seeds 0-5:
16.4-18.4%, mean 17.5%), two thirds of those exactly twice, and some (0-33) more than 25 times,
as in the SpectralEarth paper (see ``coverage.location_visit_counts``). The tail decides most of
it: every extra 40-visit site adds a few hundred multiply-seen locations."""

STRIP_LENGTH_PMF: tuple[tuple[int, float], ...] = (
    (1, 0.14),
    (2, 0.20),
    (3, 0.20),
    (4, 0.14),
    (5, 0.10),
    (6, 0.07),
    (8, 0.06),
    (10, 0.04),
    (14, 0.03),
    (20, 0.02),
)
"""Tiles per datatake: (tiles, probability). Real datatakes run up to about 30 tiles (990 km)."""


@dataclass(frozen=True)
class VisitModel:
    """How the simulated mission revisits places: the parameters to calibrate the archive's
    overlap statistics with, kept together so a benchmark can pass its own."""

    visit_count_pmf: tuple[tuple[int, float], ...] = VISIT_COUNT_PMF
    strip_length_pmf: tuple[tuple[int, float], ...] = STRIP_LENGTH_PMF
    across_track_offset: float = 0.5
    """Largest across-track pointing offset of a visit from its site, in swath widths."""
    oversupply: float = 1.1
    """Visits are drawn for this many times the tiles asked for, then a random subset is kept,
    so that a small archive is not all one heavily revisited site."""
    anchors: tuple[AnchorSite, ...] = ()
    """Sites imaged before any random one, with their visit counts (and days, where given), in
    addition to the mission's own anchors; those the mission's orbit cannot see are skipped."""

    def mean_visits(self) -> float:
        return float(sum(k * p for k, p in self.visit_count_pmf) / sum(p for _, p in self.visit_count_pmf))

    def mean_strip_length(self) -> float:
        return float(sum(k * p for k, p in self.strip_length_pmf) / sum(p for _, p in self.strip_length_pmf))


DEFAULT_VISIT_MODEL = VisitModel()

DEMO_VISIT_MODEL = VisitModel(
    visit_count_pmf=((2, 0.3), (3, 0.3), (5, 0.2), (8, 0.2)),
    strip_length_pmf=((1, 0.5), (2, 0.5)),
    across_track_offset=0.1,
    oversupply=1.0,
    anchors=LABEL_ANCHOR_SITES,
)
"""A few dozen products that show what the mission statistics only show at scale: every site
seen several times, on short strips with small pointing offsets, so that tiles overlap; and the
label anchors (8 sites in the US Corn Belt in the summers of 2022/2023, 8 in northern Germany,
about 42 km apart: ``sites.LABEL_ANCHOR_SITES``), so that the demo yields the CORINE, CDL and
NLCD datasets too, each with enough spatial blocks for non-empty train, val and test splits."""

VISIT_MODELS = {"mission": DEFAULT_VISIT_MODEL, "demo": DEMO_VISIT_MODEL}


@dataclass(frozen=True)
class AcquisitionPlan:
    """One row per tile, ordered by acquisition time; every array has one entry per tile.

    Longitudes, latitudes and times are stored exactly as products write them (degrees rounded
    to 7 decimals, microseconds), so the catalog built from the plan and the catalog a scan
    builds from the written products agree to the last bit.
    """

    tile_size: int
    seed: int
    datatake: np.ndarray
    tile_number: np.ndarray
    tiles_in_datatake: np.ndarray
    site: np.ndarray
    start: np.ndarray
    """datetime64[us], UTC: first line of the tile."""
    stop: np.ndarray
    processed: np.ndarray
    """datetime64[s], UTC: when the ground segment processed the tile (in the product name)."""
    center_lon: np.ndarray
    center_lat: np.ndarray
    corner_lon: np.ndarray
    """(n, 4): upper_left, lower_left, lower_right, upper_right."""
    corner_lat: np.ndarray
    heading_deg: np.ndarray
    """True bearing of the flight direction at the scene centre."""
    pointing_deg: np.ndarray
    """Across-track off-nadir pointing of the datatake (positive: to the right of the track)."""
    epsg: np.ndarray
    center_x: np.ndarray
    center_y: np.ndarray
    along_x: np.ndarray
    """Unit vector of the flight direction (image lines) in the UTM grid."""
    along_y: np.ndarray
    grid_x0: np.ndarray
    grid_y0: np.ndarray
    width: np.ndarray
    height: np.ndarray
    model: VisitModel = field(default=DEFAULT_VISIT_MODEL, repr=False)
    mission: Mission = field(default=ENMAP_MISSION, repr=False)

    def __len__(self) -> int:
        return len(self.datatake)

    @property
    def side_m(self) -> float:
        """Swath width and tile length on the ground."""
        return self.tile_size * PIXEL_SIZE_M

    @property
    def tile_duration_us(self) -> int:
        return round(self.tile_size * self.mission.line_time_s * 1e6)

    def tile_ids(self) -> list[str]:
        return [
            f"DT{d:010d}_{t:03d}"
            for d, t in zip(self.datatake.tolist(), self.tile_number.tolist(), strict=True)
        ]

    def product_names(self, level: str = "L2A") -> list[str]:
        """The sensor's product name of every tile (EnMAP:
        ``ENMAP01-____L2A-DT<10>_<start>Z_<tile>_V010502_<processed>Z``)."""
        start = _compact_stamps(self.start)
        processed = _compact_stamps(self.processed)
        name, version = self.mission.sensor.format_name, self.mission.processor_version
        return [
            name(level=level, datatake=d, acquired=s, tile=t, version=version, processed=p)
            for d, s, t, p in zip(
                self.datatake.tolist(), start, self.tile_number.tolist(), processed, strict=True
            )
        ]

    def month_folders(self) -> list[str]:
        """``YYYY/MM`` of the acquisition: where pixel mode files the product."""
        months = np.datetime_as_string(self.start.astype("datetime64[M]"))
        return [m.replace("-", "/") for m in months.tolist()]

    def tile(self, i: int) -> Tile:
        """Row ``i`` as a :class:`Tile`."""
        return Tile(
            index=int(i),
            tile_size=self.tile_size,
            datatake=int(self.datatake[i]),
            tile_number=int(self.tile_number[i]),
            tiles_in_datatake=int(self.tiles_in_datatake[i]),
            site=int(self.site[i]),
            start=self.start[i],
            stop=self.stop[i],
            processed=self.processed[i],
            center_lon=float(self.center_lon[i]),
            center_lat=float(self.center_lat[i]),
            corner_lon=tuple(float(v) for v in self.corner_lon[i]),
            corner_lat=tuple(float(v) for v in self.corner_lat[i]),
            heading_deg=float(self.heading_deg[i]),
            pointing_deg=float(self.pointing_deg[i]),
            epsg=int(self.epsg[i]),
            center_x=float(self.center_x[i]),
            center_y=float(self.center_y[i]),
            along_x=float(self.along_x[i]),
            along_y=float(self.along_y[i]),
            grid_x0=float(self.grid_x0[i]),
            grid_y0=float(self.grid_y0[i]),
            width=int(self.width[i]),
            height=int(self.height[i]),
        )

    def crosses_antimeridian(self) -> np.ndarray:
        return (self.corner_lon.max(axis=1) - self.corner_lon.min(axis=1)) > 180.0


def _compact_stamps(times: np.ndarray) -> list[str]:
    text = np.datetime_as_string(times.astype("datetime64[s]"))
    return [t.replace("-", "").replace(":", "") for t in text.tolist()]


def ground_track_heading(lat_deg: np.ndarray, mission: Mission = ENMAP_MISSION) -> np.ndarray:
    """True bearing (deg) of the descending ground track of the orbit at latitude ``lat_deg``.

    The inertial heading is ``180 - asin(cos i / cos lat)``; the Earth turning east under the
    satellite adds a westward component of ``omega R cos(lat)``, which at mid latitudes turns
    the track by another 2.4 deg (together 14.3 deg off south at 47.6 N, as in real products).
    """
    lat = np.radians(np.asarray(lat_deg, dtype=np.float64))
    speed = mission.ground_speed_m_s
    ratio = np.clip(np.cos(np.radians(mission.inclination_deg)) / np.cos(lat), -1.0, 1.0)
    inertial = np.pi - np.arcsin(ratio)
    east = speed * np.sin(inertial) - EARTH_ROTATION_RAD_S * EARTH_RADIUS_M * np.cos(lat)
    north = speed * np.cos(inertial)
    return np.degrees(np.arctan2(east, north)) % 360.0


def utm_epsg(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Vectorised ``storage_schemas.enmap_product.utm_epsg_for``."""
    lon = (np.asarray(lon, dtype=np.float64) + 180.0) % 360.0 - 180.0
    zone = np.minimum(np.floor((lon + 180.0) / 6.0).astype(np.int64) + 1, 60)
    return (np.where(np.asarray(lat) >= 0, 32600, 32700) + zone).astype(np.int32)


@cache
def _to_utm(epsg: int) -> Transformer:
    return Transformer.from_crs(4326, int(epsg), always_xy=True)


@cache
def _from_utm(epsg: int) -> Transformer:
    return Transformer.from_crs(int(epsg), 4326, always_xy=True)


_GEOD = Geod(ellps="WGS84")


def _forward(lon: np.ndarray, lat: np.ndarray, azimuth: np.ndarray, distance: np.ndarray):
    """Geodesic step of signed length (a negative distance steps backwards)."""
    distance = np.asarray(distance, dtype=np.float64)
    azimuth = np.where(distance < 0, np.asarray(azimuth) + 180.0, azimuth)
    lon2, lat2, _ = _GEOD.fwd(lon, lat, azimuth, np.abs(distance))
    return np.asarray(lon2, dtype=np.float64), np.asarray(lat2, dtype=np.float64)


def _pmf(pairs: tuple[tuple[int, float], ...]) -> tuple[np.ndarray, np.ndarray]:
    values = np.array([k for k, _ in pairs], dtype=np.int64)
    weights = np.array([p for _, p in pairs], dtype=np.float64)
    return values, weights / weights.sum()


@dataclass(frozen=True)
class _Visits:
    """One row per datatake before it is cut into tiles."""

    site: np.ndarray
    lon: np.ndarray
    lat: np.ndarray
    length: np.ndarray


def _draw_visits(rng: np.random.Generator, tiles: int, model: VisitModel, mission: Mission) -> _Visits:
    """Anchor visits first, then visits of random sites in random order, cut at ``tiles``."""
    visit_values, visit_p = _pmf(model.visit_count_pmf)
    strip_values, strip_p = _pmf(model.strip_length_pmf)
    anchored = anchor_sites(model, mission)
    anchors = [(i, a) for i, a in enumerate(anchored) for _ in range(a.visits)]
    site = [np.array([i for i, _ in anchors], dtype=np.int64)]
    lon = [np.array([a.lon for _, a in anchors])]
    lat = [np.array([a.lat for _, a in anchors])]
    length = [np.array([a.strip_length for _, a in anchors], dtype=np.int64)]
    have = int(length[0].sum())
    target = max(tiles - have, 0) * model.oversupply
    per_site = model.mean_visits() * model.mean_strip_length()
    batch = max(8, int(np.ceil(target / per_site / 8)))
    sites_so_far = len(anchored)
    extra_site, extra_lon, extra_lat, extra_len = [], [], [], []
    drawn = 0
    while drawn < target:
        sites = draw_sites(rng, batch, mission.regions)
        visits = rng.choice(visit_values, size=batch, p=visit_p)
        owner = np.repeat(np.arange(batch), visits)
        strips = rng.choice(strip_values, size=len(owner), p=strip_p)
        extra_site.append(owner + sites_so_far)
        extra_lon.append(sites.lon[owner])
        extra_lat.append(sites.lat[owner])
        extra_len.append(strips)
        sites_so_far += batch
        drawn += int(strips.sum())
    if extra_site:
        order = rng.permutation(sum(len(s) for s in extra_site))
        site.append(np.concatenate(extra_site)[order])
        lon.append(np.concatenate(extra_lon)[order])
        lat.append(np.concatenate(extra_lat)[order])
        length.append(np.concatenate(extra_len)[order])
    visits = _Visits(*(np.concatenate(a) for a in (site, lon, lat, length)))
    # Keep whole visits until the count is reached, then cut the last strip short.
    cumulative = np.cumsum(visits.length)
    keep = int(np.searchsorted(cumulative, tiles)) + 1
    length = visits.length[:keep].copy()
    length[-1] -= int(cumulative[keep - 1] - tiles)
    return _Visits(visits.site[:keep], visits.lon[:keep], visits.lat[:keep], length)


def anchor_sites(model: VisitModel, mission: Mission) -> tuple[AnchorSite, ...]:
    """The mission's anchors (EnMAP: the antimeridian), then the visit model's extra ones that
    the mission's orbit can image (DESIS on the ISS sees no further than its inclination)."""
    reachable = tuple(a for a in model.anchors if abs(a.lat) <= mission.inclination_deg)
    return mission.anchors + reachable


def _anchor_days(day: np.ndarray, site: np.ndarray, anchors: tuple[AnchorSite, ...], seed: int) -> np.ndarray:
    """Move the visits of anchors with date windows into them (the k-th visit of an anchor into
    its k-th window, cyclically), drawn from a stream of their own so that other visits keep
    their days; anchors without windows keep the day drawn for them."""
    if not any(a.date_windows for a in anchors):
        return day
    rng = np.random.default_rng([seed, 0x414E4348])  # "ANCH"
    day = day.copy()
    for index, anchor in enumerate(anchors):
        for k, visit in enumerate(np.flatnonzero(site == index).tolist()):
            if not anchor.date_windows:
                break
            first, last = (np.datetime64(d, "D") for d in anchor.date_windows[k % len(anchor.date_windows)])
            days = int((last - first).astype(int)) + 1
            day[visit] = first + np.timedelta64(int(rng.integers(0, days)), "D")
    return day


def plan_acquisitions(
    tiles: int,
    tile_size: int = 1000,
    seed: int = 0,
    model: VisitModel = DEFAULT_VISIT_MODEL,
    mission: Mission = ENMAP_MISSION,
) -> AcquisitionPlan:
    """The ``tiles`` tiles of a simulated archive of ``mission``, ordered by acquisition time.

    Deterministic in (tiles, tile_size, seed, model, mission). Ground sizes scale with ``tile_size``
    (swath and tile length are ``tile_size * 30 m``), so a benchmark with 32 px tiles keeps the
    overlap pattern of the 1000 px mission at a 31x smaller scale.
    """
    if tiles < 1:
        raise ValueError(f"tiles must be at least 1, got {tiles}")
    if tile_size < 8:
        raise ValueError(f"tile_size must be at least 8 px, got {tile_size}")
    rng = np.random.default_rng([seed, 0x504C414E])  # "PLAN": a stream of its own
    side = tile_size * PIXEL_SIZE_M
    visits = _draw_visits(rng, tiles, model, mission)
    n_visits = len(visits.site)

    # Per visit: pointing offset across track, where the site falls along the strip, the day.
    across = rng.uniform(-model.across_track_offset, model.across_track_offset, n_visits) * side
    site_at = rng.random(n_visits)
    n_days = int((mission.end - mission.start).astype(np.int64)) + 1
    day = mission.start + rng.integers(0, n_days, n_visits).astype("timedelta64[D]")
    day = _anchor_days(day, visits.site, anchor_sites(model, mission), seed)
    local_h = rng.uniform(*mission.local_solar_time_h, n_visits)
    delay_days = rng.uniform(*PROCESSING_DELAY_DAYS, n_visits)
    datatake_gaps = rng.geometric(0.35, n_visits)

    # Per tile: the along-track position of its centre relative to the site.
    visit_of_tile = np.repeat(np.arange(n_visits), visits.length)
    first_tile = np.concatenate([[0], np.cumsum(visits.length)[:-1]])
    j = np.arange(len(visit_of_tile)) - first_tile[visit_of_tile]
    along = (j + 0.5 - site_at[visit_of_tile] * visits.length[visit_of_tile]) * side

    heading_site = ground_track_heading(visits.lat, mission)
    q_lon, q_lat = _forward(visits.lon, visits.lat, heading_site - 90.0, across)
    heading_q = ground_track_heading(q_lat, mission)
    c_lon, c_lat = _forward(q_lon[visit_of_tile], q_lat[visit_of_tile], heading_q[visit_of_tile], along)
    center_lon, center_lat = np.round(c_lon, 7), np.round(c_lat, 7)

    # Times: the site is crossed at the drawn local solar time; no two datatakes overlap.
    tile_us = round(tile_size * mission.line_time_s * 1e6)
    site_utc_h = local_h - visits.lon / 15.0
    t_site = day.astype("datetime64[us]").astype(np.int64) + np.round(site_utc_h * 3.6e9).astype(np.int64)
    t0 = t_site - np.round(site_at * visits.length * tile_us).astype(np.int64)
    duration = visits.length * tile_us + int(DATATAKE_GAP_S * 1e6)
    order = np.argsort(t0, kind="stable")
    before = np.concatenate([[0], np.cumsum(duration[order])[:-1]])
    shifted = np.empty_like(t0)
    shifted[order] = np.maximum.accumulate(t0[order] - before) + before
    datatake = np.empty(n_visits, dtype=np.int64)
    datatake[order] = FIRST_DATATAKE + np.cumsum(datatake_gaps) - datatake_gaps[0]
    start_us = shifted[visit_of_tile] + j * tile_us
    processed_s = (shifted // 1_000_000 + np.round(delay_days * 86400).astype(np.int64))[
        visit_of_tile
    ] + 37 * j  # tiles of a datatake are processed one after the other

    geometry = tile_geometry(center_lon, center_lat, side, mission)
    tile_order = np.lexsort((j, start_us))
    columns = {
        "datatake": datatake[visit_of_tile],
        "tile_number": (j + 1).astype(np.int16),
        "tiles_in_datatake": visits.length[visit_of_tile].astype(np.int16),
        "site": visits.site[visit_of_tile].astype(np.int32),
        "start": start_us.astype("datetime64[us]"),
        "stop": (start_us + tile_us).astype("datetime64[us]"),
        "processed": processed_s.astype("datetime64[s]"),
        "center_lon": center_lon,
        "center_lat": center_lat,
        "pointing_deg": np.degrees(np.arctan2(across, mission.altitude_m))[visit_of_tile],
        **geometry,
    }
    return AcquisitionPlan(
        tile_size=tile_size,
        seed=seed,
        model=model,
        mission=mission,
        **{k: np.ascontiguousarray(v[tile_order]) for k, v in columns.items()},
    )


def tile_geometry(
    center_lon: np.ndarray, center_lat: np.ndarray, side_m: float, mission: Mission = ENMAP_MISSION
) -> dict[str, np.ndarray]:
    """Corners, UTM zone, rotation and pixel grid of square tiles centred on the given points.

    Each tile lies in the UTM zone of its centre, rotated so that its lines run along the
    ground track; the raster is the bounding box of the square snapped outwards to the 30 m grid
    with 15 m offsets. Corners come back in ring order upper_left, lower_left, lower_right,
    upper_right (counter-clockwise), rounded to 7 decimals (1 cm) as METADATA.XML writes them.
    """
    n = len(center_lon)
    epsg = utm_epsg(center_lon, center_lat)
    heading = ground_track_heading(center_lat, mission)
    ahead_lon, ahead_lat = _forward(center_lon, center_lat, heading, np.full(n, 1000.0))
    cx, cy = np.empty(n), np.empty(n)
    ax, ay = np.empty(n), np.empty(n)
    corner_x, corner_y = np.empty((n, 4)), np.empty((n, 4))
    corner_lon, corner_lat = np.empty((n, 4)), np.empty((n, 4))
    half = side_m / 2.0
    # upper_left, lower_left, lower_right, upper_right in (along, across) half-side units
    along_sign = np.array([-1.0, 1.0, 1.0, -1.0])
    across_sign = np.array([-1.0, -1.0, 1.0, 1.0])
    for code in np.unique(epsg):
        rows = np.flatnonzero(epsg == code)
        x, y = _to_utm(int(code)).transform(center_lon[rows], center_lat[rows])
        x2, y2 = _to_utm(int(code)).transform(ahead_lon[rows], ahead_lat[rows])
        dx, dy = np.asarray(x2) - x, np.asarray(y2) - y
        norm = np.hypot(dx, dy)
        ux, uy = dx / norm, dy / norm  # along track (down the image)
        vx, vy = -uy, ux  # across track, left to right in the image: along turned by -90 deg
        kx = x[:, None] + half * (along_sign * ux[:, None] + across_sign * vx[:, None])
        ky = y[:, None] + half * (along_sign * uy[:, None] + across_sign * vy[:, None])
        lon, lat = _from_utm(int(code)).transform(kx.ravel(), ky.ravel())
        cx[rows], cy[rows], ax[rows], ay[rows] = x, y, ux, uy
        corner_x[rows], corner_y[rows] = kx, ky
        corner_lon[rows] = np.asarray(lon).reshape(-1, 4)
        corner_lat[rows] = np.asarray(lat).reshape(-1, 4)
    x0 = np.floor((corner_x.min(axis=1) - GRID_OFFSET_M) / PIXEL_SIZE_M) * PIXEL_SIZE_M + GRID_OFFSET_M
    x1 = np.ceil((corner_x.max(axis=1) - GRID_OFFSET_M) / PIXEL_SIZE_M) * PIXEL_SIZE_M + GRID_OFFSET_M
    y0 = np.ceil((corner_y.max(axis=1) - GRID_OFFSET_M) / PIXEL_SIZE_M) * PIXEL_SIZE_M + GRID_OFFSET_M
    y1 = np.floor((corner_y.min(axis=1) - GRID_OFFSET_M) / PIXEL_SIZE_M) * PIXEL_SIZE_M + GRID_OFFSET_M
    return {
        "corner_lon": np.round(corner_lon, 7),
        "corner_lat": np.round(corner_lat, 7),
        "heading_deg": heading,
        "epsg": epsg,
        "center_x": cx,
        "center_y": cy,
        "along_x": ax,
        "along_y": ay,
        "grid_x0": x0,
        "grid_y0": y0,
        "width": np.round((x1 - x0) / PIXEL_SIZE_M).astype(np.int32),
        "height": np.round((y0 - y1) / PIXEL_SIZE_M).astype(np.int32),
    }


@dataclass(frozen=True)
class Tile:
    """One row of the plan as plain Python values: what writing one product needs."""

    index: int
    tile_size: int
    datatake: int
    tile_number: int
    tiles_in_datatake: int
    site: int
    start: np.datetime64
    stop: np.datetime64
    processed: np.datetime64
    center_lon: float
    center_lat: float
    corner_lon: tuple[float, float, float, float]
    corner_lat: tuple[float, float, float, float]
    heading_deg: float
    pointing_deg: float
    epsg: int
    center_x: float
    center_y: float
    along_x: float
    along_y: float
    grid_x0: float
    grid_y0: float
    width: int
    height: int

    @property
    def side_m(self) -> float:
        return self.tile_size * PIXEL_SIZE_M


def swath_mask(tile: Tile) -> np.ndarray:
    """(height, width) bool: pixels whose centres lie inside the tile's rotated swath square."""
    x = tile.grid_x0 + (np.arange(tile.width) + 0.5) * PIXEL_SIZE_M - tile.center_x
    y = tile.grid_y0 - (np.arange(tile.height) + 0.5) * PIXEL_SIZE_M - tile.center_y
    ux, uy = tile.along_x, tile.along_y
    along = x[None, :] * ux + y[:, None] * uy
    across = x[None, :] * -uy + y[:, None] * ux
    half = tile.side_m / 2.0
    return (np.abs(along) <= half) & (np.abs(across) <= half)
