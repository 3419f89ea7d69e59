"""The CORINE dataset built from one folder holding CORINE as it is distributed: the real CLC sample
(EPSG:3035, 25 m, grid codes, no nodata), a coarser mainland-like raster over the same ground and
a finer national one (DHDN / Gauss-Krueger zone 3, 255 no data east of a line through the site),
outermost-region and national rasters in their own CRSs (Réunion's RGR92 / UTM 40S with grid codes
and 255 no data, cut off through the site's patches; the Canaries' REGCAN95 / UTM 28N with 3-digit
uint32 codes and the uint32 maximum as no data; a lon/lat extract of Guadeloupe numbered in its own
way and explained by its ``.vat.dbf``), a GeoPackage of Martinique's ``Code_18`` polygons, and bad
files among them (a raster without CRS, a value table that does not describe its raster), all
placed under the tiles of a simulated archive imaged at those places.

Every patch's multi-hot label is compared with an independent computation: the source cells (or
polygons) whose intersection with the patch footprint has an area, converted by the value table
or the CLC legend, mapped to the 19 classes of ``storage_schemas``."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, replace
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import shapely
import zarr
from affine import Affine
from dagster import AssetKey, AssetSelection, DagsterInstance, Definitions, define_asset_job, materialize
from pyproj import CRS, Transformer

from assets.geometry.plan_io import read_locations, read_patches
from assets.labels.build import BuiltDataset, SplitSettings, build_label_dataset
from assets.labels.defs import label_dataset_asset, label_source_asset
from assets.labels.label_patch import PatchLabel
from assets.labels.selection import patch_centres_lonlat
from assets.labels.source_choice import Overlap, choose_label
from assets.patches.release import collect_release
from assets.patches.release_publish import publish_release
from assets.resources import DaskCluster, DataRoot, LabelSourcesRoot
from simulator import simulate_archive
from simulator.acquisitions import DEMO_VISIT_MODEL
from simulator.sites import AnchorSite
from storage_schemas.label_classes import CLC_LEGEND, CORINE_BIGEARTHNET19, CORINE_GRID_TO_CLC
from storage_schemas.label_dataset import MULTI_HOT, sample_id
from storage_schemas.label_products import LABEL_PRODUCTS
from storage_schemas.paths import DataLayout
from storage_schemas.plan import PATCH_M
from storage_schemas.release import LATEST
from tests.labels.corine_files import (
    cell_boxes,
    fields,
    footprint_in,
    mark_slivers,
    write_dbf,
    write_polygons,
    write_vat,
)
from tests.labels.rasters import covering_grid, release_index, write_raster
from tests.patches.conftest import PLANNED, resources
from tests.patches.helpers import planned_tiles, run_tiles

ANCHORS = (
    AnchorSite("Hannover", 9.45, 52.42, visits=1, strip_length=1),
    AnchorSite("Reunion", 55.45, -21.05, visits=1, strip_length=1),
    AnchorSite("Tenerife", -16.55, 28.3, visits=1, strip_length=1),
    AnchorSite("Guadeloupe", -61.45, 16.25, visits=1, strip_length=1),
    AnchorSite("Martinique", -61.0, 14.65, visits=1, strip_length=1),
)
SEED, TILE_PX, MISSION_ANCHOR_TILES = 4, 384, 4
"""Seed 4 images every anchor through clouds; the mission's Taveuni anchor adds 4 tiles no CORINE
file covers."""
CORINE = LABEL_PRODUCTS["enmap_corine"]
PUBLISHED_NO_DATA = {48, 128, 255, 4294967295}
"""As the CLC products publish them (grid 48 NODATA, the 100 m rasters' 128, 8-bit 255, uint32 max)."""
NO_LABEL_CODES = {990, 995, 999}
GUADELOUPE_VAT = {1: 311, 2: 512, 3: 211, 4: 999, 5: 112, 6: 523, 7: 421}
"""A lon/lat extract's own numbering (through the legend, 1 would be 111 and 2 would be 112)."""
UNKNOWN_3_DIGIT = 777
PARCEL_CELLS = 12
"""Fields of 1.2 km: a patch sees a few of a file's codes, not all."""

REAL = "corine/DATA/clc_hannover_epsg3035_25m.tif"
MAINLAND = "corine/DATA/U2018_CLC2018_V2020_20u1.tif"
NATIONAL = "corine/national/clc2018_niedersachsen_dhdn_gk3.tif"
REUNION = "corine/DATA/French_DOMs/U2018_CLC2018_V2020_20u1_FR_REU.tif"
CANARIAS = "corine/national/clc2018_canarias_regcan95_utm28n.tif"
GUADELOUPE = "corine/extracts/clc2018_guadeloupe_wgs84.tif"
MARTINIQUE = "corine/vector/U2018_CLC2018_V2020_20u1_FR_MTQ.gpkg"
NO_CRS = "corine/broken/clc_no_crs.tif"
TRUNCATED = "corine/broken/U2018_CLC2018_V2020_20u1_half_downloaded.tif"
BAD_VAT = "corine/extracts/clc2018_bad_vat.tif"
SITE_FILE = {"Reunion": REUNION, "Tenerife": CANARIAS, "Guadeloupe": GUADELOUPE, "Martinique": MARTINIQUE}
"""The file that must label each site's patches; Hannover's patches: see ``_hannover_file``."""


@dataclass
class Source:
    """What the independent computation knows of a file: its cells or polygons and their codes."""

    crs: str
    transform: Affine | None = None
    values: np.ndarray | None = None
    nodata: int | None = None
    to_clc: dict[int, int] | None = None
    """Value -> CLC code; None: the values are 3-digit codes."""
    polygons: gpd.GeoDataFrame | None = None


@dataclass
class Built:
    layout: DataLayout
    sites: dict[str, pd.DataFrame]
    sources: dict[str, Source]
    dataset: BuiltDataset
    expected_file: dict[str, str]
    """sample id -> the file the rule must take for it."""


@pytest.fixture(scope="module")
def corine(tmp_path_factory, realdata: Path) -> Built:
    root = tmp_path_factory.mktemp("corine_release") / "data"
    model = replace(DEMO_VISIT_MODEL, anchors=ANCHORS)
    simulate_archive(
        root, tiles=MISSION_ANCHOR_TILES + len(ANCHORS), tile_size=TILE_PX, seed=SEED, model=model
    )
    layout = DataLayout.at(root)
    assert materialize(PLANNED, instance=DagsterInstance.ephemeral(), resources=resources(layout)).success
    run_tiles(layout, planned_tiles(layout))
    publish_release(
        layout, collect_release(layout.store, read_locations(layout.locations), read_patches(layout.patches))
    )
    shutil.rmtree(layout.archive)  # 850 MB of products the labels never read (they copy the store's)
    index = release_index(layout)
    sites = _sites(index)
    sources = _write_folder(layout.label_sources, sites, realdata)
    release = layout.releases / (layout.releases / LATEST).read_text().strip()
    dataset = build_label_dataset(
        CORINE,
        release,
        layout.store,
        layout.label_sources,
        layout.labels,
        lambda f, items: [f(i) for i in items],
        SplitSettings(method="random"),
        min_labelled_fraction=0.0,
    )
    expected = {sample_id(p.location_id, p.tile_id): SITE_FILE.get(site) or _hannover_file(sources, p)
                for site, patches in sites.items() for p in patches.itertuples()}  # fmt: skip
    return Built(layout, sites, sources, dataset, expected)


def _hannover_file(sources: dict[str, Source], patch) -> str:
    """The rule at Hannover, where three files overlap: the 20 m national raster (finest) where it
    covers the whole patch, else the real 25 m sample (it covers every patch; the 100 m mainland
    raster never wins)."""
    national = sources[NATIONAL]
    valid = np.flatnonzero((national.values != 255).any(axis=0))
    t = national.transform
    extent = shapely.box(t.c, t.f + national.values.shape[0] * t.e, t.c + (valid.max() + 1) * t.a, t.f)
    footprint = footprint_in(national.crs, int(patch.epsg), patch.x0, patch.y0)
    covered = shapely.area(shapely.intersection(footprint, extent)) / shapely.area(footprint)
    return NATIONAL if covered > 0.999 else REAL


def _sites(index: pd.DataFrame) -> dict[str, pd.DataFrame]:
    lon, lat = patch_centres_lonlat(index)
    sites = {}
    for anchor in ANCHORS:
        near = (np.abs(lon - anchor.lon) < 0.2) & (np.abs(lat - anchor.lat) < 0.2)
        assert near.any(), (
            f"no simulated patch at {anchor.name}: the simulator's draws changed, pick another SEED"
        )
        sites[anchor.name] = index[near]
    return sites


def _write_folder(folder: Path, sites: dict[str, pd.DataFrame], realdata: Path) -> dict[str, Source]:
    """The files under the label-source root ``folder``, by their names under it."""
    rng = np.random.default_rng(15)
    sources: dict[str, Source] = {}
    (folder / REAL).parent.mkdir(parents=True)
    shutil.copy(realdata / "corine" / "clc_hannover_epsg3035_25m.tif", folder / REAL)
    with rasterio.open(folder / REAL) as ds:
        sources[REAL] = Source(ds.crs.to_wkt(), ds.transform, ds.read(1), None, dict(CORINE_GRID_TO_CLC))

    def raster(name, site, crs, cell, codes, dtype, nodata, to_clc, margin=2000.0, sliver=None, edit=None):
        transform, h, w = covering_grid(sites[site], crs, cell, margin)
        values = fields((h, w), codes, rng, PARCEL_CELLS, dtype)
        if edit is not None:
            values, transform = edit(values, transform)
        if sliver is not None:
            assert mark_slivers(values, transform, crs.to_wkt(), sites[site], sliver), f"no sliver in {name}"
        write_raster(folder / name, crs, transform, values, nodata)
        sources[name] = Source(crs.to_wkt(), transform, values, nodata, to_clc)
        return values

    def mainland(values, transform):  # the 100 m product's outside value around the data
        values[:3], values[-3:], values[:, :3], values[:, -3:] = 128, 128, 128, 128
        return values, transform

    raster(MAINLAND, "Hannover", CRS.from_epsg(3035), 100.0, [40, 41, 23, 26], "uint8", 128,
           dict(CORINE_GRID_TO_CLC), edit=mainland)  # fmt: skip

    hannover = sites["Hannover"]
    gk3 = CRS.from_epsg(31467)
    transform, h, w = covering_grid(hannover, gk3, 20.0, 2000.0)
    values = fields((h, w), [12, 18, 23, 25, 2, 41], rng, PARCEL_CELLS, "uint8")
    west = hannover[hannover["x0"] < hannover["x0"].median()]
    assert mark_slivers(values, transform, gk3.to_wkt(), west, 30), "no sliver in the national raster"
    to_gk3 = Transformer.from_crs(int(hannover["epsg"].iat[0]), gk3, always_xy=True)
    cut, _ = to_gk3.transform(hannover["x0"].max() + 1500.0, hannover["y0"].mean())
    values[:, int((cut - transform.c) // 20) :] = 255  # no data east of 1.5 km into the eastern patches
    write_raster(folder / NATIONAL, gk3, transform, values, 255)
    sources[NATIONAL] = Source(gk3.to_wkt(), transform, values, 255, dict(CORINE_GRID_TO_CLC))

    reunion = sites["Reunion"]

    def cut_through_the_patches(values, transform):  # the file ends 1.5 km into the eastern patches
        east = reunion["x0"].max() + 1500.0
        width = int((east - transform.c) // 100)
        values = values[:, :width].copy()
        values[10:14] = 255
        return values, transform

    raster(REUNION, "Reunion", CRS.from_epsg(2975), 100.0, [23, 24, 12, 2, 44, 48], "uint8", 255,
           dict(CORINE_GRID_TO_CLC), edit=cut_through_the_patches)  # fmt: skip

    canarias = sites["Tenerife"].iloc[0]

    def unknown_and_no_data(values, transform):
        col, row = ~transform * (canarias["x0"] + 1000.0, canarias["y0"] - 1000.0)
        values[int(row) : int(row) + 2, int(col) : int(col) + 2] = UNKNOWN_3_DIGIT
        values[5:8] = 4294967295
        return values, transform

    raster(CANARIAS, "Tenerife", CRS.from_epsg(4083), 100.0, [311, 312, 324, 333, 521, 242], "uint32",
           4294967295, None, sliver=331, edit=unknown_and_no_data)  # fmt: skip

    def border_of_zeros(values, transform):
        values[:, :20] = 0
        return values, transform

    values = raster(GUADELOUPE, "Guadeloupe", CRS.from_epsg(4326), 0.0009, [1, 2, 3, 4, 5, 6], "uint8", 0,
                    GUADELOUPE_VAT, margin=0.02, sliver=7, edit=border_of_zeros)  # fmt: skip
    write_vat(folder / GUADELOUPE, GUADELOUPE_VAT, values)

    martinique = sites["Martinique"]
    box = (martinique["x0"].min() - 1537.0, martinique["y0"].min() - PATCH_M - 1537.0)
    box += (martinique["x0"].max() + PATCH_M + 1500.0, martinique["y0"].max() + 1500.0)
    codes = ["311", "312", "211", "512", "122", "523", "999"]
    # per patch a small coastal marsh reaching 5 m over its west edge, under none of its pixel centres
    marsh = [
        shapely.box(x - 55, y - 1950, x + 5, y - 1890)
        for x, y in zip(martinique["x0"], martinique["y0"], strict=True)
    ]
    frame = write_polygons(
        folder / MARTINIQUE, "EPSG:32620", box, 700.0, codes, rng, (marsh, ["421"] * len(marsh))
    )
    sources[MARTINIQUE] = Source("EPSG:32620", polygons=frame)

    write_raster(folder / NO_CRS, None, Affine(100, 0, 0, 0, -100, 0), np.full((16, 16), 23, np.uint8), 48)
    data = (folder / MAINLAND).read_bytes()
    (folder / TRUNCATED).write_bytes(data[: len(data) // 2])
    transform, h, w = covering_grid(martinique, CRS.from_epsg(32620), 100.0)
    bad = fields((h, w), [1, 2, 9], rng, 5, "uint8")
    write_raster(folder / BAD_VAT, CRS.from_epsg(32620), transform, bad, None)
    write_vat(folder / BAD_VAT, {1: 311, 2: 512}, bad)
    legend = folder / "corine/Legend"
    write_dbf(legend / "clc_legend.dbf", (("GRID_CODE", "N", 4, 0),), [(1,)])
    (legend / "CLC2018_CLC2018_V2018_20_QGIS.txt").write_text("1,230,0,77,255,111\n")
    return sources


def _ids(patches: pd.DataFrame) -> list[str]:
    return [sample_id(a, b) for a, b in zip(patches["location_id"], patches["tile_id"], strict=True)]


def expected_classes(source: Source, epsg: int, x0: float, y0: float) -> np.ndarray:
    """The 19-class multi-hot label of a patch, computed here: the cells (polygons) whose
    intersection with the footprint (densified every 40 m, carried into the file's CRS) has an
    area, their values without no data, converted, grouped as storage_schemas groups them."""
    footprint = footprint_in(source.crs, epsg, x0, y0)
    shapely.prepare(footprint)
    if source.polygons is not None:
        hit = shapely.area(shapely.intersection(source.polygons.geometry.to_numpy(), footprint)) > 0
        codes = {int(c) for c in source.polygons["Code_18"][hit]}
    else:
        t = source.transform
        xs, ys = np.asarray(footprint.exterior.coords).T
        cols, rows = ~t * (xs, ys)
        c0, r0 = max(int(cols.min()) - 1, 0), max(int(rows.min()) - 1, 0)
        c1 = min(int(cols.max()) + 2, source.values.shape[1])
        r1 = min(int(rows.max()) + 2, source.values.shape[0])
        r, c = np.mgrid[r0:r1, c0:c1]
        cells = cell_boxes(t, r, c)
        overlap = shapely.within(cells, footprint)
        edge = ~overlap & shapely.intersects(cells, footprint)
        overlap[edge] = shapely.area(shapely.intersection(cells[edge], footprint)) > 0
        values = (
            set(np.unique(source.values[r[overlap], c[overlap]]).tolist())
            - PUBLISHED_NO_DATA
            - {source.nodata}
        )
        convert = source.to_clc if source.to_clc is not None else {v: v for v in values if v in CLC_LEGEND}
        codes = {convert[v] for v in values if v in convert}
    codes -= NO_LABEL_CODES
    return np.array([bool(codes & set(group)) for group in CORINE_BIGEARTHNET19.codes])


def test_real_corine_every_patch_equals_the_independent_computation(corine: Built):
    dataset = corine.dataset
    labels = zarr.open_group(dataset.path, mode="r")[MULTI_HOT][:].astype(bool)
    row_of = {s: i for i, s in enumerate(dataset.content.samples["sample_id"])}
    reasons = dataset.left_out.set_index("sample_id")["reason"]
    compared = 0
    for site, patches in corine.sites.items():
        for patch in patches.itertuples():
            sample = sample_id(patch.location_id, patch.tile_id)
            source = corine.sources[corine.expected_file[sample]]
            expected = expected_classes(source, int(patch.epsg), patch.x0, patch.y0)
            if expected.any():
                assert sample in row_of, (site, sample, reasons.get(sample))
                np.testing.assert_array_equal(labels[row_of[sample]], expected, err_msg=f"{site} {sample}")
            else:
                assert reasons[sample] == "no class of the map in the patch", (site, sample)
            compared += 1
    assert compared == sum(len(p) for p in corine.sites.values()) >= 2 * len(ANCHORS)
    assert len(dataset.content.samples) == len(row_of) <= compared, "only the sites' patches are labelled"


def test_real_corine_provenance_lists_every_file_with_its_crs_and_patches(corine: Built):
    recorded = {f["name"]: f for f in corine.dataset.content.attrs["provenance"]["label_sources"]}
    assert set(recorded) == set(corine.sources), "every usable file, and only those"
    crs = {REAL: "EPSG:3035", MAINLAND: "EPSG:3035", NATIONAL: "EPSG:31467", REUNION: "EPSG:2975"}
    crs |= {CANARIAS: "EPSG:4083"}
    crs |= {GUADELOUPE: "EPSG:4326", MARTINIQUE: "EPSG:32620"}
    assert {n: f["crs"] for n, f in recorded.items()} == crs
    conventions = {n: f["convention"] for n, f in recorded.items()}
    assert conventions == {REAL: "grid", MAINLAND: "grid", NATIONAL: "grid", REUNION: "grid"} | {
        CANARIAS: "clc",
        GUADELOUPE: "vat",
        MARTINIQUE: "clc",
    }
    samples = corine.dataset.content.samples["sample_id"]
    labelled = pd.Series([corine.expected_file[s] for s in samples]).value_counts()
    for name in corine.sources:
        assert recorded[name]["patches"] == labelled.get(name, 0), name
    assert labelled[NATIONAL] > 0 and labelled[REAL] > 0, "finer where it covers, the real sample elsewhere"
    assert all(labelled.get(f, 0) > 0 for f in SITE_FILE.values())
    assert recorded[MAINLAND]["patches"] == 0, "the finer files cover the Hannover patches as fully"
    assert recorded[NATIONAL]["cell_m"] == pytest.approx(20.0, abs=0.5)
    assert recorded[GUADELOUPE]["value_table"] == GUADELOUPE + ".vat.dbf"
    assert recorded[REAL]["value_table"] is None
    assert recorded[REAL]["cell_m"] == pytest.approx(25.0, abs=0.5)
    assert recorded[MAINLAND]["cell_m"] == pytest.approx(100.0, abs=1)
    assert (
        recorded[CANARIAS]["unknown_values"] == [UNKNOWN_3_DIGIT] and recorded[CANARIAS]["unknown_pixels"] > 0
    )
    assert corine.dataset.unknown_codes >= recorded[CANARIAS]["unknown_pixels"]


def test_real_corine_patches_past_a_raster_edge_are_partly_unlabelled_not_an_error(corine: Built):
    fractions = corine.dataset.content.samples.set_index("sample_id")["labelled_fraction"]
    cut = [fractions[s] for s in _ids(corine.sites["Reunion"]) if s in fractions.index and fractions[s] < 0.9]
    assert cut and all(0.05 < f < 0.9 for f in cut), "the eastern patches reach past the file's edge"


def test_real_corine_bad_files_are_named_and_the_rest_goes_on(corine: Built):
    problems = corine.dataset.problems
    text = "\n".join(problems)
    assert f"{NO_CRS}: the raster has no CRS" in text
    assert f"{TRUNCATED}: unreadable" in text
    bad_vat = next(p for p in problems if ".vat.dbf" in p)
    assert "clc2018_bad_vat.tif.vat.dbf" in bad_vat and "holds values [9]" in bad_vat
    overlaps = [p for p in problems if "overlap with different codes" in p]
    assert any(
        p.startswith(f"{REAL} and {MAINLAND} overlap") and f"labelled from {REAL}" in p for p in overlaps
    )
    assert any(p.startswith(f"{NATIONAL} and {REAL} overlap") for p in overlaps)
    unknown = next(p for p in problems if p.startswith(CANARIAS))
    assert f"[{UNKNOWN_3_DIGIT}]" in unknown and "'clc' conversion" in unknown
    assert not any("Legend" in p for p in problems), "value tables and documents are no sources"
    reasons = corine.dataset.left_out["reason"]
    assert reasons.str.startswith("outside ").any(), "Taveuni's patches: no CORINE file reaches them"


def test_real_corine_asset_and_observation_list_the_files_and_their_problems(corine: Built):
    """Through Dagster: the ``label_sources/corine`` observation names the refused files, and the
    dataset asset succeeds with every file's CRS and patches in its metadata and the overlap and
    the unknown values among its warnings (the same dataset as built directly)."""
    source = label_source_asset("corine")
    job = define_asset_job("corine", selection=AssetSelection.assets(source.key, AssetKey(CORINE.name)))
    defs = Definitions(
        assets=[source, label_dataset_asset(CORINE)],
        jobs=[job],
        resources={
            "data_root": DataRoot(data_root=str(corine.layout.root), archive=str(corine.layout.archive)),
            "label_sources": LabelSourcesRoot(),
            "dask": DaskCluster(n_workers=0),
        },
    )
    config = {"ops": {CORINE.name: {"config": {"split": "random", "min_labelled_fraction": 0.0}}}}
    result = defs.resolve_job_def("corine").execute_in_process(
        instance=DagsterInstance.ephemeral(), run_config=config
    )
    assert result.success
    (observation,) = [e.event_specific_data.asset_observation for e in result.get_asset_observation_events()]
    assert observation.metadata["files"].value == len(corine.sources)
    problems = observation.metadata["problems"].value
    assert "clc_no_crs.tif: the raster has no CRS" in problems and "clc2018_bad_vat.tif.vat.dbf" in problems
    (materialization,) = result.asset_materializations_for_node(CORINE.name)
    metadata = materialization.metadata
    assert metadata["version"].value == corine.dataset.version
    files = {f["name"]: f for f in metadata["label_sources"].value}
    assert files[REAL]["patches"] > 0 and files[REUNION]["crs"] == "EPSG:2975"
    warnings = metadata["warnings"].value
    assert "overlap with different codes" in warnings and f"[{UNKNOWN_3_DIGIT}]" in warnings
    assert "clc_no_crs.tif" in warnings, "the refused files are the dataset's warnings too"
    assert metadata["unknown_codes"].value == corine.dataset.unknown_codes > 0


def test_the_rule_takes_the_most_covered_then_the_finer_then_the_first_name():
    def label(fraction: float, code: int) -> PatchLabel:
        mask = np.zeros((128, 128), np.uint16)
        mask[:, : round(128 * fraction)] = code
        return PatchLabel(mask, np.zeros(19, bool), fraction, 0)

    chosen, overlaps = choose_label([("b.tif", 100.0, label(1.0, 211)), ("a.tif", 25.0, label(0.5, 211))])
    assert chosen.source == "b.tif" and overlaps == [], "coverage first; agreeing overlaps are no problem"
    chosen, overlaps = choose_label([("b.tif", 99.96, label(1.0, 211)), ("a.tif", 100.0, label(1.0, 311))])
    assert chosen.source == "a.tif", "cells within a metre are as fine: the name decides"
    assert overlaps == [Overlap("a.tif", "b.tif", 128 * 128, 128 * 128)]
    chosen, _ = choose_label([("a.tif", 100.0, label(1.0, 211)), ("z.gpkg", 0.0, label(1.0, 211))])
    assert chosen.source == "z.gpkg", "polygons are the finest"
