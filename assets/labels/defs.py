"""Dagster definitions of the label stage: label sources (external, observed) -> label datasets.

Both are built from ``storage_schemas.label_products.LABEL_PRODUCTS``: one observable source asset
per label source (``label_sources/corine``, ``/cdl``, ``/nlcd``: their data version is the files'
names, sizes and times, so a new CDL year marks the datasets stale) and one dataset asset per
product entry. Adding a product is adding an entry there.
"""

import time
from pathlib import Path

import zarr
from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    Config,
    DataVersion,
    Failure,
    MaterializeResult,
    MetadataValue,
    ObserveResult,
    asset,
    observable_source_asset,
)
from pydantic import Field

from assets.geometry.plan_report import markdown_table
from assets.labels.build import LabelBuildError, SplitSettings, build_label_dataset, class_counts
from assets.labels.figures import class_distribution_png, image_mask_pairs_png, pick_pairs, write_figures
from assets.labels.sources import find_source_files
from assets.patches.defs import RELEASE_ASSET
from assets.patches.release_publish import ReleaseNotFoundError, release_folder
from assets.resources import DASK_POOL, DaskCluster, DataRoot, LabelSourcesRoot
from assets.ui_metadata import figure_metadata, schema_metadata
from assets.versions import source_version
from storage_schemas.label_dataset import SAMPLE_COORDS, figures_path
from storage_schemas.label_products import LABEL_PRODUCTS, LabelProduct, class_map_of
from storage_schemas.patch_reader import PatchReader
from storage_schemas.paths import zarr_location

SOURCE_DESCRIPTIONS = {
    "corine": "CORINE Land Cover (Copernicus, Europe): EPSG:3035, 100 m, grid codes 1-44 or CLC codes",
    "cdl": "USDA Cropland Data Layer (CONUS): EPSG:5070 Albers, 30 m, one raster per year",
    "nlcd": "USGS National Land Cover Database (CONUS): Albers, 30 m, one raster per product year",
}
CODE_VERSION = source_version(Path(__file__).parent)
"""The label stage's code: selection, alignment, class maps, balancing, splits, writing."""
FIGURE_TITLES = {
    "enmap_corine": "Figure 18",
    "enmap_cdl": "Figure 19",
    "enmap_nlcd": "Figure 20",
    "desis_cdl": "Figure 21",
}


def label_source_asset(source: str) -> AssetsDefinition:
    products = [p for p in LABEL_PRODUCTS.values() if p.source == source]

    @observable_source_asset(
        key=AssetKey(["label_sources", source]),
        group_name="label_sources",
        description=SOURCE_DESCRIPTIONS.get(source, source),
        metadata={"path_patterns": sorted({p.path_pattern for p in products})},
    )
    def observe(data_root: DataRoot, label_sources: LabelSourcesRoot) -> ObserveResult:
        root = label_sources.root(data_root.layout())
        files, problems = {}, []
        for product in products:
            found = find_source_files(root, product)
            files.update({str(f.path): f for f in found.files})
            problems += found.problems
        fingerprint = ";".join(f"{k}:{f.size_bytes}:{f.mtime_ns}" for k, f in sorted(files.items()))
        rows = {
            f"{f.path.relative_to(root)}": f"{f.raster.crs_name}, {f.size_bytes / 1e6:.1f} MB"
            for f in files.values()
        }
        return ObserveResult(
            data_version=DataVersion(fingerprint or "none"),
            metadata={
                "root": MetadataValue.path(str(root)),
                "files": len(files),
                "rasters": MetadataValue.md(markdown_table(rows, ("file", "CRS, size")) if rows else "none"),
                "problems": MetadataValue.md("\n".join(f"- {p}" for p in sorted(set(problems))) or "none"),
                "simulated": any(f.raster.simulated for f in files.values()),
            },
        )

    return observe


class LabelDatasetConfig(Config):
    split: str = Field(
        default="blocked", description="'blocked' (spatial blocks, default) or 'random' (the paper's)"
    )
    block_km: float = Field(default=20.0, description="Side of the spatial blocks of the blocked split")
    gap_km: float = Field(default=4.0, description="No location within this distance of another split's")
    seed: int = 0
    min_labelled_fraction: float | None = Field(
        default=None, description="Leave out patches with less labelled area (default: the product's, 0.9)"
    )


def label_dataset_asset(product: LabelProduct) -> AssetsDefinition:
    class_map = class_map_of(product)

    @asset(
        name=product.name,
        deps=[RELEASE_ASSET[product.sensor], AssetKey(["label_sources", product.source])],
        group_name="labels",
        kinds={"zarr"},
        metadata=schema_metadata(SAMPLE_COORDS),
        code_version=CODE_VERSION,
        pool=DASK_POOL,
        description=f"{product.name}: {product.task} benchmark of {product.sensor} patches labelled from "
        f"{product.source} ({class_map.num_classes} classes), written to `labels/{product.name}.zarr`. "
        + " ".join(product.notes),
    )
    def dataset(
        context: AssetExecutionContext,
        config: LabelDatasetConfig,
        data_root: DataRoot,
        label_sources: LabelSourcesRoot,
        dask: DaskCluster,
    ) -> MaterializeResult:
        layout = data_root.layout(product.sensor)
        started = time.perf_counter()
        split = SplitSettings(config.split, block_km=config.block_km, gap_km=config.gap_km, seed=config.seed)
        try:
            release = release_folder(layout, "latest")
            with dask.map_fn() as map_fn:
                built = build_label_dataset(
                    product,
                    release,
                    layout.store,
                    label_sources.root(layout),
                    layout.labels,
                    map_fn,
                    split,
                    config.min_labelled_fraction,
                )
        except (LabelBuildError, ReleaseNotFoundError, FileNotFoundError) as exc:
            raise Failure(description=str(exc), metadata={"error": str(exc)}) from None
        warnings = [*built.problems, *empty_split_warnings(built.content.samples, split)]
        for problem in warnings:
            context.log.warning(problem)
        if built.unknown_codes:
            context.log.warning(
                f"{built.unknown_codes} pixels hold codes outside the {class_map.name} class map: counted "
                "and ignored, never mapped to a class"
            )
        return MaterializeResult(
            data_version=DataVersion(built.version),
            metadata={
                **_metadata(product, built, time.perf_counter() - started),
                "warnings": MetadataValue.md("\n".join(f"- {w}" for w in warnings) or "none"),
            },
        )

    return dataset


def empty_split_warnings(samples, split: SplitSettings) -> list[str]:
    """A split left empty (a small dataset inside few spatial blocks) is said, with what to do."""
    counts = samples["split"].value_counts()
    empty = [name for name in ("train", "val", "test") if not counts.get(name, 0)]
    if not empty or samples.empty:
        return []
    how = (
        f"its {samples['location_id'].nunique()} locations fall in too few {split.block_km:g} km blocks; "
        "use smaller blocks (config block_km) or split: random"
        if split.method == "blocked"
        else "too few locations"
    )
    return [f"split {', '.join(empty)} empty: {how}"]


def _metadata(product: LabelProduct, built, seconds: float) -> dict:
    content = built.content
    class_map = class_map_of(product)
    counts = class_counts(content, list(class_map.classes))
    splits = content.samples["split"].value_counts().to_dict()
    unit = "patches with the class" if content.classes.ndim == 2 else "labelled pixels"
    reasons = built.left_out["reason"].str.replace(r"\d{4}$", "<year>", regex=True).value_counts().to_dict()
    figure = FIGURE_TITLES.get(product.name, product.name)
    metadata = {
        "version": built.version,
        "path": MetadataValue.path(str(built.path)),
        "dagster/row_count": len(content.samples),
        "release": content.attrs["provenance"]["release"],
        **{f"samples_{s}": int(splits.get(s, 0)) for s in ("train", "val", "test")},
        "left_out": len(built.left_out),
        "left_out_by_reason": MetadataValue.md(
            markdown_table(reasons, ("reason", "patches")) if reasons else "none"
        ),
        "unknown_codes": built.unknown_codes,
        "label_sources": MetadataValue.json(content.attrs["provenance"]["label_sources"]),
        "class_counts": MetadataValue.md(_counts_markdown(counts)),
        "seconds": round(seconds, 2),
    }
    figures = {
        "class_distribution": class_distribution_png(
            counts, f"{figure}: class distribution of {product.name} per split", unit
        )
    }
    if built.balance_cap is not None:
        metadata["balance_cap"] = built.balance_cap
    if len(content.samples):
        rows = pick_pairs(content.samples["sample_id"])
        with PatchReader(built.path) as reader:
            images = reader.read_many(rows)
        wavelengths = zarr.open_group(zarr_location(built.path), mode="r")["wavelength"][:]
        titles = [_title(content, r, class_map) for r in rows]
        figures["image_mask_pairs"] = image_mask_pairs_png(
            images, content.masks[rows], class_map, wavelengths, titles
        )
    files = write_figures(figures_path(built.path.parent, product.name), figures)
    inline = "image_mask_pairs" if "image_mask_pairs" in files else ""
    return metadata | figure_metadata(files, inline=inline, alt="image and mask pairs")


def _counts_markdown(counts) -> str:
    lines = ["| class | " + " | ".join(counts.columns) + " |", "|---" * (len(counts.columns) + 1) + "|"]
    lines += [f"| {name} | " + " | ".join(str(int(v)) for v in row) + " |" for name, row in counts.iterrows()]
    return "\n".join(lines)


def _title(content, row: int, class_map) -> str:
    sample = content.samples.iloc[row]
    text = f"{sample['sample_id']} ({sample['split']})"
    if content.classes.ndim == 2:
        names = [
            c.split(",")[0][:18] for c, on in zip(class_map.classes, content.classes[row], strict=True) if on
        ]
        text += "\n" + ", ".join(names[:4]) + (" ..." if len(names) > 4 else "")
    return text


LABEL_SOURCE_ASSETS = [label_source_asset(s) for s in sorted({p.source for p in LABEL_PRODUCTS.values()})]
LABEL_DATASET_ASSETS = [label_dataset_asset(p) for p in LABEL_PRODUCTS.values() if p.sensor in RELEASE_ASSET]
