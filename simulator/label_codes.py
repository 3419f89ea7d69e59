"""How simulated ground cover becomes the codes of CORINE, CDL and NLCD.

The dominant material of a cell decides its class family, so a model can learn the labels from
the pixels: tree -> forest, low vegetation -> crops or pasture, dry grass -> grassland (shrub
where trees mix in), soil and sand -> bare or fallow, roof and pavement -> urban / developed
(intensity from the built-up share), water -> water, and vegetation with a large water share ->
wetland. What spectra cannot tell apart comes from fields and hashes pinned to the ground
(``ground_cover``): forest leaf type, and the crop of each field parcel. Crops are drawn with
weights, a few common (corn, soybeans) and many rare, as in the real CDL, which is what makes
EnMAP-CDL balance its classes. Perennial crops (orchards, vineyards, pasture) keep their parcel
every year; annual crops are drawn again each year (rotation). NLCD's cultivated crops and
pasture/hay follow the same parcels, so the products agree with each other as real ones do.
"""

from __future__ import annotations

import numpy as np

from simulator.ground_cover import GroundCover, unit_interval
from simulator.scene import splitmix64
from simulator.spectra import SURFACE_MATERIALS

WETLAND_WATER_SHARE = 0.2
"""Vegetated cells with more than this share of water are wetlands."""
SHRUB_TREE_SHARE = 0.15
"""Dry-grass cells with more than this share of trees are shrubland / transitional woodland."""
LEAF_SPLIT = (-0.35, 0.35)
"""Leaf-type field below / above: broad-leaved / needle-leaved; in between: mixed forest."""
_URBAN_STEPS = (0.45, 0.6, 0.75)
"""Built-up (roof + pavement) share that moves a developed cell up one intensity class."""

CDL_CROP_WEIGHTS: tuple[tuple[int, float, bool], ...] = (
    # (CDL code, share of low-vegetation parcels, perennial)
    (1, 0.27, False),  # Corn
    (5, 0.22, False),  # Soybeans
    (24, 0.07, False),  # Winter wheat
    (176, 0.09, True),  # Grass/Pasture
    (36, 0.06, True),  # Alfalfa
    (2, 0.04, False),  # Cotton
    (4, 0.03, False),  # Sorghum
    (3, 0.025, False),  # Rice
    (6, 0.015, False),  # Sunflower
    (54, 0.015, False),  # Tomatoes
    (42, 0.01, False),  # Dry beans
    (43, 0.01, False),  # Potatoes
    (69, 0.03, True),  # Grapes
    (75, 0.03, True),  # Almonds
    (72, 0.015, True),  # Citrus
    (76, 0.015, True),  # Walnuts
    (204, 0.012, True),  # Pistachios
    (210, 0.008, True),  # Prunes
    (45, 0.01, True),  # Sugarcane
    (68, 0.008, True),  # Apples
    (56, 0.004, True),  # Hops
)
"""Not regional: every CONUS parcel draws from one table, so a small demo sees many classes."""
CDL_NON_CROP = {
    "water": 111,
    "developed": (121, 122, 123, 124),  # open space, low, medium, high intensity
    "forest": (141, 142, 143),  # deciduous, evergreen, mixed
    "shrubland": 152,
    "grass": 176,
    "soil": 61,  # Fallow/Idle Cropland: bare fields
    "sand": 131,  # Barren
    "wetland": (190, 195),  # woody, herbaceous
}
CDL_PASTURE_CODES = frozenset({176, 36})
"""Parcels NLCD maps as pasture/hay (81) rather than cultivated crops (82)."""

NLCD_CODES = {
    "water": 11,
    "developed": (21, 22, 23, 24),
    "forest": (41, 42, 43),
    "shrubland": 52,
    "grass": 71,
    "soil": 31,
    "sand": 31,
    "wetland": (90, 95),
    "pasture": 81,
    "crops": 82,
}

CLC_AGRICULTURE_WEIGHTS: tuple[tuple[int, float, bool], ...] = (
    # (CLC grid code, share of low-vegetation parcels, only south of 45 N)
    (12, 0.42, False),  # 211 Non-irrigated arable land
    (18, 0.18, False),  # 231 Pastures
    (20, 0.11, False),  # 242 Complex cultivation patterns
    (21, 0.07, False),  # 243 Agriculture with natural vegetation
    (15, 0.05, False),  # 221 Vineyards
    (16, 0.04, False),  # 222 Fruit trees and berry plantations
    (19, 0.02, False),  # 241 Annual crops associated with permanent crops
    (17, 0.04, True),  # 223 Olive groves
    (13, 0.03, True),  # 212 Permanently irrigated land
    (14, 0.01, True),  # 213 Rice fields
    (22, 0.03, True),  # 244 Agro-forestry areas
)
"""Southern classes become non-irrigated arable land north of 45 N."""
CLC_CODES = {
    "water": 41,  # 512 Water bodies
    "developed": (2, 2, 1, 3),  # 112, 112, 111 continuous urban, 121 industrial (by intensity)
    "forest": (23, 24, 25),  # 311 broad-leaved, 312 coniferous, 313 mixed
    "shrubland": 29,  # 324 Transitional woodland-shrub
    "grass": 26,  # 321 Natural grasslands
    "soil": 12,  # 211: bare soil in Europe is a ploughed field
    "sand": 30,  # 331 Beaches, dunes, sands
    "wetland": (35, 35),  # 411 Inland marshes
}
CLC_SOUTH_LAT = 45.0


def _index(material: str) -> int:
    return SURFACE_MATERIALS.index(material)


def _weighted(u: np.ndarray, codes: np.ndarray, weights: np.ndarray) -> np.ndarray:
    edges = np.cumsum(weights) / weights.sum()
    return codes[np.minimum(np.searchsorted(edges, u, side="right"), len(codes) - 1)]


def cdl_parcel_crops(parcel: np.ndarray, year: int) -> np.ndarray:
    """CDL code of every parcel hash in ``year``: perennials fixed, annual crops redrawn yearly."""
    codes = np.array([c for c, _, _ in CDL_CROP_WEIGHTS])
    weights = np.array([w for _, w, _ in CDL_CROP_WEIGHTS])
    perennial = np.array([p for _, _, p in CDL_CROP_WEIGHTS])
    first = _weighted(unit_interval(parcel), codes, weights)
    with np.errstate(over="ignore"):
        yearly = splitmix64(parcel ^ splitmix64(np.uint64(year)))
    annual = _weighted(unit_interval(yearly), codes[~perennial], weights[~perennial])
    return np.where(np.isin(first, codes[perennial]), first, annual)


def _families(cover: GroundCover, table: dict, agriculture: np.ndarray) -> np.ndarray:
    """Codes from the dominant material with the family codes of ``table``; low-vegetation cells
    take ``agriculture`` (one code per cell)."""
    material = cover.material
    out = np.zeros(material.shape, dtype=np.int32)
    built = cover.share("roof", "pavement")
    intensity = np.searchsorted(np.array(_URBAN_STEPS), built)
    leaf = np.digitize(cover.leaf, LEAF_SPLIT)  # 0 broad, 1 mixed, 2 needle
    forest = np.array(table["forest"])[np.array([0, 2, 1])[leaf]]
    shrub = cover.abundance[_index("tree")] > SHRUB_TREE_SHARE
    rules = {
        "tree": forest,
        "low_vegetation": agriculture,
        "dry_grass": np.where(shrub, table["shrubland"], table["grass"]),
        "soil": table["soil"],
        "sand": table["sand"],
        "roof": np.array(table["developed"])[intensity],
        "pavement": np.array(table["developed"])[intensity],
        "water": table["water"],
    }
    for name, code in rules.items():
        where = material == _index(name)
        out[where] = code[where] if isinstance(code, np.ndarray) else code
    wet = cover.abundance[_index("water")] > WETLAND_WATER_SHARE
    woody, herbaceous = table["wetland"]
    out[wet & (material == _index("tree"))] = woody
    out[wet & (material == _index("low_vegetation"))] = herbaceous
    return out.astype(np.uint8)


def cdl_codes(cover: GroundCover, year: int) -> np.ndarray:
    """uint8 CDL codes of ``year`` (never 0: every rendered cell is mapped)."""
    return _families(cover, CDL_NON_CROP, cdl_parcel_crops(cover.parcel, year))


def nlcd_codes(cover: GroundCover, year: int) -> np.ndarray:
    """uint8 NLCD codes of ``year``; farmland follows the CDL parcels of that year."""
    crops = cdl_parcel_crops(cover.parcel, year)
    farm = np.where(np.isin(crops, list(CDL_PASTURE_CODES)), NLCD_CODES["pasture"], NLCD_CODES["crops"])
    return _families(cover, NLCD_CODES, farm)


def corine_grid_codes(cover: GroundCover) -> np.ndarray:
    """uint8 CLC grid codes (1-44, the official raster's convention)."""
    codes = np.array([c for c, _, _ in CLC_AGRICULTURE_WEIGHTS])
    weights = np.array([w for _, w, _ in CLC_AGRICULTURE_WEIGHTS])
    south_only = np.array([s for _, _, s in CLC_AGRICULTURE_WEIGHTS])
    farm = _weighted(unit_interval(cover.parcel), codes, weights)
    north = cover.lat >= CLC_SOUTH_LAT
    farm = np.where(north & np.isin(farm, codes[south_only]), 12, farm)
    return _families(cover, CLC_CODES, farm)
