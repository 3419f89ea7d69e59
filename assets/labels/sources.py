"""Find and describe the files of a label source (CORINE, CDL, NLCD rasters; polygons for vector
products) under the label-source root.

A product entry (``storage_schemas.label_products``) names its files by a pattern relative to the
root: ``cdl/{year}_30m_cdls.tif`` for a product released per year, ``corine/*.tif`` for a single
file. Every file found is opened and checked here (one band, integer codes, a CRS read from the
file) before any patch is labelled, so a bad raster is named once, up front, with its fault; a
missing year is reported, not guessed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import rasterio
from rasterio.crs import CRS as RioCRS
from rasterio.warp import transform_bounds

from assets.labels.align import LabelRaster, LabelSourceError, describe_label_raster
from assets.labels.vector_labels import VectorSourceError, read_label_vector
from storage_schemas.label_products import LabelProduct


@dataclass(frozen=True)
class SourceFile:
    """One raster of a label source and what is needed to pick and trust it."""

    year: int
    """Product year, 0 for a source with a single product."""
    raster: LabelRaster
    bounds_lonlat: tuple[float, float, float, float]
    size_bytes: int
    mtime_ns: int

    @property
    def path(self) -> Path:
        return self.raster.path

    def describe(self) -> dict:
        return {
            "year": self.year,
            "file": str(self.path),
            "crs": self.raster.crs_name,
            "nodata": self.raster.nodata,
            "dtype": self.raster.dtype,
            "size_bytes": self.size_bytes,
            "simulated": self.raster.simulated,
        }


@dataclass
class SourceFiles:
    """The usable files of one product's source, and the reasons for the ones that are not."""

    files: dict[int, SourceFile] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def fingerprint(self) -> str:
        """Names, sizes and modification times: a cheap version of multi-GB rasters."""
        return ";".join(f"{f.year}:{f.path.name}:{f.size_bytes}:{f.mtime_ns}" for f in self.files.values())


def find_source_files(root: Path, product: LabelProduct) -> SourceFiles:
    """Every raster the product's pattern names under ``root``, checked; faults become problems."""
    found = SourceFiles()
    wanted = [(y, product.path_pattern.format(year=y)) for y in product.years] or [(0, product.path_pattern)]
    for year, pattern in wanted:
        matches = sorted(root.glob(pattern))
        if not matches:
            what = f"for {year} " if year else ""
            found.problems.append(f"{product.source}: no raster {what}at {root / pattern}")
            continue
        if len(matches) > 1:
            names = ", ".join(m.name for m in matches)
            found.problems.append(
                f"{product.source}: {len(matches)} rasters match {root / pattern} ({names}); "
                "name one in the product's path pattern"
            )
            continue
        try:
            found.files[year] = _describe(matches[0], year, product)
        except (LabelSourceError, VectorSourceError) as exc:
            found.problems.append(str(exc))
    return found


def _describe(path: Path, year: int, product: LabelProduct) -> SourceFile:
    if product.kind == "vector":
        vector = read_label_vector(path, product)
        raster = LabelRaster(path, RioCRS.from_wkt(vector.crs.to_wkt()), None, str(vector.codes.dtype))
        bounds = transform_bounds(raster.crs, "EPSG:4326", *vector.bounds, densify_pts=21)
    else:
        raster = describe_label_raster(path)
        with rasterio.open(path) as ds:
            bounds = transform_bounds(ds.crs, "EPSG:4326", *ds.bounds, densify_pts=21)
    stat = path.stat()
    return SourceFile(year, raster, tuple(float(b) for b in bounds), stat.st_size, stat.st_mtime_ns)
