"""Endmember spectra that simulated pixels are mixed from.

Real spectra make simulated data behave like real data under compression, normalisation and
self-supervised training. When the real Potsdam tiles are at hand (``realdata/enmap-potsdam``,
genuine EnMAP L2A pixels with a land-cover mask), the six labelled classes give six real
endmembers (per-class mean spectra). Materials Potsdam lacks (desert sand, dry grass, bare soil,
snow, cloud) and the whole library when the real files are absent come from simple analytic
shapes with the features that matter: chlorophyll absorption and red edge, liquid-water and
cellulose/clay absorptions, the flat bright spectrum of clouds, the SWIR collapse of snow.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from storage_schemas.enmap_product import NODATA, REFLECTANCE_SCALE

POTSDAM_CLASSES = {1: "roof", 2: "pavement", 3: "low_vegetation", 4: "tree", 5: "soil", 6: "water"}
"""Label values of ``enmap-potsdam/labels`` (0 = unlabelled). The EnMAP-Box README lists the
level-3 classes as Roof, Pavement, Low Vegetation, Soil, Tree, Water, but the class means say
4 is dense vegetation (red 4%, NIR 33%) and 5 bare soil (flat, red 17%): named by spectrum."""

SURFACE_MATERIALS = (
    "tree",
    "low_vegetation",
    "dry_grass",
    "soil",
    "sand",
    "roof",
    "pavement",
    "water",
)
"""Materials the landscape is mixed from, in a fixed order (the abundance fields index them)."""


@dataclass(frozen=True)
class SpectralLibrary:
    """Reflectance (0..1) per material on one band set, and where each spectrum came from."""

    wavelength_nm: np.ndarray
    surface: np.ndarray
    """(len(SURFACE_MATERIALS), bands) float32."""
    cloud: np.ndarray
    snow: np.ndarray
    sources: dict[str, str]
    """Material -> ``real:<file set>`` or ``analytic``."""

    def index(self, material: str) -> int:
        return SURFACE_MATERIALS.index(material)

    def describe(self) -> str:
        real = sorted(m for m, s in self.sources.items() if s.startswith("real"))
        return f"real Potsdam endmembers ({', '.join(real)}) + analytic" if real else "analytic endmembers"


def _gauss(wl: np.ndarray, centre: float, width: float) -> np.ndarray:
    return np.exp(-0.5 * ((wl - centre) / width) ** 2)


def _sigmoid(wl: np.ndarray, centre: float, width: float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-(wl - centre) / width))


def _liquid_water(wl: np.ndarray, thickness: float) -> np.ndarray:
    """Transmission of a leaf/soil water layer: bands at 970, 1200, 1450, 1940 nm and beyond 2400."""
    k = (
        0.06 * _gauss(wl, 975, 30)
        + 0.15 * _gauss(wl, 1200, 45)
        + 1.6 * _gauss(wl, 1450, 70)
        + 2.6 * _gauss(wl, 1940, 90)
        + 1.2 * _sigmoid(wl, 2500, 60)
    )
    return np.exp(-k * thickness)


def analytic_spectra(wl: np.ndarray) -> dict[str, np.ndarray]:
    """Analytic reflectance spectra of the library's materials on wavelengths ``wl`` (nm)."""
    wl = np.asarray(wl, dtype=np.float64)
    red_edge = _sigmoid(wl, 718, 13)
    chlorophyll = 0.035 + 0.05 * _gauss(wl, 555, 35) - 0.015 * _gauss(wl, 675, 20)
    nir_plateau = 0.48 - 0.08 * _sigmoid(wl, 1150, 80) - 0.12 * _sigmoid(wl, 1550, 120)
    tree = (chlorophyll * (1 - red_edge) + (nir_plateau - 0.08) * red_edge) * _liquid_water(wl, 1.0)
    low_veg = (chlorophyll * 1.2 * (1 - red_edge) + nir_plateau * red_edge) * _liquid_water(wl, 0.8)
    soil_base = 0.06 + 0.30 * (1 - np.exp(-(wl - 380) / 700))
    clay = 1 - 0.12 * _gauss(wl, 2205, 30) - 0.05 * _gauss(wl, 1415, 25) - 0.06 * _gauss(wl, 1915, 35)
    soil = soil_base * clay * (1 - 0.04 * _gauss(wl, 900, 60))
    dry_grass = (0.07 + 0.33 * _sigmoid(wl, 620, 90)) * (1 - 0.15 * _gauss(wl, 2100, 45))
    dry_grass = dry_grass * _liquid_water(wl, 0.25) * (1 - 0.05 * _gauss(wl, 680, 20))
    sand = (0.18 + 0.32 * (1 - np.exp(-(wl - 380) / 450))) * (1 - 0.05 * _gauss(wl, 2210, 30))
    roof = 0.12 + 0.10 * _sigmoid(wl, 600, 120) - 0.02 * _gauss(wl, 1730, 40)
    pavement = 0.10 + 0.06 * (wl - 400) / 2100 - 0.015 * _gauss(wl, 2320, 40)
    water = 0.07 * np.exp(-(((wl - 420) / 180) ** 2)) + 0.02 * _gauss(wl, 560, 40) + 0.004
    water = np.where(wl > 750, 0.004 + 0.01 * np.exp(-(wl - 750) / 60), water)
    snow = (0.96 - 0.25 * _sigmoid(wl, 950, 80)) * np.exp(
        -(0.9 * _gauss(wl, 1030, 40) + 3.5 * _sigmoid(wl, 1420, 25) - 1.6 * _gauss(wl, 1800, 70))
    )
    snow = np.clip(snow - 2.0 * _gauss(wl, 2000, 90) * snow, 0.01, 1.0)
    cloud = (0.78 - 0.22 * _sigmoid(wl, 1300, 300)) * (
        1 - 0.25 * _gauss(wl, 1500, 60) - 0.35 * _gauss(wl, 2020, 80) - 0.05 * _gauss(wl, 1150, 40)
    )
    return {
        "tree": tree,
        "low_vegetation": low_veg,
        "dry_grass": dry_grass,
        "soil": soil,
        "sand": sand,
        "roof": roof,
        "pavement": pavement,
        "water": water,
        "snow": snow,
        "cloud": cloud,
    }


def potsdam_spectra(folder: Path, wl: np.ndarray) -> dict[str, np.ndarray]:
    """Per-class mean reflectance of the real Potsdam tiles, resampled to wavelengths ``wl``.

    The tiles hold VNIR then SWIR bands (not sorted by wavelength) and six no-signal bands
    (-32768); both are handled by sorting by wavelength and interpolating over the gaps.
    """
    import rasterio  # only needed with real data at hand

    images = sorted((folder / "images").glob("*.tif"))
    if not images:
        raise FileNotFoundError(f"no Potsdam tiles in {folder / 'images'}")
    sums: dict[int, np.ndarray] = {}
    counts: dict[int, np.ndarray] = {}
    source_wl = None
    for image in images:
        label_path = folder / "labels" / image.name
        if not label_path.exists():
            continue
        with rasterio.open(image) as src, rasterio.open(label_path) as lab:
            cube = src.read().astype(np.float64)
            labels = lab.read(1).astype(np.int64)
            if source_wl is None:
                source_wl = np.array([float(src.tags(b)["wavelength"]) for b in range(1, src.count + 1)])
        valid = cube != NODATA
        for value in POTSDAM_CLASSES:
            sel = labels == value
            if not sel.any():
                continue
            pixels = np.where(valid[:, sel], cube[:, sel], 0.0)
            sums[value] = sums.get(value, 0.0) + pixels.sum(axis=1)
            counts[value] = counts.get(value, 0.0) + valid[:, sel].sum(axis=1)
    if source_wl is None:
        raise FileNotFoundError(f"no Potsdam tiles with labels in {folder}")
    order = np.argsort(source_wl)
    result = {}
    for value, name in POTSDAM_CLASSES.items():
        if value not in sums:
            continue
        n = counts[value][order]
        mean = np.where(n > 0, sums[value][order] / np.maximum(n, 1), np.nan) / REFLECTANCE_SCALE
        good = np.isfinite(mean)
        result[name] = np.interp(wl, source_wl[order][good], mean[good])
    return result


@cache
def spectral_library(wavelength_nm: tuple[float, ...], realdata: Path | None) -> SpectralLibrary:
    """The library on a band set: real Potsdam classes where ``realdata`` has them, else analytic."""
    wl = np.asarray(wavelength_nm, dtype=np.float64)
    spectra = analytic_spectra(wl)
    sources = {name: "analytic" for name in spectra}
    if realdata is not None and (realdata / "enmap-potsdam" / "images").is_dir():
        for name, spectrum in potsdam_spectra(realdata / "enmap-potsdam", wl).items():
            spectra[name] = np.clip(spectrum, 0.0, 1.0)
            sources[name] = "real:enmap-potsdam"
    return SpectralLibrary(
        wavelength_nm=wl,
        surface=np.stack([spectra[m] for m in SURFACE_MATERIALS]).astype(np.float32),
        cloud=spectra["cloud"].astype(np.float32),
        snow=spectra["snow"].astype(np.float32),
        sources={m: sources[m] for m in (*SURFACE_MATERIALS, "snow", "cloud")},
    )
