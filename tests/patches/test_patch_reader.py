"""The shard reader gives exactly what Zarr gives, and refuses what it cannot read."""

from __future__ import annotations

import json

import numpy as np
import pytest

from assets.patches.store import open_store
from storage_schemas.patch_reader import PatchReader, UnsupportedStoreError
from tests.patches.helpers import planned_tiles, run_tiles


def test_reads_every_slot_exactly_as_zarr(planned):
    tiles = planned_tiles(planned)
    run_tiles(planned, tiles[:-1], max_masked=1.0)  # the last tile's shard stays unwritten
    reflectance = open_store(planned.store)["reflectance"]
    with PatchReader(planned.store) as reader:
        assert len(reader) == reflectance.shape[0]
        for slot in range(0, reflectance.shape[0], 7):
            assert np.array_equal(reader.read(slot), reflectance[slot]), slot
        last = reflectance.shape[0] - 1
        assert (reader.read(last) == -32768).all()
        both = reader.read_many([0, last])  # decoded into the rows of one array
        assert np.array_equal(both[0], reflectance[0]) and (both[1] == -32768).all()
        with pytest.raises(ValueError, match="not contiguous int16"):
            reader.read(0, np.empty(reader.patch_shape, dtype=np.float32))
        with pytest.raises(IndexError):
            reader.read(reflectance.shape[0])


def test_a_damaged_shard_index_is_detected(planned):
    tile = planned_tiles(planned)[0]
    run_tiles(planned, [tile], max_masked=1.0)
    shard = planned.store / "reflectance" / "c" / "0" / "0" / "0" / "0"
    data = bytearray(shard.read_bytes())
    data[-20] ^= 0xFF
    shard.write_bytes(bytes(data))
    with PatchReader(planned.store) as reader, pytest.raises(OSError, match="checksum"):
        reader.read(0)


def test_a_store_with_other_codecs_is_refused(planned):
    meta_path = planned.store / "reflectance" / "zarr.json"
    meta = json.loads(meta_path.read_text())
    meta["codecs"][0]["configuration"]["codecs"][1]["name"] = "zstd"
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(UnsupportedStoreError, match="bytes\\+blosc"):
        PatchReader(planned.store)
