"""The release's figures, as in the SpectralEarth paper: coverage map, months, PCA mosaic.

- Figure 3 (``coverage_map_png``): where the locations are, coloured by how many timestamps each
  has. No basemap is available offline, so the map is a lon/lat graticule; the points alone show
  the continents well enough at release scale (hundreds of thousands of locations).
- Figure 6 is ``assets.geometry.plan_report.histogram_png(locations["n_timestamps"])``: the same
  histogram the plan already shows, not drawn a second time here.
- Figure 17 (``acquisitions_per_month_png``): counts per calendar month, stacked by year, to show
  the seasonal imbalance the paper discusses (winter clouds, tasking).
- Figure 2 (``pca_mosaic_png``): a grid of false-colour quicklooks from the first three principal
  components. One PCA is fitted for all patches and one stretch is applied to all, so a colour
  means the same spectrum in every tile (a per-patch PCA would make every patch look equally
  colourful and hide the diversity the figure is meant to show). ``pick_mosaic_slots`` chooses
  which patches to show, deterministically, so the figure is the same for the same release.

Everything is plain Python returning PNG bytes (matplotlib, Agg), small enough for the Dagster
event log except the mosaic (a few hundred kB), which the release writes under ``figures/``.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd

from assets.geometry.metric import transformer
from storage_schemas.enmap_product import NODATA
from storage_schemas.plan import PATCH_M

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
TIMESTAMP_BINS: tuple[tuple[int, int, str], ...] = (
    (1, 1, "1"),
    (2, 2, "2"),
    (3, 5, "3-5"),
    (6, 10, "6-10"),
    (11, 25, "11-25"),
    (26, 2**31 - 1, ">25"),
)
"""Colour classes of the coverage map (inclusive bounds): the paper's Figure 6 is dominated by
one and two timestamps and has a tail past 25, so binned colours show all three at a glance where
a continuous scale would spend its range on the tail."""

MOSAIC_SEED = 0
MOSAIC_FIT_PIXELS = 50_000
"""Pixels the mosaic's PCA is fitted on (of ~1M in 64 patches): a 202 x 202 covariance from 50k
spectra is stable to far below what a colour stretch can show (sampling error ~0.5%)."""
MOSAIC_GAP_PX = 2


def _pyplot():
    """matplotlib's pyplot on the Agg backend (the UI process has no display)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    return plt


def _png(fig) -> bytes:
    plt = _pyplot()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def location_centres(locations: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Longitude and latitude of each location's centre, from its UTM window.

    Taken from ``epsg, x0, y0`` rather than from the EPSG:4326 outline: an outline split at the
    antimeridian is a MultiPolygon whose planar centroid lies near longitude 0.
    """
    lon = np.empty(len(locations))
    lat = np.empty(len(locations))
    epsg = locations["epsg"].to_numpy()
    x = locations["x0"].to_numpy(dtype=float) + PATCH_M / 2
    y = locations["y0"].to_numpy(dtype=float) - PATCH_M / 2
    for code in np.unique(epsg):
        sel = epsg == code
        lon[sel], lat[sel] = transformer(int(code), 4326).transform(x[sel], y[sel])
    return (lon + 180.0) % 360.0 - 180.0, lat


def coverage_map_png(locations: gpd.GeoDataFrame, width_px: int = 900) -> bytes:
    """Figure 3: location centres on a lon/lat graticule, coloured by timestamps per location."""
    plt = _pyplot()
    lon, lat = location_centres(locations)
    n = locations["n_timestamps"].to_numpy()
    fig, ax = plt.subplots(figsize=(width_px / 100, width_px / 200), dpi=100)
    ax.set_xlim(-180, 180)
    ax.set_ylim(-90, 90)
    ax.set_aspect("equal")
    ax.set_xticks(np.arange(-180, 181, 30))
    ax.set_yticks(np.arange(-90, 91, 30))
    ax.grid(True, lw=0.3, color="0.8")
    ax.axhline(0.0, lw=0.5, color="0.6")
    colours = plt.get_cmap("plasma")(np.linspace(0.0, 0.9, len(TIMESTAMP_BINS)))
    size = 4.0 if len(n) < 20_000 else 1.0
    for (lo, hi, label), colour in zip(TIMESTAMP_BINS, colours, strict=True):
        sel = (n >= lo) & (n <= hi)  # rarer, longer series drawn last, on top
        if sel.any():
            ax.scatter(lon[sel], lat[sel], s=size, color=colour, lw=0, label=f"{label}: {int(sel.sum()):,}")
    if len(n):
        ax.legend(title="timestamps", fontsize=6, title_fontsize=7, loc="lower left", markerscale=3)
    multi = int((n > 1).sum())
    share = multi / len(n) if len(n) else 0.0
    ax.set_title(
        f"{len(n):,} locations, {int(n.sum()):,} patches, {share:.1%} with more than one timestamp",
        fontsize=9,
    )
    ax.tick_params(labelsize=7)
    fig.tight_layout()
    return _png(fig)


def calendar_month_counts(times: pd.Series) -> pd.DataFrame:
    """Counts per calendar month (rows 1-12, all present) and year (columns), in UTC."""
    times = pd.to_datetime(times)
    times = times.dt.tz_localize("UTC") if times.dt.tz is None else times.dt.tz_convert("UTC")
    counts = pd.crosstab(times.dt.month, times.dt.year) if len(times) else pd.DataFrame()
    return counts.reindex(range(1, 13), fill_value=0).rename_axis(index="month", columns="year")


def acquisitions_per_month_png(times: pd.Series, unit: str = "patches", width_px: int = 640) -> bytes:
    """Figure 17: counts per calendar month, stacked by year.

    The figure counts whatever ``times`` holds, one entry per thing counted: pass the release
    index's ``time`` column for patches per month (the paper's Figure 17), or
    ``index.drop_duplicates("tile_id")["time"]`` for acquisitions (tiles) per month, and say so
    in ``unit``. Naive timestamps are taken as UTC.
    """
    plt = _pyplot()
    counts = calendar_month_counts(times)
    fig, ax = plt.subplots(figsize=(width_px / 100, width_px / 200), dpi=100)
    bottom = np.zeros(12)
    colours = plt.get_cmap("tab10")
    for i, year in enumerate(counts.columns):
        values = counts[year].to_numpy()
        ax.bar(np.arange(12), values, bottom=bottom, width=0.8, color=colours(i % 10), label=str(year))
        bottom += values
    ax.set_xticks(np.arange(12), MONTHS)
    ax.set_ylabel(unit, fontsize=8)
    ax.tick_params(labelsize=7)
    if len(counts.columns):
        ax.legend(fontsize=7, ncols=min(len(counts.columns), 6))
    ax.set_title(f"{int(bottom.sum()):,} {unit} by calendar month (UTC)", fontsize=9)
    fig.tight_layout()
    return _png(fig)


def percentile_stretch(
    values: np.ndarray, valid: np.ndarray, low: float = 2.0, high: float = 98.0
) -> np.ndarray:
    """``values`` scaled to [0, 1] between their ``low`` and ``high`` percentiles over ``valid``.

    The quicklook stretch of the catalog (``assets.archive.quality``), for any array: limits come
    from valid entries only, so nodata never widens the range; invalid entries come out 0 (black).
    """
    out = np.zeros(values.shape, dtype=np.float32)
    if valid.any():
        lo, hi = np.percentile(values[valid], (low, high))
        out[valid] = np.clip((values[valid] - lo) / max(float(hi - lo), 1e-12), 0.0, 1.0)
    return out


@dataclass(frozen=True)
class PcaFit:
    """Principal components of pixel spectra: ``components`` (k, bands), largest variance first."""

    mean: np.ndarray
    components: np.ndarray
    explained_variance: np.ndarray
    explained_ratio: np.ndarray
    pixels: int


def valid_pixels(patches: np.ndarray, nodata: int = NODATA) -> np.ndarray:
    """(n, y, x) True where every band holds data (a pixel missing any band is not shown)."""
    if not len(patches):
        return np.zeros((0, *patches.shape[2:]), dtype=bool)
    return np.stack([(p != nodata).all(axis=0) for p in patches])


def fit_pca(
    patches: np.ndarray,
    nodata: int = NODATA,
    k: int = 3,
    max_pixels: int = MOSAIC_FIT_PIXELS,
    seed: int = MOSAIC_SEED,
) -> PcaFit:
    """One PCA for all ``patches`` (n, bands, y, x), from a seeded random sample of valid pixels.

    The eigendecomposition of the bands x bands covariance gives the same components as an SVD
    of the centred sample, at a fraction of the cost (the sample is 50k x 202, the covariance
    202 x 202). The covariance and the projections use ``np.einsum`` rather than BLAS: single
    threaded, so the result does not depend on the BLAS thread count, and immune to the slowdown
    of multi-threaded OpenBLAS on an oversubscribed node (6x measured on a busy 2-core box).
    Signs are fixed so that each component's largest loading is positive: the same input gives
    the same colours on every machine, not colours flipped at random.
    """
    n, bands = patches.shape[:2]
    valid = valid_pixels(patches, nodata).reshape(n, int(np.prod(patches.shape[2:])))
    flat = np.flatnonzero(valid)
    if len(flat) > max_pixels:
        flat = flat[np.sort(np.random.default_rng(seed).choice(len(flat), max_pixels, replace=False))]
    which, pixel = np.divmod(flat, valid.shape[1])
    sample = np.empty((len(flat), bands), dtype=np.float32)
    starts = np.searchsorted(which, np.arange(n + 1))
    for i in range(n):  # row-wise gather per patch: contiguous reads instead of 202 strided ones
        a, b = starts[i], starts[i + 1]
        if b > a:
            sample[a:b] = patches[i].reshape(bands, -1)[:, pixel[a:b]].T
    if len(sample) <= k:
        zeros = np.zeros(k)
        return PcaFit(np.zeros(bands), np.zeros((k, bands)), zeros, zeros, len(sample))
    mean = sample.mean(axis=0, dtype=np.float64)
    sample -= mean.astype(np.float32)
    covariance = np.einsum("pb,pc->bc", sample, sample).astype(np.float64) / (len(sample) - 1)
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    order = np.argsort(eigenvalues)[::-1][:k]
    components = eigenvectors[:, order].T
    signs = np.sign(components[np.arange(k), np.abs(components).argmax(axis=1)])
    components *= np.where(signs == 0, 1.0, signs)[:, None]
    variance = np.clip(eigenvalues[order], 0.0, None)
    total = max(float(np.clip(eigenvalues, 0.0, None).sum()), 1e-12)
    return PcaFit(mean, components, variance, variance / total, len(sample))


def pca_mosaic(
    patches: np.ndarray, nodata: int = NODATA, columns: int = 8, fit: PcaFit | None = None
) -> tuple[np.ndarray, PcaFit]:
    """The Figure 2 mosaic as an RGB float array in [0, 1] (rows of ``columns`` patches, 2 px
    white gaps), with the PCA it used. Nodata pixels and empty cells are black."""
    n, bands, height, width = patches.shape
    fit = fit if fit is not None else fit_pca(patches, nodata)
    valid = valid_pixels(patches, nodata)
    projected = np.empty((3, n, height, width), dtype=np.float32)
    weights = fit.components[:3].astype(np.float32)
    offset = (weights @ fit.mean.astype(np.float32))[:, None]
    for i in range(n):
        pixels = patches[i].reshape(bands, -1).astype(np.float32)
        projected[:, i] = (np.einsum("kb,bp->kp", weights, pixels) - offset).reshape(3, height, width)
    rgb = np.stack([percentile_stretch(projected[c], valid) for c in range(3)], axis=-1)
    rows = max(1, -(-n // columns))
    gap = MOSAIC_GAP_PX
    mosaic = np.ones((rows * (height + gap) + gap, columns * (width + gap) + gap, 3), dtype=np.float32)
    for i in range(rows * columns):
        r, c = divmod(i, columns)
        y, x = gap + r * (height + gap), gap + c * (width + gap)
        mosaic[y : y + height, x : x + width] = rgb[i] if i < n else 0.0
    return mosaic, fit


def pca_mosaic_png(patches: np.ndarray, nodata: int = NODATA, columns: int = 8, width_px: int = 900) -> bytes:
    """Figure 2: false-colour quicklooks of ``patches`` (n, bands, y, x) from one shared PCA.

    Components 1-3 go to red, green and blue, each stretched 2-98% over the valid pixels of all
    patches. Deterministic: the PCA sample is drawn with a fixed seed.
    """
    plt = _pyplot()
    mosaic, fit = pca_mosaic(patches, nodata, columns)
    aspect = mosaic.shape[0] / mosaic.shape[1]
    fig, ax = plt.subplots(figsize=(width_px / 100, width_px / 100 * aspect + 0.35), dpi=100)
    ax.imshow(mosaic, interpolation="antialiased")
    ax.set_axis_off()
    ratio = ", ".join(f"{r:.1%}" for r in fit.explained_ratio[:3])
    ax.set_title(f"{len(patches)} patches, PCA components 1-3 as RGB ({ratio} of variance)", fontsize=9)
    fig.tight_layout(pad=0.2)
    return _png(fig)


def _stable_hash(values: pd.Series) -> np.ndarray:
    """A 64-bit hash of each string that is the same in every process (``hash()`` is salted)."""
    return np.array(
        [int.from_bytes(hashlib.blake2b(v.encode(), digest_size=8).digest(), "big") for v in values],
        dtype=np.uint64,
    )


def pick_mosaic_slots(index: pd.DataFrame, n: int = 32, clear: float = 0.05) -> list[int]:
    """Slots of the patches to show in the mosaic, in display order: at most one per location,
    spread over as many tiles as possible, the least masked first.

    Per location, the patch with the smallest ``masked_fraction`` (then earliest, then tile id).
    Tiles take turns in an order given by a hash of their id, each offering its locations in the
    order of a hash of the location id; patches at most ``clear`` masked come before the others.
    Hashes of ids, never row order, decide: the same release gives the same slots.
    """
    if index.empty or n <= 0:
        return []
    best = index.sort_values(["location_id", "masked_fraction", "time", "tile_id"]).drop_duplicates(
        "location_id"
    )
    best = best.assign(
        masked=(best["masked_fraction"] > clear).to_numpy(),
        location_hash=_stable_hash(best["location_id"]),
        tile_hash=_stable_hash(best["tile_id"]),
    )
    best = best.sort_values(["masked", "tile_hash", "location_hash"])
    best["turn"] = best.groupby(["masked", "tile_id"], sort=False).cumcount()
    chosen = best.sort_values(["masked", "turn", "tile_hash", "location_hash"]).head(n)
    return [int(s) for s in chosen["slot"]]
