"""The release's STAC: a collection whose extent and bands are the data's, items (one per
location) that round-trip through stac-geoparquet with their ids, outlines and slots, and files
written atomically with relative hrefs."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pystac
import pytest
import shapely
from stac_geoparquet.arrow import stac_table_to_items

from assets.geometry.metric import to_lonlat
from assets.patches.release_stac import (
    COLLECTION_ID,
    ITEMS_ASSET,
    PARQUET_MEDIA_TYPE,
    SUMMARY_MAXCOUNT,
    ZARR_MEDIA_TYPE,
    build_collection,
    build_items,
    item_bboxes,
    iter_items,
    write_collection,
    write_items_geoparquet,
)
from storage_schemas.plan import PATCH_M, location_id
from storage_schemas.release import COLLECTION, ITEMS

STORE = "../../../stores/spectral_earth.zarr"
VERSION = "0123abcd"
ANTIMERIDIAN = (32760, 818_415.0, 8_140_005.0)
"""A window in UTM zone 60S (Taveuni, Fiji) whose east half lies past 180 degrees."""


@pytest.fixture(scope="module")
def locations() -> gpd.GeoDataFrame:
    """Twelve locations in two UTM zones: eleven around Berlin, one across the antimeridian."""
    windows = [(32633, 390_015.0 + 3840.0 * (i % 4), 5_820_005.0 - 3840.0 * (i // 4)) for i in range(11)]
    windows.append(ANTIMERIDIAN)
    frame = pd.DataFrame(windows, columns=["epsg", "x0", "y0"]).astype({"epsg": "int32"})
    frame.insert(0, "location_id", [location_id(*w) for w in windows])
    frame["n_timestamps"] = np.array([1, 2, 1, 3] * 3, dtype="int32")
    boxes = shapely.box(frame["x0"], frame["y0"] - PATCH_M, frame["x0"] + PATCH_M, frame["y0"])
    return gpd.GeoDataFrame(frame, geometry=to_lonlat(boxes, frame["epsg"].to_numpy()), crs=4326)


@pytest.fixture(scope="module")
def index(locations) -> pd.DataFrame:
    """The patch index, rows shuffled; times of one location deliberately out of slot order."""
    rows = locations.loc[locations.index.repeat(locations["n_timestamps"])].reset_index(drop=True)
    k = rows.groupby("location_id").cumcount().to_numpy()
    frame = pd.DataFrame(
        {
            "slot": np.arange(len(rows), dtype="int64") + 64,
            "location_id": rows["location_id"],
            "tile_id": [f"T{(i + j) % 5}" for i, j in zip(rows.index, k, strict=True)],
            "time": pd.Timestamp("2023-03-04T10:11:12.5Z") + pd.to_timedelta((2 - k) * 40, unit="D"),
            "epsg": rows["epsg"],
            "x0": rows["x0"],
            "y0": rows["y0"],
            "same_grid": True,
            "masked_fraction": np.float32(0.0),
            "patch_hash": "h",
        }
    )
    return frame.sample(frac=1.0, random_state=0).reset_index(drop=True)


@pytest.fixture(scope="module")
def bands() -> pd.DataFrame:
    wavelength = np.concatenate([np.linspace(420.0, 1290.0, 120), np.linspace(1520.0, 2445.0, 82)])
    return pd.DataFrame({"band": np.arange(1, 203), "wavelength_nm": wavelength, "fwhm_nm": 8.0})


@pytest.fixture(scope="module")
def statistics(bands) -> pd.DataFrame:
    stats = bands.assign(mean=1000.0 + bands["band"], std=50.0, valid_pixels=12345)
    return stats.sample(frac=1.0, random_state=2)  # order must not matter


def collection_for(index, locations, bands, statistics) -> pystac.Collection:
    return build_collection(VERSION, index, locations, bands, statistics, STORE)


def test_collection_extent_bands_and_assets_are_the_data(index, locations, bands, statistics):
    collection = collection_for(index, locations, bands, statistics)
    d = collection.to_dict(include_self_link=False, transform_hrefs=False)
    read = pystac.Collection.from_dict(d)
    assert read.summaries.get_list("eo:bands") == d["summaries"]["eo:bands"]
    read.summaries.maxcount = SUMMARY_MAXCOUNT  # pystac's default drops lists of 25 or more on output
    assert read.to_dict(include_self_link=False, transform_hrefs=False) == d
    assert d["id"] == COLLECTION_ID and d["version"] == VERSION and d["license"] == "other"
    assert "https://stac-extensions.github.io/version/v1.2.0/schema.json" in d["stac_extensions"]
    assert d["extent"]["spatial"]["bbox"] == [list(locations.total_bounds)]
    assert d["extent"]["spatial"]["bbox"][0][0] == -180.0  # the antimeridian location reaches both edges
    interval = collection.extent.temporal.intervals[0]
    assert interval == [index["time"].min().to_pydatetime(), index["time"].max().to_pydatetime()]
    assert "© DLR 2023" in d["description"]
    assert {p["name"] for p in d["providers"]} == {"DLR (German Aerospace Center)", "SpectralForge"}
    eo = d["summaries"]["eo:bands"]
    raster = d["summaries"]["raster:bands"]
    assert len(eo) == len(raster) == 202
    assert eo[0] == {"name": "B001", "center_wavelength": 0.42, "full_width_half_max": 0.008}
    assert [b["center_wavelength"] for b in eo] == sorted(b["center_wavelength"] for b in eo)
    assert raster[201]["statistics"] == {"mean": 1202.0, "stddev": 50.0}
    assert raster[0]["nodata"] == -32768 and raster[0]["data_type"] == "int16"
    assert d["summaries"]["proj:code"] == ["EPSG:32633", "EPSG:32760"]
    store = d["assets"]["reflectance"]
    assert store == {
        "href": STORE,
        "type": ZARR_MEDIA_TYPE,
        "title": store["title"],
        "roles": ["data"],
    }
    items_asset = d["assets"][ITEMS_ASSET]
    assert items_asset["href"] == f"./{ITEMS}" and items_asset["type"] == PARQUET_MEDIA_TYPE
    assert items_asset["roles"] == ["stac-items"]
    assert {d["assets"][k]["href"] for k in ("statistics", "patch_index")} == {
        "./statistics.csv",
        "./patches.parquet",
    }


def test_collection_refuses_statistics_of_other_bands(index, locations, bands, statistics):
    with pytest.raises(ValueError, match="statistics lack bands"):
        collection_for(index, locations, bands, statistics.iloc[:-1])


def test_items_one_per_location_with_slots_in_time_order(index, locations):
    items = build_items(VERSION, index, locations, STORE)
    assert [i["id"] for i in items] == sorted(locations["location_id"])
    by_id = {i["id"]: i for i in items}
    for loc in locations.itertuples():
        item = by_id[loc.location_id]
        patches = index[index["location_id"] == loc.location_id].sort_values("time")
        props = item["properties"]
        assert props["spectral_earth:slots"] == patches["slot"].tolist()
        assert props["spectral_earth:tiles"] == patches["tile_id"].tolist()
        assert len(props["spectral_earth:timestamps"]) == loc.n_timestamps
        assert props["datetime"] is None
        assert props["start_datetime"] == props["spectral_earth:timestamps"][0]
        assert props["end_datetime"] == props["spectral_earth:timestamps"][-1]
        assert pd.Timestamp(props["start_datetime"]) == patches["time"].min()
        assert props["proj:code"] == f"EPSG:{loc.epsg}" and props["proj:shape"] == [128, 128]
        assert props["proj:transform"] == [30.0, 0.0, loc.x0, 0.0, -30.0, loc.y0]
        assert shapely.geometry.shape(item["geometry"]).equals(loc.geometry)
        assert item["collection"] == COLLECTION_ID
        assert item["assets"]["reflectance"]["href"] == STORE
        assert item["links"] == [{"rel": "collection", "href": f"./{COLLECTION}", "type": "application/json"}]
    assert by_id[location_id(*ANTIMERIDIAN)]["properties"]["start_datetime"].endswith("10:11:12.500000Z")
    pystac.Item.from_dict(items[0])  # pystac reads them


def test_antimeridian_bbox_runs_west_to_east_across_it(locations):
    bboxes = item_bboxes(locations.geometry.to_numpy())
    west, south, east, north = bboxes[-1]
    assert 179.0 < west < 180.0 and -180.0 < east < -179.0 and south < north
    assert (bboxes[:-1, 0] < bboxes[:-1, 2]).all()
    assert np.allclose(bboxes[:-1], locations.geometry.bounds.to_numpy()[:-1])


def test_items_refuse_an_index_that_disagrees_with_the_locations(index, locations):
    with pytest.raises(ValueError, match="1 outlines have no patch"):
        build_items(
            VERSION, index[index["location_id"] != locations["location_id"].iloc[0]], locations, STORE
        )
    with pytest.raises(ValueError, match="1 indexed locations have no outline"):
        iter_items(VERSION, index, locations.iloc[1:], STORE)
    with pytest.raises(ValueError, match="EPSG:4326"):
        build_items(VERSION, index, locations.to_crs(3857), STORE)


def test_items_parquet_round_trips_ids_geometry_and_slots(tmp_path, index, locations, bands, statistics):
    items = build_items(VERSION, index, locations, STORE)
    path = tmp_path / ITEMS
    collection = collection_for(index, locations, bands, statistics)
    write_items_geoparquet(iter_items(VERSION, index, locations, STORE), path, collection, chunk_size=5)
    assert [p.name for p in tmp_path.iterdir()] == [ITEMS]  # no temporary file left behind
    table = pq.read_table(path)
    assert pq.ParquetFile(path).num_row_groups == 3 and table.num_rows == len(locations)
    back = list(stac_table_to_items(table))
    assert [i["id"] for i in back] == [i["id"] for i in items]
    for original, read in zip(items, back, strict=True):
        assert read["properties"]["spectral_earth:slots"] == original["properties"]["spectral_earth:slots"]
        assert read["properties"]["spectral_earth:tiles"] == original["properties"]["spectral_earth:tiles"]
        assert shapely.geometry.shape(read["geometry"]).equals(shapely.geometry.shape(original["geometry"]))
        assert read["bbox"] == pytest.approx(original["bbox"])
    frame = gpd.read_parquet(path)
    assert frame.crs.to_epsg() == 4326 and len(frame) == len(locations)
    assert frame["id"].tolist() == [i["id"] for i in items]
    outlines = locations.set_index("location_id").geometry.loc[frame["id"]]
    assert all(a.equals(b) for a, b in zip(frame.geometry, outlines, strict=True))
    metadata = json.loads(pq.read_schema(path).metadata[b"stac-geoparquet"])
    assert COLLECTION_ID in metadata["collections"]
    write_items_geoparquet(items, tmp_path / "again.parquet", collection, chunk_size=5)
    assert (tmp_path / "again.parquet").read_bytes() == path.read_bytes()  # same release, same bytes
    with pytest.raises(ValueError, match="no items"):
        write_items_geoparquet([], tmp_path / "empty.parquet")


def test_collection_json_has_relative_hrefs_and_reads_back(tmp_path, index, locations, bands, statistics):
    collection = collection_for(index, locations, bands, statistics)
    path = tmp_path / "release" / COLLECTION
    write_collection(collection, path)
    first = path.read_bytes()
    write_collection(collection_for(index, locations, bands, statistics), path)
    assert path.read_bytes() == first and [p.name for p in path.parent.iterdir()] == [COLLECTION]
    d = json.loads(first)
    assert all(not link["href"].startswith("/") for link in d["links"])
    assert d["assets"][ITEMS_ASSET]["href"] == "./items.parquet"
    read = pystac.Collection.from_file(str(path))
    assert read.id == COLLECTION_ID and read.assets[ITEMS_ASSET].get_absolute_href() == str(
        path.parent / ITEMS
    )
    del collection.assets[ITEMS_ASSET]
    with pytest.raises(ValueError, match=r"items\.parquet"):
        write_collection(collection, tmp_path / "x.json")
