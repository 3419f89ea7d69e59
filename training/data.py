"""PyTorch datasets over the patch store (pretraining) and the label datasets (benchmarks).

Both read patches with ``storage_schemas.patch_reader.PatchReader``: one cached shard index per
shard, then one ``pread`` and one Blosc decode per patch, with no Zarr machinery in the loop. A
reader holds file descriptors, so each data-loader worker process opens its own on first use.
Pixels are normalised with the release's exact per-band statistics
(``statistics.csv``: ``(x - mean) / std`` in reflectance x 10000 units); nodata becomes 0, the
band mean, so masked pixels carry no signal.

Pretraining items are *locations*, not patches: a location seen at two or more times gives two
different acquisitions as the positive pair (SpectralEarth's temporal positives); a location seen
once gives the same patch twice, and the augmentations make the two views. Which two timestamps
are drawn depends only on (seed, epoch, location), so a resumed run reads what an uninterrupted
run would have read.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import zarr
from torch.utils.data import Dataset, Sampler

from storage_schemas.label_dataset import CLASSES, MULTI_HOT
from storage_schemas.patch_reader import PatchReader
from storage_schemas.patch_store import FILL, PATCHES_PER_SHARD
from storage_schemas.release import MANIFEST, PATCH_INDEX, STATISTICS


@dataclass(frozen=True)
class BandStatistics:
    mean: np.ndarray
    std: np.ndarray
    wavelength_nm: np.ndarray

    @classmethod
    def of_release(cls, release: Path) -> BandStatistics:
        table = pd.read_csv(release / STATISTICS)
        std = table["std"].to_numpy(np.float32)
        return cls(
            table["mean"].to_numpy(np.float32), np.where(std > 0, std, 1.0), table["wavelength_nm"].to_numpy()
        )

    def normalise(self, patch: np.ndarray) -> torch.Tensor:
        """(bands, y, x) int16 -> float32 tensor, nodata -> 0."""
        return self.normalise_batch(torch.from_numpy(patch)[None])[0]

    def normalise_batch(self, raw: torch.Tensor) -> torch.Tensor:
        """(batch, bands, y, x) int16 on any device -> float32 there, nodata -> 0. The training loop
        normalises on the GPU: int16 batches cross from the loader workers at half the bytes."""
        mean = torch.as_tensor(self.mean, device=raw.device)[:, None, None]
        std = torch.as_tensor(self.std, device=raw.device)[:, None, None]
        return ((raw.float() - mean) / std).masked_fill(raw == FILL, 0.0)

    def normalise_items(self, batch: dict, device: torch.device) -> dict:
        """The image tensors of a raw batch moved to ``device`` and normalised there."""
        return {
            k: self.normalise_batch(v.to(device, non_blocking=True)) if k in IMAGE_KEYS else v
            for k, v in batch.items()
        }


IMAGE_KEYS = ("view1", "view2", "image")


class _Reads:
    """A PatchReader opened lazily in the process that uses it (data-loader workers fork)."""

    def __init__(self, store: Path):
        self.store = Path(store)
        self._reader: PatchReader | None = None
        self._pid = -1

    def read(self, slot: int) -> np.ndarray:
        if self._reader is None or self._pid != os.getpid():
            self._reader = PatchReader(self.store)
            self._pid = os.getpid()
        return self._reader.read(int(slot))

    def __getstate__(self) -> dict:
        return {"store": self.store, "_reader": None, "_pid": -1}


def release_store(release: Path, data_root: Path) -> Path:
    """The store a release reads (its manifest names it relative to the data root)."""
    import json

    manifest = json.loads((release / MANIFEST).read_text())
    return (data_root / manifest["store"]).resolve()


class TooFewPatchesError(ValueError):
    """A dataset smaller than one batch; the message says what to change."""


class PretrainDataset(Dataset):
    """One item per location of a release: two views, from two acquisitions where there are two.

    Returns ``{"view1": (bands, 128, 128), "view2": ..., "temporal": bool, "location": str}``;
    ``pairs=False`` returns ``{"image": ...}`` (one random timestamp), what MAE-style methods use.
    """

    def __init__(
        self,
        release: Path,
        store: Path,
        pairs: bool = True,
        seed: int = 0,
        max_locations: int | None = None,
        raw: bool = False,
    ):
        index = pd.read_parquet(release / PATCH_INDEX, columns=["slot", "location_id", "time"])
        groups = index.sort_values(["location_id", "time", "slot"]).groupby("location_id", sort=True)["slot"]
        self.locations = list(groups.groups)
        self.slots = [np.asarray(s, dtype=np.int64) for _, s in groups]
        if max_locations is not None:
            self.locations, self.slots = self.locations[:max_locations], self.slots[:max_locations]
        self.stats = BandStatistics.of_release(release)
        self.reads = _Reads(store)
        self.pairs = pairs
        self.seed = seed
        self.epoch = 0
        self.raw = raw
        """Items hold the stored int16 pixels; ``stats.normalise_items`` normalises a batch later."""

    def __len__(self) -> int:
        return len(self.locations)

    @property
    def temporal_share(self) -> float:
        return float(np.mean([len(s) > 1 for s in self.slots])) if self.slots else 0.0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def first_slot(self, i: int) -> int:
        return int(self.slots[i][0])

    def _pixels(self, slot: int) -> torch.Tensor:
        patch = self.reads.read(slot)
        return torch.from_numpy(patch) if self.raw else self.stats.normalise(patch)

    def __getitem__(self, i: int) -> dict:
        slots = self.slots[i]
        rng = np.random.default_rng([self.seed, self.epoch, i])
        if not self.pairs:
            return {"image": self._pixels(rng.choice(slots)), "location": self.locations[i]}
        if len(slots) > 1:
            a, b = rng.choice(len(slots), size=2, replace=False)
            first, second = slots[a], slots[b]
        else:
            first = second = slots[0]
        view1 = self._pixels(first)
        view2 = view1.clone() if first == second else self._pixels(second)
        temporal = bool(first != second)
        return {"view1": view1, "view2": view2, "temporal": temporal, "location": self.locations[i]}


class ShardOrderSampler(Sampler[int]):
    """Shuffles shards, then the items within each shard, per epoch and seed: a batch reads a few
    shards (their indexes cached) instead of one random file each; with ``rank``/``world`` every
    process of a DDP run takes its own share of the same order."""

    def __init__(self, shard_of: np.ndarray, seed: int = 0, rank: int = 0, world: int = 1):
        self.shard_of = np.asarray(shard_of)
        self.seed, self.rank, self.world = seed, rank, world
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def order(self) -> np.ndarray:
        rng = np.random.default_rng([self.seed, self.epoch, 0x5348])
        shards = np.unique(self.shard_of)
        rng.shuffle(shards)
        out = [rng.permutation(np.flatnonzero(self.shard_of == s)) for s in shards]
        return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)

    def __iter__(self):
        order = self.order()
        per_rank = len(order) // self.world
        return iter(order[self.rank * per_rank : (self.rank + 1) * per_rank].tolist())

    def __len__(self) -> int:
        return len(self.shard_of) // self.world


def pretrain_sampler(dataset: PretrainDataset, seed: int, rank: int = 0, world: int = 1) -> ShardOrderSampler:
    shard_of = np.array([dataset.first_slot(i) // PATCHES_PER_SHARD for i in range(len(dataset))])
    return ShardOrderSampler(shard_of, seed, rank, world)


class LabelDataset(Dataset):
    """One split of a label dataset (``labels/<name>.zarr``): ``{"image", "target"}`` where the
    target is the class-index mask (int64, the map's ignore index where unlabelled) or the
    multi-hot vector (float32)."""

    def __init__(self, path: Path, split: str, stats: BandStatistics, limit: int | None = None):
        group = zarr.open_group(path, mode="r")
        self.attrs = dict(group.attrs)
        splits = np.asarray(group["split"][:].tolist(), dtype=object)
        self.rows = np.flatnonzero(splits == split)[:limit]
        self.multilabel = MULTI_HOT in group
        targets = group[MULTI_HOT if self.multilabel else CLASSES]
        self.targets = targets[:][self.rows] if len(self.rows) else np.zeros((0, *targets.shape[1:]))
        self.stats = stats
        self.reads = _Reads(path)
        self.num_classes = len(self.attrs["classes"])
        self.ignore_index = self.attrs.get("ignore_index")

    @property
    def release(self) -> str:
        return self.attrs["provenance"]["release"]

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict:
        image = self.stats.normalise(self.reads.read(int(self.rows[i])))
        target = self.targets[i]
        if self.multilabel:
            return {"image": image, "target": torch.from_numpy(target.astype(np.float32))}
        target = np.where(target < 0, self.ignore_index if self.ignore_index is not None else -1, target)
        return {"image": image, "target": torch.from_numpy(target.astype(np.int64))}
