"""Export a label dataset in the layout the published SpectralEarth code reads.

``DIR/<name>/<sensor>/<id>.tif``: the image, 128 x 128 x bands int16 with CRS, transform, nodata
and band wavelengths; ``DIR/<name>/<mask_folder>/<id>.tif``: the mask on the same grid holding
the label product's own codes (CDL and NLCD codes, CORINE 3-digit codes: the published code maps
them on load), 0 where unlabelled, uint8 when every code fits, else uint16;
``DIR/data/splits/<name>/{train,val,test}.txt``: one ``<id>.tif`` per line, sorted. Files are
written atomically (``write_patch_tiff``), so a re-run rewrites the same bytes.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import zarr

from assets.atomic_files import replace_atomically
from assets.labels.label_patch import NO_CODE
from assets.patches.export import band_descriptions, write_patch_tiff
from storage_schemas.label_dataset import (
    MASK,
    SPLIT_NAMES,
    export_image,
    export_mask,
    export_split_file,
)
from storage_schemas.patch_reader import PatchReader
from storage_schemas.patch_store import PATCHES_PER_SHARD
from storage_schemas.paths import StoragePath, zarr_location


@dataclass(frozen=True)
class LabelExportSummary:
    name: str
    version: str
    samples: int
    per_split: dict[str, int]
    out: StoragePath


def export_label_dataset(dataset: StoragePath, out: StoragePath, workers: int = 2) -> LabelExportSummary:
    if not (dataset / "zarr.json").is_file():
        raise FileNotFoundError(f"{dataset}: no label dataset here (materialise it first)")
    group = zarr.open_group(zarr_location(dataset), mode="r")
    attrs = dict(group.attrs)
    name, sensor = attrs["name"], attrs["sensor"]
    mask_folder = attrs["product"]["mask_folder"]
    ids = np.asarray(group["sample_id"][:].tolist(), dtype=object)
    splits = np.asarray(group["split"][:].tolist(), dtype=object)
    epsg, x0, y0 = group["epsg"][:], group["x0"][:], group["y0"][:]
    masks = group[MASK][:]
    mask_dtype = np.uint8 if masks.max(initial=0) <= np.iinfo(np.uint8).max else np.uint16
    descriptions = band_descriptions(group["band"][:], group["wavelength"][:])

    def export_shard(start: int) -> int:
        rows = range(start, min(start + PATCHES_PER_SHARD, len(ids)))
        with PatchReader(dataset) as reader:
            for i in rows:
                where = (int(epsg[i]), float(x0[i]), float(y0[i]))
                write_patch_tiff(
                    export_image(out, name, sensor, ids[i]), reader.read(i), *where, descriptions
                )
                mask = masks[i].astype(mask_dtype)[np.newaxis]
                write_patch_tiff(
                    export_mask(out, name, mask_folder, ids[i]), mask, *where, [mask_folder], nodata=NO_CODE
                )
        return len(rows)

    with ThreadPoolExecutor(max(workers, 1)) as pool:
        written = sum(pool.map(export_shard, range(0, len(ids), PATCHES_PER_SHARD)))
    per_split = {}
    for split in SPLIT_NAMES:
        lines = sorted(f"{i}.tif" for i in ids[splits == split])
        text = "".join(f"{line}\n" for line in lines)
        replace_atomically(export_split_file(out, name, split), lambda tmp, t=text: Path(tmp).write_text(t))
        per_split[split] = len(lines)
    return LabelExportSummary(name, attrs.get("version", ""), written, per_split, out)
