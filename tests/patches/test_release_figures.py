"""The release figures: PNGs that decode, a PCA mosaic that is deterministic, shared across
patches, ordered by variance and black where there is no data; mosaic picks that do not depend
on row order."""

from __future__ import annotations

import io

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from matplotlib import image as mpimg

from assets.geometry.metric import to_lonlat
from assets.patches.release_figures import (
    MOSAIC_FIT_PIXELS,
    MOSAIC_GAP_PX,
    acquisitions_per_month_png,
    calendar_month_counts,
    coverage_map_png,
    fit_pca,
    location_centres,
    pca_mosaic,
    pca_mosaic_png,
    percentile_stretch,
    pick_mosaic_slots,
)
from storage_schemas.plan import PATCH_M, location_id

NODATA = -32768
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ANTIMERIDIAN = (32760, 818_415.0, 8_140_005.0)
"""A window in UTM zone 60S (Taveuni, Fiji) whose east half lies past 180 degrees."""


def make_locations() -> gpd.GeoDataFrame:
    """Twelve locations: eleven around Berlin (EPSG:32633) and one across the antimeridian."""
    windows = [(32633, 390_015.0 + 3840.0 * (i % 4), 5_820_005.0 - 3840.0 * (i // 4)) for i in range(11)]
    windows.append(ANTIMERIDIAN)
    frame = pd.DataFrame(windows, columns=["epsg", "x0", "y0"])
    frame.insert(0, "location_id", [location_id(*w) for w in windows])
    frame["n_timestamps"] = np.array([1, 1, 1, 2, 1, 3, 1, 1, 30, 1, 2, 2], dtype="int32")
    boxes = shapely.box(frame["x0"], frame["y0"] - PATCH_M, frame["x0"] + PATCH_M, frame["y0"])
    return gpd.GeoDataFrame(frame, geometry=to_lonlat(boxes, frame["epsg"].to_numpy()), crs=4326)


def decode(png: bytes) -> np.ndarray:
    assert png.startswith(PNG_SIGNATURE)
    return mpimg.imread(io.BytesIO(png), format="png")


def test_location_centres_come_from_the_window_not_the_split_outline():
    locations = make_locations()
    assert locations.geometry.iloc[-1].geom_type == "MultiPolygon"
    lon, lat = location_centres(locations)
    assert abs(lon[-1]) > 179.9 and -17.0 < lat[-1] < -16.8
    assert np.all((lon[:-1] > 13.0) & (lon[:-1] < 13.7) & (lat[:-1] > 52.4) & (lat[:-1] < 52.6))


def test_coverage_map_decodes_at_the_asked_width():
    image = decode(coverage_map_png(make_locations(), width_px=800))
    assert image.shape[1] == 800 and image.shape[2] in (3, 4)
    assert decode(coverage_map_png(make_locations().iloc[:0])).shape[1] == 900


def test_month_counts_cover_every_month_by_year_in_utc():
    times = pd.Series(
        pd.to_datetime(
            ["2023-01-31T23:30:00-02:00", "2023-02-10T10:00:00Z", "2024-07-01T00:00:00Z"], utc=True
        )
    )
    counts = calendar_month_counts(times)
    assert list(counts.index) == list(range(1, 13)) and list(counts.columns) == [2023, 2024]
    assert counts.loc[2, 2023] == 2  # 23:30 at UTC-2 is February in UTC
    assert counts.loc[7, 2024] == 1 and int(counts.to_numpy().sum()) == 3
    naive = calendar_month_counts(pd.Series(pd.to_datetime(["2023-03-01"])))
    assert naive.loc[3, 2023] == 1
    assert calendar_month_counts(pd.Series([], dtype="datetime64[us, UTC]")).shape == (12, 0)


def test_month_figure_decodes():
    times = pd.Series(pd.date_range("2022-04-01", "2024-03-31", freq="5D", tz="UTC"))
    assert decode(acquisitions_per_month_png(times, unit="tiles")).shape[1] == 640
    assert decode(acquisitions_per_month_png(times.iloc[:0])).shape[1] == 640


def make_patches(n: int = 4, size: int = 128, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Patches mixing three spectral shapes with very different amplitudes (so the components
    have a known order) and the first shape (the dominant direction). Four full patches hold
    more pixels than the PCA samples."""
    rng = np.random.default_rng(seed)
    wavelengths = np.linspace(0.0, 1.0, 202)
    shapes = np.stack(
        [np.sin(np.pi * wavelengths), np.cos(3 * np.pi * wavelengths), np.sin(9 * np.pi * wavelengths)]
    )
    amplitude = rng.standard_normal((n, size, size, 3), dtype=np.float32) * np.float32([1500, 400, 100])
    cube = (3000.0 + amplitude @ shapes.astype(np.float32)).astype(np.int16)
    cube += rng.integers(-5, 6, cube.shape, dtype=np.int16)
    return np.ascontiguousarray(np.moveaxis(cube, -1, 1)), shapes[0]


def test_pca_orders_components_by_variance_and_finds_the_dominant_shape():
    patches, dominant = make_patches()
    fit = fit_pca(patches)
    assert fit.pixels == MOSAIC_FIT_PIXELS < 4 * 128 * 128
    assert np.all(np.diff(fit.explained_variance) < 0)
    assert np.isclose(np.linalg.norm(fit.components, axis=1), 1.0).all()
    cosine = abs(fit.components[0] @ dominant) / np.linalg.norm(dominant)
    assert cosine > 0.99
    assert fit.components[0, np.abs(fit.components[0]).argmax()] > 0  # sign fixed
    assert fit.explained_ratio.sum() <= 1.0


def test_pca_mosaic_is_deterministic_shared_and_black_where_nodata():
    patches, _ = make_patches()
    patches[0, :, :32, :32] = NODATA  # a corner with no data
    patches[1, 57, 10, 20] = NODATA  # one band missing in one pixel: not shown either
    patches[3, :, 100, 100] = patches[2, :, 50, 60]
    mosaic, _ = pca_mosaic(patches, columns=3)
    again, _ = pca_mosaic(patches.copy(), columns=3)
    assert np.array_equal(mosaic, again)
    step, g = 128 + MOSAIC_GAP_PX, MOSAIC_GAP_PX
    assert mosaic.shape == (2 * step + g, 3 * step + g, 3)
    assert (mosaic[g : g + 32, g : g + 32] == 0).all()
    assert (mosaic[g + 10, step + g + 20] == 0).all()
    assert mosaic[g + 40 : g + 128, g : g + 128].all(axis=-1).mean() > 0.5  # the rest of the patch is drawn
    for column in (1, 2):  # empty cells black
        assert (mosaic[step + g : 2 * step, column * step + g : (column + 1) * step] == 0).all()
    assert (mosaic[:g] == 1).all() and (mosaic[:, :g] == 1).all()  # white gaps between cells
    # one shared PCA and stretch: the same spectrum gets the same colour in any patch
    assert np.array_equal(mosaic[g + 50, 2 * step + g + 60], mosaic[step + g + 100, g + 100])


def test_pca_mosaic_png_is_deterministic_decodes_and_survives_no_valid_pixel():
    patches, _ = make_patches(n=3, size=32)
    png = pca_mosaic_png(patches, columns=2, width_px=400)
    assert png == pca_mosaic_png(patches.copy(), columns=2, width_px=400)
    assert decode(png).shape[1] == 400
    empty = np.full((2, 202, 16, 16), NODATA, dtype=np.int16)
    mosaic, fit = pca_mosaic(empty, columns=2)
    assert (
        fit.pixels == 0
        and not mosaic[MOSAIC_GAP_PX : MOSAIC_GAP_PX + 16, MOSAIC_GAP_PX : MOSAIC_GAP_PX + 16].any()
    )
    decode(pca_mosaic_png(empty))
    nothing, _ = pca_mosaic(empty[:0])  # no patch at all: one row of black cells
    g = MOSAIC_GAP_PX
    assert nothing.shape == (16 + 2 * g, 8 * (16 + g) + g, 3) and not nothing[g : g + 16, g : g + 16].any()


def test_percentile_stretch_ignores_invalid_values():
    values = np.array([-30000.0, 0.0, 1.0, 2.0, 3.0, 4.0])
    valid = values > -1
    out = percentile_stretch(values, valid, 0, 100)
    assert out[0] == 0 and np.allclose(out[1:], [0, 0.25, 0.5, 0.75, 1.0])


def make_index() -> pd.DataFrame:
    rows = []
    for i in range(40):
        location = f"32633_{390015 + 3840 * i}_5820005"
        for t in range(1 + i % 3):
            rows.append(
                (location, f"tile_{(i + t) % 7}", pd.Timestamp("2023-01-01", tz="UTC") + pd.Timedelta(days=t))
            )
    index = pd.DataFrame(rows, columns=["location_id", "tile_id", "time"])
    index.insert(0, "slot", np.arange(len(index), dtype="int64") * 3 + 100)
    index["masked_fraction"] = np.where(np.arange(len(index)) % 5 == 0, 0.5, 0.0).astype("float32")
    return index


def test_mosaic_picks_are_one_per_location_spread_over_tiles_and_order_free():
    index = make_index()
    slots = pick_mosaic_slots(index, n=7)
    picked = index.set_index("slot").loc[slots]
    assert len(slots) == 7 and picked["location_id"].is_unique
    assert picked["tile_id"].nunique() == 7  # every tile once before any tile twice
    assert (picked["masked_fraction"] <= 0.05).all()
    shuffled = index.sample(frac=1.0, random_state=1)
    assert pick_mosaic_slots(shuffled, n=7) == slots
    everything = pick_mosaic_slots(index, n=1000)
    assert len(everything) == 40 and set(slots) <= set(everything)
    assert all(isinstance(s, int) for s in everything)
    assert pick_mosaic_slots(index.iloc[:0]) == []


@pytest.mark.parametrize("n", [1, 3])
def test_mosaic_picks_prefer_the_clear_patch_of_a_location(n):
    index = make_index()
    first = index[index["location_id"] == index["location_id"].iloc[0]].index
    index.loc[first, "masked_fraction"] = 0.9
    assert not set(index.loc[first, "slot"]) & set(pick_mosaic_slots(index, n=n))
