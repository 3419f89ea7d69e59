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
from torch.utils.data import BatchSampler, DataLoader, Dataset, Sampler, get_worker_info

from storage_schemas.label_dataset import CLASSES, MULTI_HOT
from storage_schemas.patch_reader import PatchReader
from storage_schemas.patch_store import FILL, PATCHES_PER_SHARD
from storage_schemas.paths import is_remote, readable, storage_path, zarr_location
from storage_schemas.release import MANIFEST, PATCH_INDEX, STATISTICS


@dataclass(frozen=True)
class BandStatistics:
    mean: np.ndarray
    std: np.ndarray
    wavelength_nm: np.ndarray

    @classmethod
    def of_release(cls, release: Path) -> BandStatistics:
        table = pd.read_csv(readable(release / STATISTICS))
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

    def normalise_items(self, batch: dict, device: torch.device | str) -> dict:
        """A loader batch (``PretrainDataset.batch``) on ``device``, normalised there, with the
        pairs' ``view2`` put together from ``view1`` and the second acquisitions."""
        out = {
            k: self.normalise_batch(v.to(device, non_blocking=True)) if k in IMAGE_KEYS else v
            for k, v in batch.items()
        }
        return with_second_views(out)


IMAGE_KEYS = ("view1", "second", "image")


def with_second_views(batch: dict) -> dict:
    """A pairs batch with ``second`` replaced by ``view2``: the second acquisition where a location
    has one (``temporal``), the same image as ``view1`` otherwise (the augmentations make the two
    views). Other batches unchanged."""
    if "second" not in batch:
        return batch
    out = dict(batch)
    view2 = out["view1"].clone()
    view2[out["temporal"].to(view2.device)] = out.pop("second")
    out["view2"] = view2
    return out


class _Reads:
    """A PatchReader opened lazily in the process that uses it (data-loader workers fork)."""

    def __init__(self, store: Path):
        self.store = storage_path(store)
        self._reader: PatchReader | None = None
        self._pid = -1

    @property
    def reader(self) -> PatchReader:
        if self._reader is None or self._pid != os.getpid():
            self._reader = PatchReader(self.store)
            self._pid = os.getpid()
        return self._reader

    def read(self, slot: int, out: np.ndarray | None = None) -> np.ndarray:
        return self.reader.read(int(slot), out)

    def __getstate__(self) -> dict:
        return {"store": self.store, "_reader": None, "_pid": -1}


def release_store(release: Path, data_root: Path) -> Path:
    """The store a release reads (its manifest names it relative to the data root)."""
    import json

    manifest = json.loads((release / MANIFEST).read_text())
    store = data_root / manifest["store"]
    return store if is_remote(store) else store.resolve()


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
        index = pd.read_parquet(readable(release / PATCH_INDEX), columns=["slot", "location_id", "time"])
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
        """``dataset[i]`` holds the stored int16 pixels (batches always do)."""

    def __len__(self) -> int:
        return len(self.locations)

    @property
    def temporal_share(self) -> float:
        return float(np.mean([len(s) > 1 for s in self.slots])) if self.slots else 0.0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def first_slot(self, i: int) -> int:
        return int(self.slots[i][0])

    def draw(self, i: int) -> tuple[int, int]:
        """The slots of location ``i``'s two views in this epoch (one slot twice where it has one
        acquisition, and for single images); depends only on (seed, epoch, i)."""
        slots = self.slots[i]
        rng = np.random.default_rng([self.seed, self.epoch, i])
        if not self.pairs:
            slot = int(rng.choice(slots))
            return slot, slot
        if len(slots) > 1:
            a, b = rng.choice(len(slots), size=2, replace=False)
            return int(slots[a]), int(slots[b])
        return int(slots[0]), int(slots[0])

    def batch(self, indices: list[int]) -> dict:
        """Locations ``indices`` as one batch of stored int16 pixels, what ``pretrain_loader``
        hands over: ``view1`` (or ``image``), and for pairs ``second``, the second acquisitions
        of the ``temporal`` locations only (a location seen once is not sent twice; the training
        loop puts ``view2`` together on the device, ``BandStatistics.normalise_items``). Each
        patch is decoded straight into its row, in shared memory inside a loader worker, so
        nothing is stacked or copied on the way to the main process."""
        draws = [self.draw(i) for i in indices]
        temporal = [first != second for first, second in draws]
        shape = self.reads.reader.patch_shape
        first = _batch_tensor((len(indices), *shape))
        second = _batch_tensor((sum(temporal), *shape)) if self.pairs else None
        for row, (a, _) in enumerate(draws):
            self.reads.read(a, first[row].numpy())
        if second is not None:
            for row, (_, b) in enumerate(d for d, t in zip(draws, temporal, strict=True) if t):
                self.reads.read(b, second[row].numpy())
        locations = [self.locations[i] for i in indices]
        if not self.pairs:
            return {"image": first, "location": locations}
        return {"view1": first, "second": second, "temporal": torch.tensor(temporal), "location": locations}

    def __getitem__(self, i: int) -> dict:
        """One location: ``view1`` and ``view2`` (or ``image``), ``temporal``, ``location``;
        normalised float32 pixels, or the stored int16 ones with ``raw``."""
        raw = self.batch([i])
        batch = with_second_views(raw) if self.raw else self.stats.normalise_items(raw, "cpu")
        return {k: v[0].item() if k == "temporal" else v[0] for k, v in batch.items()}


def _batch_tensor(shape: tuple[int, ...]) -> torch.Tensor:
    """An int16 tensor; inside a data-loader worker its storage is shared memory from the start
    (as torch's own collate allocates it), so handing the batch over copies nothing."""
    if get_worker_info() is None or not all(shape):
        return torch.empty(shape, dtype=torch.int16)
    storage = torch.UntypedStorage._new_shared(int(np.prod(shape)) * 2)
    return torch.empty(0, dtype=torch.int16).set_(storage).view(shape)


class _Batches(Dataset):
    """``PretrainDataset`` indexed by lists of locations: one fetch is one ``batch``."""

    def __init__(self, dataset: PretrainDataset):
        self.dataset = dataset

    def __getitem__(self, indices: list[int]) -> dict:
        return self.dataset.batch(indices)


def pretrain_loader(
    dataset: PretrainDataset, batch_size: int, sampler: Sampler, workers: int, pin_memory: bool = False
) -> DataLoader:
    """The pretraining DataLoader: whole batches (``PretrainDataset.batch``) in the sampler's
    order, made in ``workers`` processes, the incomplete last one dropped (every DDP rank takes
    equal steps). Against torch's per-item loading and default collate it took one worker from
    58-61 to 84-87 locations/s and two from 76-86 to 106-130 here (pairs, batches of 8)."""
    batches = BatchSampler(sampler, batch_size, drop_last=True)
    return DataLoader(
        _Batches(dataset), batch_size=None, sampler=batches, num_workers=workers, pin_memory=pin_memory
    )


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
        group = zarr.open_group(zarr_location(storage_path(path)), mode="r")
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
