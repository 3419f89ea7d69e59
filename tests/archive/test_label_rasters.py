"""Simulated CORINE, CDL and NLCD rasters: genuine grids and conventions, sparse, deterministic,
readable by the label stage, and tied to the landscape the simulated products show.

Footprints are a few kilometres across, so every product renders one or two blocks per
footprint (``margin_m=0``); the module runs in seconds and needs no ../shared folder.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio
import rasterio.warp
from rasterio.windows import from_bounds
from shapely.geometry import box

from assets.labels.align import UNLABELLED, align_to_patch, describe_label_raster
from simulator.acquisitions import (
    DEFAULT_VISIT_MODEL,
    DEMO_VISIT_MODEL,
    plan_acquisitions,
    utm_epsg,
)
from simulator.label_codes import CDL_CROP_WEIGHTS
from simulator.label_grids import CDL_GRID, CORINE_GRID, NLCD_GRID
from simulator.label_rasters import (
    BLOCKS_TAG,
    SIMULATED_TAG,
    footprint_blocks,
    plan_footprints,
    write_label_rasters,
)
from simulator.scene import biome_of, landscape_bias, surface_abundance
from simulator.spectra import SURFACE_MATERIALS

SEED = 7
CDL_YEARS, NLCD_YEARS = (2022, 2023), (2021,)
ILLINOIS = box(-88.96, 40.38, -88.88, 40.44)
IOWA = box(-93.50, 42.00, -93.42, 42.06)
GERMANY = box(9.86, 52.47, 9.94, 52.53)
FIRST, SECOND = [ILLINOIS], [GERMANY, IOWA]
CORINE = "corine/U2018_CLC2018_V2020_20u1.tif"
CDL = "cdl/2022_30m_cdls.tif"
CDL_NEXT = "cdl/2023_30m_cdls.tif"
NLCD = "nlcd/nlcd_2021_land_cover.tif"
FILES = (CORINE, CDL, CDL_NEXT, NLCD)

REAL_CDL_CODES = frozenset(
    {1, 2, 3, 4, 5, 6, 24, 36, 42, 43, 45, 54, 56, 61, 68, 69, 72, 75, 76, 204, 210}
    | {111, 121, 122, 123, 124, 131, 141, 142, 143, 152, 176, 190, 195}
)
"""CDL legend codes the simulator may write (USDA NASS CDL legend)."""
NLCD_CODES = frozenset({11, 12, 21, 22, 23, 24, 31, 41, 42, 43, 52, 71, 81, 82, 90, 95})


def _write(root: Path, footprints) -> None:
    write_label_rasters(root, footprints, SEED, cdl_years=CDL_YEARS, nlcd_years=NLCD_YEARS, margin_m=0)


@pytest.fixture(scope="module")
def roots(tmp_path_factory) -> dict[str, Path]:
    """The same footprints written in two calls and in one."""
    out = {name: tmp_path_factory.mktemp(name) / "label_sources" for name in ("two_calls", "once")}
    _write(out["two_calls"], SECOND)
    _write(out["two_calls"], FIRST)
    _write(out["once"], FIRST + SECOND)
    return out


def _read(path: Path, footprint) -> np.ndarray:
    """The cells of ``path`` under the bounding box of ``footprint`` (EPSG:4326)."""
    with rasterio.open(path) as ds:
        bounds = rasterio.warp.transform_bounds(4326, ds.crs, *footprint.bounds)
        return ds.read(1, window=from_bounds(*bounds, transform=ds.transform).round_offsets().round_lengths())


@pytest.mark.parametrize(
    ("name", "grid", "epsg"),
    [(CORINE, CORINE_GRID, 3035), (CDL, CDL_GRID, 5070), (NLCD, NLCD_GRID, None)],
)
def test_genuine_grid_dtype_and_nodata(roots, name, grid, epsg):
    with rasterio.open(roots["once"] / name) as ds:
        assert ds.crs.to_epsg() == epsg
        assert ds.dtypes == ("uint8",)
        assert ds.nodata == {"corine": 128, "cdl": 0, "nlcd": 0}[grid.product]
        assert ds.block_shapes == [(512, 512)]
        assert ds.compression.name.lower() == "deflate"
        assert "not a real" in ds.tags()[SIMULATED_TAG]
        origin = {
            "corine": (900_000, 5_500_000),
            "cdl": (-2_356_095, 3_172_605),
            "nlcd": (-2_493_045, 3_310_005),
        }
        assert (ds.transform.c, ds.transform.f) == origin[grid.product]
        assert ds.res == ((100.0, 100.0) if grid.product == "corine" else (30.0, 30.0))
        assert (ds.width, ds.height) == (grid.width, grid.height)
    if grid.product == "corine":
        assert (CORINE_GRID.x0 + CORINE_GRID.width * 100, CORINE_GRID.height * 100) == (7_400_000, 4_600_000)
    if grid.product == "nlcd":  # the legacy NLCD Albers of the real sample: EPSG:5070's parameters
        params = ds.crs.to_dict()
        assert (params["proj"], params["lat_0"], params["lon_0"], params["lat_1"], params["lat_2"]) == (
            "aea",
            23,
            -96,
            29.5,
            45.5,
        )


def test_codes_follow_each_products_convention(roots):
    corine = _read(roots["once"] / CORINE, GERMANY)
    assert set(np.unique(corine).tolist()) <= set(range(1, 45))
    for footprint in (ILLINOIS, IOWA):
        cdl = _read(roots["once"] / CDL, footprint)
        nlcd = _read(roots["once"] / NLCD, footprint)
        assert set(np.unique(cdl).tolist()) <= REAL_CDL_CODES
        assert set(np.unique(nlcd).tolist()) <= NLCD_CODES
        assert (np.isin(cdl, [1, 5])).mean() > 0.2, "corn and soybeans are the common crops"
    assert {c for c, _, _ in CDL_CROP_WEIGHTS} <= REAL_CDL_CODES


def test_values_under_every_footprint_and_sparse_elsewhere(roots):
    root = roots["once"]
    for name, footprints in ((CORINE, [GERMANY]), (CDL, [ILLINOIS, IOWA]), (NLCD, [ILLINOIS, IOWA])):
        with rasterio.open(root / name) as ds:
            nodata = ds.nodata
            held = {tuple(int(v) for v in b.split(",")) for b in ds.tags()[BLOCKS_TAG].split(";")}
            far = next(
                (r, c) for r in range(ds.height // 512) for c in range(ds.width // 512) if (r, c) not in held
            )
            assert ds.get_tag_item(f"BLOCK_OFFSET_{far[1]}_{far[0]}", "TIFF", bidx=1) in (None, "", "0")
            block = ds.read(1, window=rasterio.windows.Window(far[1] * 512, far[0] * 512, 512, 512))
            assert (block == nodata).all()
        for footprint in footprints:
            assert (_read(root / name, footprint) != nodata).all()
        assert len(held) <= 2 * len(footprints) * 2
    assert (root / CORINE).stat().st_size < 400_000
    assert (root / CDL).stat().st_size < 1_000_000  # the block index of 56,889 blocks and 2-4 blocks
    readme = (root / "README.md").read_text()
    assert "SIMULATED" in readme and all(name in readme for name in FILES)


def test_only_footprints_in_the_products_region_get_blocks():
    sahara = box(10.0, 25.0, 10.1, 25.1)
    assert not footprint_blocks(CORINE_GRID, [sahara]) and not footprint_blocks(CDL_GRID, [GERMANY])
    assert footprint_blocks(CDL_GRID, [ILLINOIS]) and not footprint_blocks(CORINE_GRID, [ILLINOIS])


def test_deterministic_whatever_the_order_and_grouping_of_calls(roots):
    for name in FILES:
        once = (roots["once"] / name).read_bytes()
        assert (roots["two_calls"] / name).read_bytes() == once


def test_writing_again_changes_nothing_and_another_seed_is_refused(roots, tmp_path):
    root = tmp_path / "again"
    shutil.copytree(roots["once"], root)
    before = {name: (root / name).read_bytes() for name in FILES}
    _write(root, FIRST)
    assert {name: (root / name).read_bytes() for name in FILES} == before
    with pytest.raises(ValueError, match="seed"):
        write_label_rasters(root, FIRST, SEED + 1, cdl_years=CDL_YEARS, nlcd_years=NLCD_YEARS, margin_m=0)


def test_crop_rotation_changes_annual_crops_and_keeps_perennials(roots):
    a = _read(roots["once"] / CDL, ILLINOIS)
    b = _read(roots["once"] / CDL_NEXT, ILLINOIS)
    assert (a != b).mean() > 0.2
    perennial = np.isin(a, [c for c, _, p in CDL_CROP_WEIGHTS if p])
    assert perennial.any() and (a[perennial] == b[perennial]).all()


def _patch(footprint) -> tuple[int, float, float]:
    """A 128 x 128 patch (30 m, EnMAP grid) centred in ``footprint``: (epsg, x0, y0)."""
    lon, lat = footprint.centroid.x, footprint.centroid.y
    epsg = int(utm_epsg(np.array([lon]), np.array([lat]))[0])
    x, y = rasterio.warp.transform(4326, epsg, [lon], [lat])
    return epsg, np.floor((x[0] - 1920) / 30) * 30 + 15, np.floor((y[0] + 1920) / 30) * 30 + 15


@pytest.mark.parametrize(("name", "footprint"), [(CORINE, GERMANY), (CDL, ILLINOIS), (NLCD, IOWA)])
def test_the_label_stage_reads_and_aligns_every_file(roots, name, footprint):
    path = roots["once"] / name
    described = describe_label_raster(path)
    assert described.dtype == "uint8"
    epsg, x0, y0 = _patch(footprint)
    with rasterio.open(path) as ds:
        aligned = align_to_patch(ds, epsg, x0, y0, presence=name == CORINE)
    assert aligned.labelled_fraction == 1.0
    assert (aligned.codes != UNLABELLED).all() and len(aligned.present) >= 2
    if name == NLCD:
        assert set(aligned.present.tolist()) <= NLCD_CODES


def test_labels_agree_with_the_landscape_the_products_show(roots):
    """Dominant material at the patch's pixel centres (leaf-on, as labels are mapped) -> NLCD
    family; the agreement is what makes the labels learnable from the pixels."""
    epsg, x0, y0 = _patch(ILLINOIS)
    with rasterio.open(roots["once"] / NLCD) as ds:
        codes = align_to_patch(ds, epsg, x0, y0).codes
    x = x0 + (np.arange(128) + 0.5) * 30
    y = y0 - (np.arange(128) + 0.5) * 30
    lon, lat = ILLINOIS.centroid.x, ILLINOIS.centroid.y
    abundance, _ = surface_abundance(SEED, epsg, x, y, landscape_bias(biome_of(lon, lat), 196, lat))
    material = np.array(SURFACE_MATERIALS)[abundance.argmax(axis=0)]
    family = {
        "tree": {41, 42, 43, 90},
        "low_vegetation": {81, 82, 95},
        "dry_grass": {52, 71},
        "soil": {31},
        "sand": {31},
        "roof": {21, 22, 23, 24},
        "pavement": {21, 22, 23, 24},
        "water": {11},
    }
    agree = np.array([c in family[m] for c, m in zip(codes.ravel(), material.ravel(), strict=True)])
    assert agree.mean() > 0.97


def test_demo_visit_model_images_label_regions_and_mission_model_is_unchanged():
    plan = plan_acquisitions(36, 384, 2, DEMO_VISIT_MODEL)
    month = plan.start.astype("datetime64[M]").astype(np.int64) % 12 + 1
    year = plan.start.astype("datetime64[Y]").astype(np.int64) + 1970
    footprints = plan_footprints(plan)
    conus = np.array([not fp.disjoint(box(*CDL_GRID.region)) for fp in footprints])
    europe = np.array([not fp.disjoint(box(*CORINE_GRID.region)) for fp in footprints])
    assert (conus & np.isin(month, (6, 7, 8, 9)) & np.isin(year, (2022, 2023))).sum() >= 3
    assert europe.sum() >= 2
    assert plan.crosses_antimeridian().any(), "the Taveuni anchor stays"
    assert DEFAULT_VISIT_MODEL.anchors == ()
