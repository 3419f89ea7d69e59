"""The demo's simulated archives give every label dataset train, val and test samples.

``make demo`` simulates its archives with the demo visit model at the Makefile's DEMO_* settings;
the label datasets then split by spatial blocks (``assets.labels.splits``, the default the real
recipe uses). This test takes the same plan (read from the Makefile, so a change of settings is
tested too), keeps the products the catalog would accept (no injected fault, cloud cover within
the catalog's limit), plans the patches with the geometry stage, picks each dataset's candidates
(sensor, months, product years, the simulated label rasters' region) and splits them with the
build's default settings. Without pixels it cannot see patches masked by clouds, too little
labelled area or EnMAP-CDL's balancing: those the demo checks itself (``pipelines.demo`` fails,
naming the dataset and the empty split).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from assets.archive.scan import CatalogPolicy
from assets.geometry.intersections import temporal_intersections
from assets.geometry.overlap_graph import build_overlap_graph
from assets.geometry.patch_plan import build_patch_plan
from assets.labels.build import SplitSettings
from assets.labels.selection import patch_centres_lonlat
from assets.labels.splits import blocked_split
from pipelines.demo import incomplete_datasets
from simulator import faults
from simulator.acquisitions import DEMO_VISIT_MODEL, MISSIONS, plan_acquisitions
from simulator.archive import product_specs
from simulator.catalog_only import catalog_frame
from simulator.covers import draw_covers
from simulator.label_grids import CDL_GRID, CORINE_GRID, NLCD_GRID
from storage_schemas.label_dataset import SPLIT_NAMES
from storage_schemas.label_products import LABEL_PRODUCTS, product_year

MAKEFILE = Path(__file__).resolve().parents[2] / "Makefile"
REGIONS = {"corine": CORINE_GRID.region, "cdl": CDL_GRID.region, "nlcd": NLCD_GRID.region}
"""Where the simulated label rasters hold data (their products' continental grids)."""


def demo_settings() -> dict[str, int]:
    text = MAKEFILE.read_text()
    settings = {k: int(v) for k, v in re.findall(r"^(DEMO_\w+) \?= (\d+)$", text, flags=re.M)}
    seeds = set(re.findall(r"simulate .*?--seed (\d+)", text.replace("\\\n", " ")))
    assert len(seeds) == 1, f"one seed for the demo's archives, found {seeds}"
    settings["SEED"] = int(seeds.pop())
    return settings


def accepted_patches(sensor: str, tiles: int, tile_size: int, seed: int, n_faults: int) -> pd.DataFrame:
    """The patch plan of the demo archive's products that the catalog accepts."""
    plan = plan_acquisitions(tiles, tile_size, seed, DEMO_VISIT_MODEL, MISSIONS[sensor])
    specs, _ = product_specs(plan, seed, n_faults)
    covers = draw_covers(plan, seed, accepted_only=False)
    limit = CatalogPolicy().max_cloud_cover
    accepted = np.array(
        [s.fault in (None, faults.DUPLICATE) and s.targets["cloud_cover"] <= limit for s in specs]
    )
    catalog = catalog_frame(plan, covers)[accepted].reset_index(drop=True)
    found = temporal_intersections(catalog, build_overlap_graph(catalog), lambda f, xs: list(map(f, xs)))
    planned = build_patch_plan(catalog, found.table, None)
    return planned.patches.merge(planned.locations[["location_id", "epsg", "x0", "y0"]], on="location_id")


def split_sizes(patches: pd.DataFrame, product) -> dict[str, int]:
    """Samples per split of the product's candidates among ``patches``, the build's default split."""
    lon, lat = patch_centres_lonlat(patches)
    west, south, east, north = REGIONS[product.source]
    time = pd.to_datetime(patches["acquired"], utc=True)
    chosen = (lon >= west) & (lon <= east) & (lat >= south) & (lat <= north)
    if product.months:
        chosen &= time.dt.month.isin(product.months).to_numpy()
    chosen &= np.array([product_year(product, int(y)) is not None for y in time.dt.year], dtype=bool)
    candidates = patches[chosen]
    locations = candidates.drop_duplicates("location_id").reset_index(drop=True)
    if locations.empty:
        return dict.fromkeys(SPLIT_NAMES, 0)
    settings = SplitSettings()
    split = blocked_split(
        locations["location_id"],
        *patch_centres_lonlat(locations),
        settings.fractions,
        block_m=settings.block_km * 1000,
        gap_m=settings.gap_km * 1000,
        seed=settings.seed,
    )
    per_sample = candidates["location_id"].map(dict(zip(locations["location_id"], split, strict=True)))
    counts = per_sample.value_counts()
    return {name: int(counts.get(name, 0)) for name in SPLIT_NAMES}


@pytest.fixture(scope="module")
def demo_patches() -> dict[str, pd.DataFrame]:
    s = demo_settings()
    return {
        "enmap": accepted_patches("enmap", s["DEMO_TILES"], s["DEMO_TILE_SIZE"], s["SEED"], s["DEMO_FAULTS"]),
        "desis": accepted_patches("desis", s["DEMO_DESIS_TILES"], s["DEMO_DESIS_TILE_SIZE"], s["SEED"], 0),
    }


@pytest.mark.parametrize("name", ["enmap_corine", "enmap_cdl", "enmap_nlcd", "desis_cdl"])
def test_the_demo_archive_gives_every_dataset_every_split(demo_patches, name):
    product = LABEL_PRODUCTS[name]
    sizes = split_sizes(demo_patches[product.sensor], product)
    empty = [split for split, n in sizes.items() if n == 0]
    assert not empty, f"{name}: split {', '.join(empty)} empty in the demo's archive ({sizes})"
    assert sizes["val"] >= 2 and sizes["test"] >= 2, f"{name}: too close to an empty split ({sizes})"


def test_one_site_imaged_again_and_again_leaves_val_and_test_empty():
    """Why the demo spreads its label sites: the patches of one place fill one or two 20 km blocks,
    and a block takes val or test only when it holds at most a fifth or 30% of the samples."""
    lon, lat = np.meshgrid(-88.9 + 0.04 * np.arange(4), 40.4 + 0.035 * np.arange(4))
    ids = pd.Series([f"32616_{i}" for i in range(lon.size)])
    split = blocked_split(ids, lon.ravel(), lat.ravel())
    assert "val" not in set(split) or "test" not in set(split)


def test_the_demo_names_each_incomplete_dataset_and_split():
    outcomes = {
        "desis_cdl": {"samples_train": 4, "samples_val": 0, "samples_test": 0},
        "enmap_cdl": {"samples_train": 12, "samples_val": 2, "samples_test": 4},
        "enmap_nlcd": "the nlcd rasters cover no patch of release 1234",
    }
    assert incomplete_datasets(outcomes) == [
        "desis_cdl: split val, test empty (train 4, val 0, test 0)",
        "enmap_nlcd: not built: the nlcd rasters cover no patch of release 1234",
    ]
