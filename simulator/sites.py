"""Where the simulated mission points its instrument: areas of interest on land all over the globe.

EnMAP is a tasked mission: it images places that users ordered, not a continuous swath. A site is
such a place, drawn from a coarse built-in map of land regions (boxes that are mostly land, so the
simulator needs no coastline data), weighted by area. A few fixed *anchor* sites are always
present because later stages must handle them: the antimeridian through Taveuni (Fiji), where
footprints cross +-180 deg. The demo visit model adds label anchors (:data:`LABEL_ANCHOR_SITES`):
farmland in the US Corn Belt imaged in the summers the EnMAP-CDL dataset takes (June-September
2022 and 2023) and farmland in northern Germany (CORINE), so that a demo archive yields every
downstream label dataset, each with train, validation and test samples.

Why the label anchors are spread out (:func:`site_grid`): the label datasets' default split is
spatially blocked (``assets.labels.splits``: whole 20 km blocks go to one split, with a 4 km gap
between splits), and a split of 10% only takes a block holding at most a fifth of the samples.
One place imaged a few times is one block, so all its samples went to train. Sites about 40 km
apart (a 20 km block, the gap and a 384 px demo tile of 11.5 km fit between two) each fall in
blocks of their own, so several sites in a grid give the split enough blocks to fill val and test
with whole sites; the demo's data changes, not the split the real recipe uses.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LAND_REGIONS: tuple[tuple[str, float, float, float, float], ...] = (
    # name, lon_min, lon_max, lat_min, lat_max: boxes that are mostly land
    ("Iberia", -8.5, 2.0, 37.5, 43.0),
    ("France", -1.0, 7.0, 43.5, 49.5),
    ("Central Europe", 6.5, 24.0, 47.5, 54.0),
    ("Balkans", 19.0, 28.0, 41.0, 46.0),
    ("Eastern Europe", 24.0, 45.0, 47.0, 57.0),
    ("Fennoscandia", 24.0, 31.0, 61.0, 67.0),
    ("Anatolia", 29.0, 43.0, 37.0, 40.5),
    ("Iran", 50.0, 61.0, 28.0, 35.0),
    ("Arabia", 42.0, 56.0, 18.0, 28.0),
    ("Kazakh steppe", 50.0, 85.0, 44.0, 54.0),
    ("Western Siberia", 60.0, 90.0, 55.0, 64.0),
    ("Eastern Siberia", 100.0, 130.0, 56.0, 66.0),
    ("Tibetan Plateau", 82.0, 100.0, 30.0, 36.0),
    ("Indo-Gangetic Plain", 72.0, 88.0, 22.0, 30.0),
    ("Deccan", 74.0, 84.0, 12.0, 21.0),
    ("Indochina", 99.0, 107.0, 13.0, 21.0),
    ("South China", 104.0, 119.0, 23.0, 31.0),
    ("North China Plain", 110.0, 120.0, 33.0, 41.0),
    ("Mongolia", 95.0, 118.0, 42.0, 49.0),
    ("Sahara", -8.0, 30.0, 18.0, 30.0),
    ("Sahel", -12.0, 32.0, 11.0, 16.0),
    ("Congo Basin", 12.0, 30.0, -5.0, 5.0),
    ("East Africa", 30.0, 40.0, -8.0, 8.0),
    ("Southern Africa", 16.0, 32.0, -30.0, -16.0),
    ("Madagascar", 44.5, 48.5, -23.0, -15.0),
    ("Great Plains", -110.0, -94.0, 32.0, 48.0),
    ("US West", -121.0, -110.0, 34.0, 46.0),
    ("US East", -93.0, -79.0, 33.0, 43.0),
    ("Mexico", -109.0, -98.0, 19.0, 29.0),
    ("Canadian Shield", -118.0, -92.0, 52.0, 60.0),
    ("Alaska", -158.0, -143.0, 62.0, 68.0),
    ("Amazonia", -70.0, -50.0, -12.0, -3.0),
    ("Brazilian Highlands", -55.0, -42.0, -22.0, -10.0),
    ("Pampas", -65.0, -58.0, -36.0, -27.0),
    ("Patagonia", -71.0, -66.0, -46.0, -38.0),
    ("Andes", -76.0, -68.0, -16.0, -6.0),
    ("Australian Outback", 118.0, 146.0, -31.0, -20.0),
    ("South-East Australia", 142.0, 151.0, -37.5, -30.0),
    ("New Zealand North Island", 174.5, 177.0, -39.5, -37.0),
)
"""Coarse land boxes (name, lon_min, lon_max, lat_min, lat_max). Kept within +-68 deg latitude:
a sun-synchronous orbit of 97.96 deg inclination images higher latitudes only at grazing angles."""


CONUS_REGIONS: tuple[tuple[str, float, float, float, float], ...] = (
    ("Central Valley", -122.2, -119.2, 35.2, 39.8),
    *(r for r in LAND_REGIONS if r[0] in ("Great Plains", "US West", "US East")),
)
"""Where simulated DESIS sites lie: land in the conterminous US only, because the DESIS-CDL
benchmark pairs DESIS tiles with the USDA Cropland Data Layer (CONUS). All within the ISS's
+-51.6 deg reach. The Central Valley box (California's crop belt) comes first so that biomes
look it up before the wider US West box."""


@dataclass(frozen=True)
class AnchorSite:
    """A place every simulated archive images, with a fixed number of visits."""

    name: str
    lon: float
    lat: float
    visits: int
    strip_length: int
    date_windows: tuple[tuple[str, str], ...] = ()
    """Inclusive ``(first, last)`` days (ISO) the visits fall in, taken in turn; empty: any day
    of the mission, like other sites."""


ANCHOR_SITES: tuple[AnchorSite, ...] = (
    # The 180th meridian runs through Taveuni: every footprint centred on it crosses +-180 deg,
    # because across-track offsets stay within half a swath.
    AnchorSite("Taveuni (Fiji), antimeridian", 180.0, -16.8, visits=2, strip_length=2),
)

SUMMERS_2022_2023 = (("2022-06-01", "2022-09-30"), ("2023-06-01", "2023-09-30"))
"""The acquisition months of EnMAP-CDL (``storage_schemas.label_products``)."""

SITE_SPACING_KM = 42.0
"""Distance between neighbouring label anchors: more than a 20 km split block, the 4 km gap and a
demo tile (11.5 km), so every site's patches lie in blocks of their own."""
KM_PER_DEG_LAT = 111.2


def site_grid(
    name: str,
    lon: float,
    lat: float,
    shape: tuple[int, int],
    spacing_km: float = SITE_SPACING_KM,
    visits: int = 1,
    strip_length: int = 1,
    date_windows: tuple[tuple[str, str], ...] = (),
) -> tuple[AnchorSite, ...]:
    """``rows x columns`` anchor sites ``spacing_km`` apart, the first at (lon, lat), the grid
    growing east and north; named ``<name> <k>``."""
    rows, columns = shape
    dlat = spacing_km / KM_PER_DEG_LAT
    sites = []
    for r in range(rows):
        row_lat = lat + r * dlat
        dlon = spacing_km / (KM_PER_DEG_LAT * float(np.cos(np.radians(row_lat))))
        for c in range(columns):
            sites.append(
                AnchorSite(
                    f"{name} {len(sites) + 1}",
                    round(lon + c * dlon, 4),
                    round(row_lat, 4),
                    visits=visits,
                    strip_length=strip_length,
                    date_windows=date_windows,
                )
            )
    return tuple(sites)


CORN_BELT_SITES = site_grid("Corn Belt (Illinois), CDL", -90.0, 40.2, (2, 4), date_windows=SUMMERS_2022_2023)
"""Central Illinois (biome "cropland"), 8 sites in summer 2022/2023: EnMAP-CDL, EnMAP-NLCD, and
DESIS-CDL (the ISS reaches 40 deg N)."""
LOWER_SAXONY_SITES = site_grid("Lower Saxony (Germany), CORINE", 8.4, 52.3, (2, 4))
"""Northern Germany around Hannover (biome "cropland", where the real CORINE sample lies), 8 sites:
EnMAP-CORINE (beyond the ISS's 51.6 deg, so not in DESIS archives)."""
LABEL_ANCHOR_SITES: tuple[AnchorSite, ...] = CORN_BELT_SITES + LOWER_SAXONY_SITES
"""Anchors of the demo visit model only: the mission model's archives stay as they were."""


@dataclass(frozen=True)
class Sites:
    """Site positions (deg) and the land region each was drawn from (-1 for anchors)."""

    lon: np.ndarray
    lat: np.ndarray
    region: np.ndarray

    def __len__(self) -> int:
        return len(self.lon)


def draw_sites(rng: np.random.Generator, n: int, regions: tuple = LAND_REGIONS) -> Sites:
    """``n`` sites uniform on the area of the land regions (area on the sphere, not in degrees)."""
    boxes = np.array([r[1:] for r in regions], dtype=np.float64)
    lon0, lon1, lat0, lat1 = boxes.T
    sin0, sin1 = np.sin(np.radians(lat0)), np.sin(np.radians(lat1))
    area = (lon1 - lon0) * (sin1 - sin0)
    region = rng.choice(len(boxes), size=n, p=area / area.sum())
    u, v = rng.random(n), rng.random(n)
    lon = lon0[region] + u * (lon1 - lon0)[region]
    lat = np.degrees(np.arcsin(sin0[region] + v * (sin1 - sin0)[region]))
    return Sites(lon=lon, lat=lat, region=region.astype(np.int32))
