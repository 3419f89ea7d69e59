"""The downstream label datasets, one configuration entry each (SpectralEarth section 3.2).

Adding the next label product is an entry here, not code: where its files are (a path pattern
with ``{year}`` for products released per year; it may match several files, e.g. CORINE's
mainland raster and one per outermost region, each in its own CRS), how its codes are read
(``code_convention``), which class map turns them into classes, the task, which patches qualify
(months, years, nearest product year) and the mask folder name the published SpectralEarth code
expects. Each file's type decides how it is read: GeoTIFF rasters, or polygons (GeoPackage,
GeoParquet, ...: CORINE's ``Code_18`` polygons, the journal version's tree-species and crop-parcel
polygons) whose ``vector_attribute`` holds the code and which are rasterised onto the patch grid
before the same class map applies. A multi-label product's classes are those of every source cell
or polygon that overlaps the patch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

from storage_schemas.label_classes import CLASS_MAPS, ClassMap, inline_class_map


@dataclass(frozen=True)
class LabelProduct:
    name: str
    """Dataset and asset name, e.g. ``enmap_cdl``; also ``labels/<name>.zarr``."""
    sensor: str
    """Which patch store it pairs with: ``enmap`` or ``desis``."""
    source: str
    """Label source (external asset) name: ``corine``, ``cdl``, ``nlcd``."""
    path_pattern: str
    """Relative to the label-source root (``**`` for any folder depth); ``{year}`` is replaced by
    each product year. Of the files it matches, rasters (``.tif``) and vector files (``.gpkg``,
    ``.parquet``, ...) are sources; other files (value tables, ``.aux.xml``, documents) are not."""
    class_map: str
    """Key of ``storage_schemas.label_classes.CLASS_MAPS``, or the name of the inline ``classes``."""
    task: str
    """``multilabel`` (one multi-hot vector per patch) or ``segmentation`` (a mask)."""
    mask_folder: str
    """Folder of the masks in the published layout: ``cdl``, ``nlcd`` or ``corine``."""
    code_convention: str = "native"
    """``native`` codes, or for CORINE ``grid`` (1-44) / ``clc`` (3-digit) / ``detect`` (per file; a
    value table beside a raster always decides for its raster)."""
    vector_attribute: str = ""
    """The attribute of vector files that holds the code (matched without regard to case)."""
    years: tuple[int, ...] = ()
    """Product years available; empty: one product for all years."""
    year_rule: str = "any"
    """``same``: only patches acquired in a product year; ``nearest``: the nearest product year;
    ``any``: the single product."""
    months: tuple[int, ...] = ()
    """Acquisition months that qualify (empty: all)."""
    min_labelled_fraction: float = 0.9
    """A patch with less of its area labelled is left out (recorded)."""
    balance: bool = False
    """Resample towards a more balanced class distribution (EnMAP-CDL)."""
    classes: tuple[tuple[str, tuple[int, ...]], ...] = ()
    """An inline class map, (class name, source codes) per class, for a product whose map is not
    among the published ones (see ``label_classes.inline_class_map``)."""
    notes: tuple[str, ...] = field(default_factory=tuple)


LABEL_PRODUCTS: dict[str, LabelProduct] = {
    p.name: p
    for p in (
        LabelProduct(
            name="enmap_corine",
            sensor="enmap",
            source="corine",
            path_pattern="corine/**/*",
            class_map="corine",
            task="multilabel",
            mask_folder="corine",
            code_convention="detect",
            vector_attribute="CODE_18",
            notes=(
                "European patches; 19 BigEarthNet classes as multi-hot; CLC rasters in any CRS (grid codes "
                "through their .vat.dbf or the legend, or 3-digit codes) and CODE_18 GeoPackages",
            ),
        ),
        LabelProduct(
            name="enmap_cdl",
            sensor="enmap",
            source="cdl",
            path_pattern="cdl/{year}_30m_cdls.tif",
            class_map="cdl",
            task="segmentation",
            mask_folder="cdl",
            years=(2022, 2023),
            year_rule="same",
            months=(6, 7, 8, 9),
            balance=True,
            notes=("summers (June-September) of 2022 and 2023, as the paper",),
        ),
        LabelProduct(
            name="enmap_nlcd",
            sensor="enmap",
            source="nlcd",
            path_pattern="nlcd/nlcd_{year}_land_cover.tif",
            class_map="nlcd",
            task="segmentation",
            mask_folder="nlcd",
            years=(2019, 2021),
            year_rule="nearest",
        ),
        LabelProduct(
            name="desis_cdl",
            sensor="desis",
            source="cdl",
            path_pattern="cdl/{year}_30m_cdls.tif",
            class_map="desis_cdl",
            task="segmentation",
            mask_folder="cdl",
            years=(2021, 2022, 2023),
            year_rule="same",
            months=(6, 7, 8, 9),
            notes=("DESIS tiles of the summers of 2021, 2022 and 2023, as the paper",),
        ),
    )
}


def product_year(product: LabelProduct, acquired_year: int) -> int | None:
    """The label product year a patch acquired in ``acquired_year`` pairs with, or None."""
    if not product.years:
        return acquired_year if product.year_rule == "any" else None
    if product.year_rule == "same":
        return acquired_year if acquired_year in product.years else None
    if product.year_rule == "nearest":
        return min(product.years, key=lambda y: (abs(y - acquired_year), y))
    return None


@cache
def class_map_of(product: LabelProduct) -> ClassMap:
    """The product's class map: its inline ``classes`` when given, else the published map."""
    if product.classes:
        return inline_class_map(product.class_map, product.task, product.classes)
    if product.class_map not in CLASS_MAPS:
        raise KeyError(f"{product.name}: no class map {product.class_map!r} and no inline classes")
    return CLASS_MAPS[product.class_map]
