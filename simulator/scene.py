"""The pixels of one simulated product: landscape, atmosphere, clouds, and the quality masks.

The landscape is a linear mixture of endmember spectra whose abundances are smooth random fields
pinned to the ground, not to the product: the fields are value noise on lattices in UTM
coordinates, hashed from (seed, zone, material, lattice node). Two products that overlap
therefore show the same fields, lakes and towns at the same place, with a seasonal shift of
vegetation against dry grass and soil, as a time series of the real mission would. Sensor noise,
clouds, haze, cirrus and snow are drawn per acquisition.

Masks are drawn with exact pixel counts: a cover target of c% of the swath becomes
``round(c / 100 * valid pixels)`` flagged pixels (the top of a smooth field), and METADATA.XML
reports the fraction of the mask actually written, so masks and XML agree to rounding.

The image is rendered in row blocks and handed to a sink block by block, so a 1000 px tile
(224 x 1250 x 1250 int16, 700 MB) never needs its float version in memory.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import numpy as np

from simulator.acquisitions import PIXEL_SIZE_M, Tile, swath_mask
from simulator.sites import LAND_REGIONS
from simulator.spectra import SURFACE_MATERIALS, SpectralLibrary
from simulator.sun import solar_position
from storage_schemas.enmap_product import NO_SIGNAL_BANDS_NM, NODATA, REFLECTANCE_SCALE

QUICKLOOK_VNIR_NM = (847.1, 671.21, 548.06)
QUICKLOOK_SWIR_NM = (2201.0, 1645.3, 1051.3)
"""Red, green, blue of the quicklooks, as the real METADATA.XML names them (``qlChannels``)."""
NOISY_BANDS_NM = ((1340.0, 1460.0), (1790.0, 1960.0), (2400.0, 2500.0))
"""Where real L2A reflectance is noisy (water-vapour absorption, detector edge)."""

_BIOMES = {
    "cropland": (-0.4, 1.2, 0.2, 0.9, -2.5, -1.3, -1.5, -1.8),
    "forest": (1.6, 0.5, -1.2, -1.0, -3.0, -2.8, -2.8, -0.8),
    "desert": (-3.5, -2.8, 0.0, 0.8, 1.6, -3.0, -3.0, -3.5),
    "steppe": (-1.6, 0.2, 1.3, 0.7, -0.6, -3.0, -3.0, -2.2),
    "mountain": (0.4, 0.5, 0.3, 0.9, -1.0, -3.0, -3.0, -1.8),
    "tropical": (1.4, 0.7, -1.0, -0.5, -2.0, -2.2, -2.4, -0.3),
    "mixed": (0.3, 0.8, 0.2, 0.5, -1.5, -1.5, -1.7, -1.2),
}
"""Log-weights of SURFACE_MATERIALS (tree, low_vegetation, dry_grass, soil, sand, roof,
pavement, water) per biome: the prior the smooth fields vary around."""
_REGION_BIOME = {
    "Sahara": "desert",
    "Arabia": "desert",
    "Australian Outback": "desert",
    "Iran": "desert",
    "Sahel": "steppe",
    "Kazakh steppe": "steppe",
    "Mongolia": "steppe",
    "Patagonia": "steppe",
    "Southern Africa": "steppe",
    "Tibetan Plateau": "mountain",
    "Andes": "mountain",
    "US West": "mountain",
    "Anatolia": "mountain",
    "Congo Basin": "tropical",
    "Amazonia": "tropical",
    "Indochina": "tropical",
    "Madagascar": "tropical",
    "East Africa": "tropical",
    "Western Siberia": "forest",
    "Eastern Siberia": "forest",
    "Canadian Shield": "forest",
    "Alaska": "forest",
    "Fennoscandia": "forest",
    "South China": "forest",
    "New Zealand North Island": "cropland",
}
SCALES_M = ((3000.0, 1.0), (900.0, 0.7), (240.0, 0.35))
"""Value-noise lattices of the abundance fields: (node spacing, amplitude)."""
SOFTMAX_TEMPERATURE = 0.35
NOISE_BANK_SIZE = 1 << 23
"""Sensor noise is drawn once per process (8 Mi normal numbers) and read at random offsets:
drawing 350 M normal numbers for every 1000 px product would cost seconds."""


@dataclass
class SceneResult:
    """What the rest of the product is written from, after the image rows went to the sink."""

    masks: dict[str, np.ndarray]
    """uint8 (H, W): cloud, cloud_shadow, haze, snow, cirrus (1 = flagged) and classes (1, 2, 3)."""
    covers: dict[str, float]
    """Percent of the swath pixels, rounded to whole percent as DLR writes them."""
    water_cover: float
    valid_pixels: int
    band_mean: np.ndarray
    band_std: np.ndarray
    quicklook_vnir: np.ndarray
    quicklook_swir: np.ndarray
    sun_elevation: float
    sun_azimuth: float
    biome: str


def biome_of(lon: float, lat: float, regions: tuple = LAND_REGIONS) -> str:
    """The biome of the land region a point lies in (``mixed`` outside all of them)."""
    for name, lon0, lon1, lat0, lat1 in regions:
        if lon0 <= lon <= lon1 and lat0 <= lat <= lat1:
            return _REGION_BIOME.get(name, "cropland")
    return "tropical" if abs(lat) < 23.5 else "mixed"


def splitmix64(z: np.ndarray) -> np.ndarray:
    z = z + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _interp_matrix(coords: np.ndarray, nodes: np.ndarray, spacing: float) -> np.ndarray:
    """(len(coords), len(nodes)) weights of smooth (smoothstep) interpolation between nodes."""
    f = (coords - nodes[0] * spacing) / spacing
    i = np.clip(np.floor(f).astype(np.int64), 0, len(nodes) - 2)
    t = f - i
    t = t * t * (3 - 2 * t)
    m = np.zeros((len(coords), len(nodes)), dtype=np.float32)
    rows = np.arange(len(coords))
    m[rows, i] = 1 - t
    m[rows, i + 1] = t
    return m


def ground_fields(key: int, channels: int, x: np.ndarray, y: np.ndarray, scales=SCALES_M) -> np.ndarray:
    """(channels, len(y), len(x)) value noise in [-1, 1]-ish, a function of ground position only."""
    out = np.zeros((channels, len(y), len(x)), dtype=np.float32)
    with np.errstate(over="ignore"):
        for octave, (spacing, amplitude) in enumerate(scales):
            gx = np.arange(np.floor(x.min() / spacing), np.floor(x.max() / spacing) + 2).astype(np.int64)
            gy = np.arange(np.floor(y.min() / spacing), np.floor(y.max() / spacing) + 2).astype(np.int64)
            base = splitmix64(np.uint64(key) * np.uint64(1_000_003) + np.uint64(octave))
            chan = splitmix64(base + np.arange(channels, dtype=np.uint64))[:, None, None]
            node = (gy.astype(np.uint64)[:, None] << np.uint64(32)) ^ (
                gx.astype(np.uint64)[None, :] & np.uint64(0xFFFFFFFF)
            )
            values = splitmix64(chan ^ splitmix64(node)[None])
            values = (values >> np.uint64(11)).astype(np.float64) * (2.0 / 2**53) - 1.0
            rx = _interp_matrix(x, gx, spacing)
            ry = _interp_matrix(y, gy, spacing)
            out += amplitude * np.einsum("yi,cij,xj->cyx", ry, values.astype(np.float32), rx, optimize=True)
    return out


def landscape_key(seed: int, epsg: int) -> int:
    """The key of the abundance fields of one UTM zone: products and simulated label rasters
    derive the same landscape from it (``label_rasters``), so labels agree with pixels."""
    return (seed * 1_000_003 + epsg) & 0xFFFFFFFFFFFF


def landscape_bias(biome: str, doy: int, lat: float) -> np.ndarray:
    """Per-material log-weights the fields vary around: the biome's prior plus the seasonal
    shift of vegetation against dry grass and soil on day of year ``doy``."""
    prior = np.array(_BIOMES[biome], dtype=np.float32)
    season = np.cos(2 * np.pi * (doy - (196 if lat >= 0 else 14)) / 365.0) * min(1.0, abs(lat) / 30.0)
    green = np.array([0.5, 0.8, -0.8, -0.4, 0, 0, 0, 0], dtype=np.float32) * season
    return prior + green


def surface_abundance(
    seed: int, epsg: int, x: np.ndarray, y: np.ndarray, bias: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(materials, len(y), len(x)) abundances (summing to 1) and (len(y), len(x)) terrain shade
    at UTM pixel centres ``x``, ``y`` of zone ``epsg``: a function of ground position only."""
    k = len(SURFACE_MATERIALS)
    logits = ground_fields(landscape_key(seed, epsg), k + 1, x, y)
    shade = 1.0 + 0.08 * logits[k]  # terrain illumination, also pinned to the ground
    logits = (logits[:k] * 1.6 + bias[:, None, None]) / SOFTMAX_TEMPERATURE
    logits -= logits.max(axis=0, keepdims=True)
    abundance = np.exp(logits)
    abundance /= abundance.sum(axis=0, keepdims=True)
    return abundance, shade


@cache
def _noise_bank(seed: int) -> np.ndarray:
    return np.random.default_rng([seed, 0x4E4F4953]).standard_normal(NOISE_BANK_SIZE, dtype=np.float32)


def _random_field(rng: np.random.Generator, height: int, width: int, cells: int) -> np.ndarray:
    """Smooth random field on the product grid (per acquisition: clouds, haze, snow).

    Three octaves of value noise, each on a lattice shifted by a random fraction of a cell, so
    that the maxima (where masks start) do not line up along lattice rows."""
    field = np.zeros((height, width), dtype=np.float32)
    for factor, amplitude in ((1, 1.0), (2.7, 0.5), (7.3, 0.25)):
        size = max(2.0, cells / factor)
        ny, nx = int(np.ceil(height / size)) + 2, int(np.ceil(width / size)) + 2
        grid = rng.standard_normal((ny, nx)).astype(np.float32)
        dy, dx = rng.random(2) * size
        ry = _interp_matrix(np.arange(height) + dy, np.arange(ny), size)
        rx = _interp_matrix(np.arange(width) + dx, np.arange(nx), size)
        field += amplitude * (ry @ grid @ rx.T)
    return field


def _top(field: np.ndarray, allowed: np.ndarray, count: int) -> np.ndarray:
    """Boolean mask of the ``count`` allowed pixels where ``field`` is highest."""
    mask = np.zeros(field.shape, dtype=bool)
    candidates = np.flatnonzero(allowed)
    count = min(count, len(candidates))
    if count <= 0:
        return mask
    values = field.ravel()[candidates]
    pick = np.argpartition(-values, count - 1)[:count]
    mask.ravel()[candidates[pick]] = True
    return mask


def _shift(mask: np.ndarray, rows: int, cols: int) -> np.ndarray:
    out = np.zeros_like(mask)
    h, w = mask.shape
    if abs(rows) >= h or abs(cols) >= w:
        return out
    src = mask[max(0, -rows) : h - max(0, rows), max(0, -cols) : w - max(0, cols)]
    out[max(0, rows) : max(0, rows) + src.shape[0], max(0, cols) : max(0, cols) + src.shape[1]] = src
    return out


def _band_indices(wl: np.ndarray, ranges) -> np.ndarray:
    sel = np.zeros(len(wl), dtype=bool)
    for lo, hi in ranges:
        sel |= (wl >= lo) & (wl <= hi)
    return sel


def _nearest(wl: np.ndarray, targets) -> list[int]:
    return [int(np.argmin(np.abs(wl - t))) for t in targets]


def render_scene(
    tile: Tile,
    library: SpectralLibrary,
    targets: dict[str, float],
    seed: int,
    sink: Callable[[int, np.ndarray], None],
    rows_per_block: int = 64,
    regions: tuple = LAND_REGIONS,
) -> SceneResult:
    """Render a tile: hand int16 (bands, rows, width) blocks to ``sink(row0, block)``
    and return the masks, covers and statistics the other files need. ``regions``: the land
    regions the mission's sites were drawn from (they decide the biome)."""
    rng = np.random.default_rng([seed, 0x50495845, tile.index])  # "PIXE", per product
    height, width = tile.height, tile.width
    valid = swath_mask(tile)
    n_valid = int(valid.sum())
    wl = library.wavelength_nm
    x = tile.grid_x0 + (np.arange(width) + 0.5) * PIXEL_SIZE_M
    y = tile.grid_y0 - (np.arange(height) + 0.5) * PIXEL_SIZE_M

    # Landscape: abundances pinned to the ground, shifted by season.
    lon, lat = tile.center_lon, tile.center_lat
    biome = biome_of(lon, lat, regions)
    doy = int(
        (
            tile.start.astype("datetime64[D]") - tile.start.astype("datetime64[Y]").astype("datetime64[D]")
        ).astype(int)
    )
    abundance, shade = surface_abundance(seed, tile.epsg, x, y, landscape_bias(biome, doy, lat))
    water = abundance.argmax(axis=0) == library.index("water")

    # Atmosphere and clouds: per acquisition, with exact pixel counts.
    def count(key: str) -> int:
        return round(targets.get(key, 0.0) / 100.0 * n_valid)

    cloud_field = _random_field(rng, height, width, max(8, width // 6))
    cloud = _top(cloud_field, valid, count("cloud_cover"))
    time_centre = tile.start + (tile.stop - tile.start) // 2
    elevation, azimuth = (float(v) for v in solar_position(lon, lat, time_centre))
    cloud_height = rng.uniform(1000, 3000)
    reach = cloud_height / np.tan(np.radians(max(elevation, 15.0))) / PIXEL_SIZE_M
    reach = min(reach, max(width, height) / 6)
    away = np.radians(azimuth + 180)
    shadow = _shift(cloud, round(-np.cos(away) * reach), round(np.sin(away) * reach)) & valid & ~cloud
    clear = valid & ~cloud & ~shadow
    snow = _top(_random_field(rng, height, width, max(8, width // 5)), clear, count("snow_cover"))
    haze = _top(_random_field(rng, height, width, max(8, width // 4)), clear & ~snow, count("haze_cover"))
    cirrus = _top(
        _random_field(rng, height, width, max(8, width // 4)), clear & ~snow & ~haze, count("cirrus_cover")
    )
    cloud_opacity = np.clip(0.8 + 0.1 * cloud_field, 0.6, 1.0).astype(np.float32)
    cloud_bright = np.clip(1.0 + 0.08 * _random_field(rng, height, width, 16), 0.8, 1.2).astype(np.float32)

    # Render row blocks: mix, illuminate, add atmosphere and noise, scale to int16.
    surface_t = np.ascontiguousarray(library.surface.T, dtype=np.float32)  # (bands, materials)
    bands = len(wl)
    haze_spec = (0.05 * (wl / 450.0) ** -2.0).astype(np.float32)
    cirrus_spec = (0.03 + 0.01 * (wl / 1000.0)).astype(np.float32)
    noise_sd = np.full(bands, 0.004, dtype=np.float32)
    noise_sd[wl > 1000] = 0.005
    noise_sd[_band_indices(wl, NOISY_BANDS_NM)] = 0.02
    noise = _noise_bank(seed)
    no_signal = _band_indices(wl, NO_SIGNAL_BANDS_NM)
    vnir_idx, swir_idx = _nearest(wl, QUICKLOOK_VNIR_NM), _nearest(wl, QUICKLOOK_SWIR_NM)
    ql_vnir = np.zeros((3, height, width), dtype=np.uint8)
    ql_swir = np.zeros((3, height, width), dtype=np.uint8)
    total = np.zeros(bands, dtype=np.float64)
    total_sq = np.zeros(bands, dtype=np.float64)
    effects = (
        (snow, lambda r, rc: np.broadcast_to(library.snow[:, None], r.shape)),
        (shadow, lambda r, rc: r * 0.35 + 0.01),
        (haze, lambda r, rc: r * 0.9 + haze_spec[:, None]),
        (cirrus, lambda r, rc: r * 0.92 + cirrus_spec[:, None]),
        (
            cloud,
            lambda r, rc: (
                r * (1 - cloud_opacity[rc])
                + library.cloud[:, None] * (cloud_opacity[rc] * cloud_bright[rc])[None]
            ),
        ),
    )
    rows_per_block = max(1, min(rows_per_block, NOISE_BANK_SIZE // (2 * bands * width)))
    for r0 in range(0, height, rows_per_block):
        r1 = min(height, r0 + rows_per_block)
        rows = slice(r0, r1)
        shape = (bands, r1 - r0, width)
        mix = abundance[:, rows].reshape(len(SURFACE_MATERIALS), -1)
        refl = (surface_t @ mix).reshape(shape)
        refl *= shade[rows][None]
        for mask, effect in effects:
            where = np.nonzero(mask[rows])
            if len(where[0]):
                rc = (where[0] + r0, where[1])
                refl[:, where[0], where[1]] = effect(refl[:, where[0], where[1]], rc)
        offset = int(rng.integers(0, NOISE_BANK_SIZE - refl.size))
        refl += noise[offset : offset + refl.size].reshape(shape) * noise_sd[:, None, None]
        refl *= REFLECTANCE_SCALE
        np.rint(refl, out=refl)
        np.clip(refl, -32767, 32767, out=refl)
        block = refl.astype(np.int16)
        outside = ~valid[rows]
        block[:, outside] = NODATA
        block[no_signal] = NODATA
        flat = block.reshape(bands, -1).astype(np.float32)
        inside = (~outside).ravel().astype(np.float32)
        total += flat @ inside
        flat *= flat
        total_sq += flat @ inside
        for ql, idx in ((ql_vnir, vnir_idx), (ql_swir, swir_idx)):
            rgb = np.clip(block[idx].astype(np.float32) * (255.0 / 5000.0), 1, 255).astype(np.uint8)
            rgb[:, outside] = 0
            ql[:, rows] = rgb
        sink(r0, block)

    n = max(n_valid, 1)
    mean = total / n
    std = np.sqrt(np.maximum(total_sq / n - mean * mean, 0.0))
    mean[no_signal] = 0.0
    std[no_signal] = 0.0
    classes = np.where(valid, np.where(water, 2, 1), 3).astype(np.uint8)
    masks = {
        "cloud": cloud,
        "cloud_shadow": shadow,
        "haze": haze,
        "snow": snow,
        "cirrus": cirrus,
    }
    covers = {
        "cloud_cover": cloud,
        "cloud_shadow_cover": shadow,
        "haze_cover": haze,
        "snow_cover": snow,
        "cirrus_cover": cirrus,
    }
    return SceneResult(
        masks={**{k: m.astype(np.uint8) for k, m in masks.items()}, "classes": classes},
        covers={k: float(round(100.0 * int(m.sum()) / n)) for k, m in covers.items()},
        water_cover=float(round(100.0 * int((water & valid).sum()) / n)),
        valid_pixels=n_valid,
        band_mean=mean / REFLECTANCE_SCALE,
        band_std=std / REFLECTANCE_SCALE,
        quicklook_vnir=ql_vnir,
        quicklook_swir=ql_swir,
        sun_elevation=elevation,
        sun_azimuth=azimuth,
        biome=biome,
    )
