"""The downstream label dataset contract: ``labels/<name>.zarr`` and its published export.

One Zarr v3 group per dataset (``enmap_corine``, ``enmap_cdl``, ``enmap_nlcd``, ``desis_cdl``),
one entry per *sample* (a patch of the release with its label):

- ``reflectance`` (sample, band, y, x): int16 reflectance x 10000, the patch store's layout,
  codec and shards of 64, so ``storage_schemas.patch_reader.PatchReader`` reads it too.
- ``mask`` (sample, y, x) uint16: the label product's own codes on the patch grid (CDL and NLCD
  codes, CORINE 3-digit CLC codes), ``0`` where the source has no label.
- ``classes`` (sample, y, x) int16 class indexes with the class map's ignored index
  (segmentation), or ``label`` (sample, class) uint8 multi-hot (multi-label).
- Per-sample coordinates (``SAMPLE_COORDS``), band coordinates as in the store.
- Group attributes: layout version, the product entry, class names, provenance (release version,
  store, every label source file with its year, CRS and size), selection, balancing and split
  settings, counts.

The export (``spectralforge export <name> --out DIR``) writes what the published SpectralEarth
code reads: ``DIR/<name>/<sensor>/<id>.tif``, ``DIR/<name>/<mask_folder>/<id>.tif`` and
``DIR/data/splits/<name>/{train,val,test}.txt`` listing ``<id>.tif``.
"""

from __future__ import annotations

from pathlib import Path

LABEL_LAYOUT_VERSION = 1
MASK = "mask"
CLASSES = "classes"
MULTI_HOT = "label"
SAMPLE_COORDS = {
    "sample_id": "str",
    "location_id": "str",
    "tile_id": "str",
    "time": "int64",
    "epsg": "int32",
    "x0": "float64",
    "y0": "float64",
    "split": "str",
    "release_slot": "int64",
    "labelled_fraction": "float32",
    "label_year": "int32",
}
"""``time``: microseconds since the epoch, UTC; ``release_slot``: the patch's slot in the patch
store; ``label_year``: the label product year the sample was paired with (0: a single product)."""
SPLIT_NAMES = ("train", "val", "test")


def sample_id(location_id: str, tile_id: str) -> str:
    """A sample's id: its location and the tile it was cut from (one sample per timestamp)."""
    return f"{location_id}-{tile_id}"


def dataset_path(labels_dir: Path, name: str) -> Path:
    return labels_dir / f"{name}.zarr"


def figures_path(labels_dir: Path, name: str) -> Path:
    """``labels/<name>.figures/``: the dataset's pictures as PNG files (the UI links to them), beside
    its Zarr group and not inside it, so the dataset stays exactly what the contract above says."""
    return labels_dir / f"{name}.figures"


def export_image(out: Path, name: str, sensor: str, sid: str) -> Path:
    return out / name / sensor / f"{sid}.tif"


def export_mask(out: Path, name: str, mask_folder: str, sid: str) -> Path:
    return out / name / mask_folder / f"{sid}.tif"


def export_split_file(out: Path, name: str, split: str) -> Path:
    return out / "data" / "splits" / name / f"{split}.txt"
