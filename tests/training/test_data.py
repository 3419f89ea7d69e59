"""The data loaders: normalised tensors equal to the store's pixels, true temporal pairs from the
release index, the same items for the same (seed, epoch), and shard-ordered sampling."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from storage_schemas.patch_reader import PatchReader
from storage_schemas.patch_store import FILL
from storage_schemas.release import PATCH_INDEX, STATISTICS, resolve_release
from training.data import PretrainDataset, ShardOrderSampler, pretrain_loader, pretrain_sampler, release_store


def _dataset(layout, **kw):
    release = resolve_release(layout.releases, "latest")
    return release, PretrainDataset(release, release_store(release, layout.root), **kw)


def test_items_are_normalised_store_pixels_and_pairs_are_two_acquisitions(released):
    release, ds = _dataset(released)
    stats = pd.read_csv(release / STATISTICS)
    mean = stats["mean"].to_numpy(np.float32)[:, None, None]
    std = stats["std"].to_numpy(np.float32)[:, None, None]
    index = pd.read_parquet(release / PATCH_INDEX)
    with PatchReader(released.store) as reader:
        expected = {int(s): reader.read(int(s)) for s in index["slot"]}
    seen_temporal = False
    for i in range(len(ds)):
        item = ds[i]
        slots = index.loc[index["location_id"] == item["location"], "slot"].tolist()
        matches = []
        for view in (item["view1"], item["view2"]):
            assert view.dtype == torch.float32 and view.shape == (len(mean), 128, 128)
            for slot in slots:
                raw = expected[slot]
                want = np.where(raw == FILL, 0.0, (raw.astype(np.float32) - mean) / std)
                if np.allclose(view.numpy(), want, atol=1e-5):
                    matches.append(slot)
                    break
        assert len(matches) == 2, "each view is one of the location's own patches, normalised"
        if len(slots) > 1:
            assert item["temporal"] and matches[0] != matches[1], "two different acquisitions"
            seen_temporal = True
        else:
            assert not item["temporal"] and torch.equal(item["view1"], item["view2"])
    assert seen_temporal == (ds.temporal_share > 0)


def test_the_same_seed_and_epoch_give_the_same_items(released):
    _, ds = _dataset(released, seed=3)
    ds.set_epoch(2)
    first = [ds[i]["view1"] for i in range(len(ds))]
    ds.set_epoch(2)
    assert all(torch.equal(a, ds[i]["view1"]) for i, a in enumerate(first))


def test_shard_sampler_covers_every_item_once_and_keeps_shards_together():
    shard_of = np.repeat([0, 1, 2, 3], 5)
    sampler = ShardOrderSampler(shard_of, seed=1)
    order = list(sampler)
    assert sorted(order) == list(range(20))
    runs = np.flatnonzero(np.diff(shard_of[order]) != 0)
    assert len(runs) == 3, "each shard is read in one run"
    sampler.set_epoch(1)
    assert list(sampler) != order, "a new epoch, a new order"
    halves = [list(ShardOrderSampler(shard_of, seed=1, rank=r, world=2)) for r in (0, 1)]
    assert not set(halves[0]) & set(halves[1]) and len(halves[0]) == len(halves[1]) == 10


def test_mae_items_are_single_images(released):
    _, ds = _dataset(released, pairs=False)
    item = ds[0]
    assert set(item) == {"image", "location"} and item["image"].shape[1:] == (128, 128)
    assert len(pretrain_sampler(ds, seed=0)) == len(ds)
    with pytest.raises(IndexError):
        ds[len(ds)]


def test_raw_items_normalised_on_the_device_equal_normalised_items(released):
    _, normalised = _dataset(released, seed=1)
    _, raw = _dataset(released, seed=1, raw=True)
    item = raw[0]
    assert item["view1"].dtype == torch.int16
    assert torch.allclose(raw.stats.normalise(item["view1"].numpy()), normalised[0]["view1"], atol=1e-6)
    assert torch.allclose(raw.stats.normalise(item["view2"].numpy()), normalised[0]["view2"], atol=1e-6)


def test_loader_batches_are_the_items_and_send_second_acquisitions_only(released):
    """``pretrain_loader`` (one worker process: shared-memory batches) hands over what the items
    are: after ``normalise_items`` every row equals the normalised item of its location, and only
    the locations with two acquisitions sent a second patch."""
    _, raw = _dataset(released, seed=2, raw=True)
    _, normalised = _dataset(released, seed=2)
    index_of = {location: i for i, location in enumerate(raw.locations)}
    rows, seconds = 0, 0
    for batch in pretrain_loader(raw, 3, pretrain_sampler(raw, seed=2), workers=1):
        seconds += batch["second"].shape[0]
        assert batch["view1"].dtype == torch.int16
        assert batch["second"].shape[0] == int(batch["temporal"].sum())
        views = raw.stats.normalise_items(batch, "cpu")
        for row, location in enumerate(views["location"]):
            item = normalised[index_of[location]]
            assert torch.allclose(views["view1"][row], item["view1"], atol=1e-6)
            assert torch.allclose(views["view2"][row], item["view2"], atol=1e-6)
            assert bool(views["temporal"][row]) == item["temporal"]
            rows += 1
    assert rows == len(raw) // 3 * 3
    assert seconds > 0, "the release has locations with two acquisitions"
