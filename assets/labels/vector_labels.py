"""Vector label sources (CORINE as GeoPackage polygons with ``Code_18``, the journal version's
tree-species and crop-parcel polygons): polygons with an integer code attribute (or digits as
text), rasterised onto each patch's grid.

Rasterising is the vector counterpart of the nearest-neighbour warp: a patch pixel takes the code
of the polygon that contains its centre (GDAL's rule without ``all_touched``), and where polygons
overlap the one later in the file wins. Polygons are transformed into the patch's CRS (densified
first, so that long edges follow the projection) and only those whose box meets the patch are
touched, through an R-tree over the file's polygons.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from affine import Affine
from pyproj import CRS, Transformer
from rasterio.features import rasterize

from assets.labels.footprint import footprint_in
from assets.object_store import ogr_path
from storage_schemas.label_products import LabelProduct
from storage_schemas.paths import readable

VECTOR_SUFFIXES = (".parquet", ".geoparquet", ".gpkg", ".geojson", ".fgb", ".shp")
DENSIFY_M = 30.0


class VectorSourceError(ValueError):
    """A vector label file that cannot be used; the message names the file and the fault."""


@dataclass
class VectorLabels:
    path: Path
    crs: CRS
    geometries: np.ndarray
    codes: np.ndarray
    tree: shapely.STRtree

    def render(self, epsg: int, transform: Affine, size: int, fill: int) -> np.ndarray:
        """Codes on the grid ``transform`` (size x size) in ``epsg``; ``fill`` where no polygon."""
        out = np.full((size, size), fill, dtype=np.int32)
        patch_crs = CRS.from_epsg(epsg)
        left, top = transform * (0, 0)
        right, bottom = transform * (size, size)
        to_source = Transformer.from_crs(patch_crs, self.crs, always_xy=True)
        box = shapely.box(*to_source.transform_bounds(left, bottom, right, top, densify_pts=21))
        hits = np.sort(self.tree.query(box, predicate="intersects"))
        if len(hits) == 0:
            return out
        to_patch = Transformer.from_crs(self.crs, patch_crs, always_xy=True)
        geometries = shapely.transform(
            shapely.segmentize(self.geometries[hits], DENSIFY_M if self.crs.is_projected else 0.0003),
            lambda xy: np.column_stack(to_patch.transform(xy[:, 0], xy[:, 1])),
        )
        shapes = zip(geometries, self.codes[hits].tolist(), strict=True)
        return rasterize(shapes, out=out, transform=transform, all_touched=False)

    def present(self, epsg: int, x0: float, y0: float) -> np.ndarray:
        """Sorted codes of the polygons that share some area with the patch footprint (touching its
        edge is not enough): class presence, as BigEarthNet takes it from the CLC polygons."""
        xs, ys = footprint_in(self.crs.to_wkt(), epsg, x0, y0)
        footprint = shapely.Polygon(np.column_stack([xs, ys]))
        hits = self.tree.query(footprint, predicate="intersects")
        hits = hits[~shapely.touches(self.geometries[hits], footprint)]
        return np.unique(self.codes[hits])

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        return tuple(float(v) for v in shapely.total_bounds(self.geometries))


def read_label_vector(path: Path, product: LabelProduct) -> VectorLabels:
    """Read and check a vector label file: a CRS, the code attribute, integer codes, polygons."""
    try:
        geoparquet = path.suffix in (".parquet", ".geoparquet")
        frame = gpd.read_parquet(readable(path)) if geoparquet else gpd.read_file(ogr_path(path))
    except Exception as exc:
        raise VectorSourceError(f"{path}: unreadable as vector data: {exc}") from None
    if frame.crs is None:
        raise VectorSourceError(f"{path}: the polygons have no CRS; cannot place their labels")
    attribute = _attribute(frame, product.vector_attribute, path)
    codes = _integer_codes(frame[attribute], attribute, path)
    polygonal = frame.geometry.geom_type.isin(["Polygon", "MultiPolygon"]).to_numpy()
    geometries = frame.geometry.to_numpy()[polygonal]
    crs = CRS.from_user_input(frame.crs)
    return VectorLabels(Path(path), crs, geometries, codes[polygonal], shapely.STRtree(geometries))


def _attribute(frame: gpd.GeoDataFrame, name: str, path: Path) -> str:
    """The code attribute, matched without regard to case (Copernicus's CLC GeoPackages spell it
    ``Code_18``, extracts ``CODE_18``)."""
    if name in frame.columns:
        return name
    same = [c for c in frame.columns if str(c).lower() == name.lower()]
    if len(same) == 1:
        return same[0]
    columns = ", ".join(map(str, frame.columns))
    raise VectorSourceError(f"{path}: no attribute {name!r} (columns: {columns})")


def _integer_codes(column: pd.Series, attribute: str, path: Path) -> np.ndarray:
    """Integer codes, or text that holds only digits (CLC's ``Code_18`` is text: ``"211"``)."""
    if pd.api.types.is_integer_dtype(column):
        return column.to_numpy()
    if not pd.api.types.is_string_dtype(column):
        raise VectorSourceError(
            f"{path}: attribute {attribute!r} is {column.dtype}; class codes must be integers"
        )
    text = column.astype("string").str.strip()
    digits = text.str.fullmatch(r"\d+").fillna(False).to_numpy(dtype=bool)
    if not digits.all():
        bad = sorted(set(column[~digits].astype(str)))[:5]
        raise VectorSourceError(f"{path}: attribute {attribute!r} holds {bad}; class codes must be digits")
    return text.astype("int64").to_numpy()
