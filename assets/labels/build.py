"""Build one label dataset from a release and a label source: select, label, balance, split, write.

The steps, each leaving a reason for every patch it drops (``left_out``):
1. the source's rasters, checked (``sources``);
2. the release's patches that the product may label: months, product year, extent (``selection``);
3. each candidate aligned and mapped (``labelling``), a batch at a time, its mask and class
   indexes spilled into the build's partial dataset as they come (``label_stream``,
   ``partial_dataset``); too little labelled area is left out;
4. EnMAP-CDL: balanced by dominant class (``balance``);
5. the split by location, spatially blocked by default (``splits``);
6. ``labels/<name>.zarr`` written atomically (``dataset_writer``), the chosen rows read back from
   the partial dataset in sample-id order a shard at a time.

Steps 4 and 5 need every candidate's label, so the final order is known only after labelling:
masks go to the partial dataset in labelling order and are reordered on the way into the final
one. In memory stay a few hundred bytes per candidate and one batch of arrays, so the paper's
15,000 NLCD patches build in bounded memory (``benchmarks/labels.py`` measures it). The partial
dataset and the writer's temporary group are removed whatever happens: a failed build leaves the
previous dataset as it was and nothing beside it.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import zarr

from assets.labels.balance import balance_by_dominant_class
from assets.labels.dataset_writer import LabelDatasetContent, content_version, write_label_dataset
from assets.labels.label_stream import BATCH_PATCHES, stream_labels
from assets.labels.labelling import labelling_problems, per_source
from assets.labels.partial_dataset import partial_dataset
from assets.labels.selection import patch_centres_lonlat, select_patches
from assets.labels.sources import find_source_files
from assets.labels.splits import (
    DEFAULT_BLOCK_M,
    DEFAULT_FRACTIONS,
    DEFAULT_GAP_M,
    blocked_split,
    random_split,
)
from assets.patches.store import open_store, store_bands
from storage_schemas.label_dataset import CLASSES, MASK, SAMPLE_COORDS, SPLIT_NAMES, dataset_path
from storage_schemas.label_products import LabelProduct, class_map_of
from storage_schemas.paths import readable, zarr_location
from storage_schemas.release import MANIFEST, PATCH_INDEX


class LabelBuildError(ValueError):
    """The dataset cannot be built; the message says what is missing and where."""


@dataclass(frozen=True)
class SplitSettings:
    method: str = "blocked"
    """``blocked`` (default: whole blocks per split, a gap between splits) or ``random`` (the paper)."""
    fractions: tuple[float, float, float] = DEFAULT_FRACTIONS
    block_km: float = DEFAULT_BLOCK_M / 1000
    gap_km: float = DEFAULT_GAP_M / 1000
    seed: int = 0


@dataclass
class BuiltDataset:
    path: Path
    version: str
    content: LabelDatasetContent
    left_out: pd.DataFrame
    """sample_id and reason of every release patch that is not in the dataset."""
    problems: list[str]
    """Source files that were missing or refused (the dataset is built from the others), files that
    disagree where they overlap, values outside a file's conversion."""
    unknown_codes: int
    balance_cap: int | None


def build_label_dataset(
    product: LabelProduct,
    release: Path,
    store: Path,
    sources_root: Path,
    labels_dir: Path,
    map_fn,
    split: SplitSettings = SplitSettings(),
    min_labelled_fraction: float | None = None,
    batch_patches: int = BATCH_PATCHES,
) -> BuiltDataset:
    if min_labelled_fraction is not None:
        product = dataclasses.replace(product, min_labelled_fraction=min_labelled_fraction)
    sources = find_source_files(sources_root, product)
    if not sources.files:
        raise LabelBuildError(
            f"{product.name}: no usable {product.source} raster: " + "; ".join(sources.problems)
        )
    manifest = json.loads((release / MANIFEST).read_text())
    selection = select_patches(pd.read_parquet(readable(release / PATCH_INDEX)), product, sources)
    left = [selection.left_out]
    if selection.candidates.empty:
        raise LabelBuildError(
            f"{product.name}: the {product.source} rasters cover no patch of release {manifest['version']} "
            f"({_reason_summary(selection.left_out)})"
        )
    path = dataset_path(labels_dir, product.name)
    segmentation = product.task != "multilabel"
    with partial_dataset(path, len(selection.candidates), segmentation) as partial:
        labelled = stream_labels(selection.candidates, product, sources, map_fn, partial, batch_patches)
        table = labelled.table
        keep = (table["reason"] == "").to_numpy(copy=True)
        left.append(table.loc[~keep, ["sample_id", "reason"]])
        class_map = class_map_of(product)
        cap = None
        if product.balance:
            dominant = labelled.dominant[keep]
            kept_ids = list(table.loc[keep, "sample_id"])
            balanced, cap = balance_by_dominant_class(kept_ids, dominant, split.seed)
            names = np.asarray(class_map.classes, dtype=object)
            dropped = pd.DataFrame(
                {
                    "sample_id": np.asarray(kept_ids, dtype=object)[~balanced],
                    "reason": [
                        f"balancing: {names[d]} dominates more than {cap} patches"
                        for d in dominant[~balanced]
                    ],
                }
            )
            left.append(dropped)
            keep[np.flatnonzero(keep)[~balanced]] = False
        samples = selection.candidates[keep].copy()
        samples["labelled_fraction"] = table.loc[keep, "labelled_fraction"].to_numpy(np.float32)
        samples["split"] = _split(samples, split)
        excluded = samples["split"] == "excluded"
        left.append(
            pd.DataFrame(
                {
                    "sample_id": samples.loc[excluded, "sample_id"],
                    "reason": f"within {split.gap_km:g} km of another split",
                }
            )
        )
        chosen = np.flatnonzero(keep)[~excluded.to_numpy()]
        samples = samples[~excluded].rename(columns={"slot": "release_slot"})
        order = np.argsort(samples["sample_id"].to_numpy(), kind="stable")
        samples = samples.iloc[order].reset_index(drop=True)
        rows = chosen[order]
        content = LabelDatasetContent(
            samples=samples[list(SAMPLE_COORDS)],
            masks=partial.rows(MASK, rows),
            classes=partial.rows(CLASSES, rows) if segmentation else labelled.multi_hot[rows],
            attrs={},
            class_pixels=labelled.class_pixels[rows] if segmentation else None,
        )
        used = per_source(table, rows)
        content.attrs = _attrs(product, manifest, store, sources, used, split, cap)
        version = content_version(content)
        content.attrs["version"] = version
        open_bands = store_bands(open_store(store))
        write_label_dataset(path, content, store, open_bands)
    written = zarr.open_group(zarr_location(path), mode="r")
    content.masks = written[MASK]
    if segmentation:
        content.classes = written[CLASSES]
    return BuiltDataset(
        path=path,
        version=version,
        content=content,
        left_out=pd.concat(left, ignore_index=True),
        problems=sources.problems + labelling_problems(table, labelled.convention),
        unknown_codes=int(table["unknown_codes"].sum()),
        balance_cap=cap,
    )


def _split(samples: pd.DataFrame, settings: SplitSettings) -> np.ndarray:
    """Split by location: every timestamp of a location goes where the location goes."""
    locations = samples.drop_duplicates("location_id").reset_index(drop=True)
    if settings.method == "random":
        split = random_split(locations["location_id"], settings.fractions, settings.seed)
    elif settings.method == "blocked":
        lon, lat = patch_centres_lonlat(locations)
        split = blocked_split(
            locations["location_id"],
            lon,
            lat,
            settings.fractions,
            block_m=settings.block_km * 1000,
            gap_m=settings.gap_km * 1000,
            seed=settings.seed,
        )
    else:
        raise LabelBuildError(f"split method {settings.method!r}: use 'blocked' or 'random'")
    by_location = dict(zip(locations["location_id"], split, strict=True))
    return samples["location_id"].map(by_location).to_numpy(dtype=object)


def _attrs(product, manifest, store, sources, used, split, cap) -> dict:
    class_map = class_map_of(product)
    return {
        "name": product.name,
        "sensor": product.sensor,
        "task": product.task,
        "class_map": class_map.name,
        "classes": list(class_map.classes),
        "class_codes": [list(c) for c in class_map.codes],
        "ignore_index": class_map.ignore_index,
        "splits": list(SPLIT_NAMES),
        "product": json.loads(json.dumps(dataclasses.asdict(product))),
        "provenance": {
            "release": manifest["version"],
            "store": str(store),
            "label_sources": [_file_provenance(f, used) for f in sources.files],
        },
        "split_settings": dataclasses.asdict(split),
        "balance_cap": cap,
    }


def _file_provenance(file, used: dict[str, dict]) -> dict:
    """A source file as the dataset records it: where it is, its CRS and conversion, the patches
    of the dataset it labelled and the unknown values it held (``labelling.per_source``)."""
    return file.describe() | used.get(file.name, {"patches": 0, "unknown_values": [], "unknown_pixels": 0})


def _reason_summary(left_out: pd.DataFrame, top: int = 4) -> str:
    counts = left_out["reason"].value_counts()
    return "; ".join(f"{n} {reason}" for reason, n in counts.head(top).items())


def class_counts(content: LabelDatasetContent, class_names: list[str]) -> pd.DataFrame:
    """Per class and split: patches holding the class (multi-label) or labelled pixels
    (segmentation); the paper's Figures 18-21."""
    splits = content.samples["split"].to_numpy()
    per_sample = np.asarray(content.classes) if content.classes.ndim == 2 else content.class_pixels
    rows = {name: per_sample[splits == name].sum(axis=0).astype(np.int64) for name in SPLIT_NAMES}
    return pd.DataFrame(rows, index=pd.Index(class_names, name="class"))
