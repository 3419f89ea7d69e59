"""A new label product is one configuration entry: polygons in GeoParquet (in an Albers CRS of
their own), an inline class map, a segmentation task. Its masks are the polygons rasterised onto
each patch grid."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from assets.labels.build import LabelBuildError, build_label_dataset
from storage_schemas.label_products import LabelProduct, class_map_of
from storage_schemas.plan import PATCH_M
from storage_schemas.release import LATEST
from tests.labels.rasters import albers_around, cluster, release_index

TREES = LabelProduct(
    name="enmap_tree_species",
    sensor="enmap",
    source="tree_species",
    path_pattern="tree_species/*.parquet",
    class_map="tree_species",
    task="segmentation",
    mask_folder="tree_species",
    vector_attribute="species",
    classes=(("Pine", (1,)), ("Beech", (2,)), ("Oak", (3,))),
)


def _halves(site) -> gpd.GeoDataFrame:
    """Per patch window, a west half coded 1 (Pine) and an east half coded 2 (Beech), made in the
    patch's UTM zone with a vertex every 30 m and stored in an Albers CRS around the site (the
    test archive's site may straddle the antimeridian, where lon/lat polygons would need splitting)."""
    frames = []
    for epsg, part in site.drop_duplicates("location_id").groupby("epsg"):
        half = PATCH_M / 2
        west = [shapely.box(x, y - PATCH_M, x + half, y) for x, y in zip(part["x0"], part["y0"], strict=True)]
        east = [
            shapely.box(x + half, y - PATCH_M, x + PATCH_M, y)
            for x, y in zip(part["x0"], part["y0"], strict=True)
        ]
        frame = gpd.GeoDataFrame(
            {"species": np.array([1] * len(west) + [2] * len(east), dtype=np.int32)},
            geometry=shapely.segmentize(np.array(west + east), 30.0),
            crs=f"EPSG:{epsg}",
        )
        frames.append(frame.to_crs(albers_around(site)))
    return gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs=frames[0].crs)


def _build(layout, product=TREES):
    release = layout.releases / (layout.releases / LATEST).read_text().strip()
    serial = lambda f, items: [f(i) for i in items]  # noqa: E731
    return build_label_dataset(product, release, layout.store, layout.label_sources, layout.labels, serial)


def test_polygons_are_rasterised_onto_each_patch_with_an_inline_class_map(released):
    site = cluster(release_index(released))
    path = released.label_sources / "tree_species" / "stands.parquet"
    path.parent.mkdir(parents=True)
    _halves(site).to_parquet(path)
    built = _build(released)
    samples = built.content.samples
    assert set(samples["location_id"]) == set(site["location_id"])
    masks, classes = built.content.masks, built.content.classes
    assert (masks[:, :, :64] == 1).all() and (masks[:, :, 64:] == 2).all()
    trees = class_map_of(TREES)
    assert trees.classes == ("Pine", "Beech", "Oak", "Background") and trees.ignore_index == 3
    assert (classes[:, :, :64] == 0).all() and (classes[:, :, 64:] == 1).all()


def test_polygons_without_crs_are_refused_by_name(released):
    path = released.label_sources / "tree_species" / "stands.parquet"
    path.parent.mkdir(parents=True)
    gpd.GeoDataFrame({"species": [1]}, geometry=[shapely.box(0, 0, 1, 1)], crs=None).to_parquet(path)
    with pytest.raises(LabelBuildError, match=r"stands\.parquet: the polygons have no CRS"):
        _build(released)
