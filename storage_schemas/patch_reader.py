"""Read patches from the store straight from its shard files: the path training takes.

Zarr-Python pays a few milliseconds of machinery per ``array[slot]`` call (an event loop, codec
pipelines, an index read per call), as much as decoding the patch itself. This reader does what
the Zarr v3 sharding spec says a reader does, and nothing else: read a shard's index once (the
last 64 x 16 + 4 bytes of the file: offset and length of every chunk, then a CRC32C), then for
each patch one ``pread`` of its chunk and one Blosc decompression. It checks that the store's
codec chain is the one it knows (sharding -> bytes little-endian -> blosc, index bytes + crc32c
at the end) and refuses anything else, so it can never silently misread a store.

A store on an object store (an ``s3://`` URL) is read the same way with ranged GETs: the
index with one GET of the shard's last bytes, each patch with one GET of its chunk's range.

Instances are cheap and hold only open file descriptors and cached shard indexes; give each
data-loader worker its own.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable

import numpy as np

from storage_schemas.patch_store import FILL, REFLECTANCE, shard_path
from storage_schemas.paths import StoragePath, is_remote, storage_path
from storage_schemas.shard_codec import EMPTY, decode_chunk, decode_index, index_bytes


class UnsupportedStoreError(ValueError):
    """The store's ``reflectance`` codecs are not the ones this reader decodes."""


class PatchReader:
    def __init__(self, store: StoragePath | str):
        self.store = storage_path(store)
        self.remote = is_remote(self.store)
        self.root = self.store / REFLECTANCE
        meta = json.loads((self.root / "zarr.json").read_text())
        self.shape = tuple(meta["shape"])
        self.patch_shape = tuple(meta["shape"][1:])
        self.per_shard = _check_codecs(meta, self.root)
        self._files: dict[int, int | str] = {}
        """Shard -> open file descriptor, or object key on an object store."""
        self._indexes: dict[int, np.ndarray | None] = {}

    def __len__(self) -> int:
        return self.shape[0]

    def read(self, slot: int, out: np.ndarray | None = None) -> np.ndarray:
        """One patch (bands, y, x) int16, decoded into ``out`` when given (e.g. a row of a batch);
        an unwritten slot reads as nodata."""
        data = self.read_encoded(slot)
        if data is None:
            if out is None:
                return np.full(self.patch_shape, FILL, dtype=np.int16)
            out[...] = FILL
            return out
        return decode_chunk(data, self.patch_shape, out)

    def read_encoded(self, slot: int) -> bytes | None:
        """One patch's chunk as stored (Blosc-compressed), or None for an unwritten slot: what a
        copy into another store of the same codec takes, without decoding and re-encoding."""
        if not 0 <= slot < self.shape[0]:
            raise IndexError(f"slot {slot} outside the store's {self.shape[0]} slots")
        shard, inner = divmod(slot, self.per_shard)
        index = self._index(shard)
        if index is None or index[inner, 0] == EMPTY:
            return None
        offset, length = (int(v) for v in index[inner])
        if self.remote:
            return self.store.fs.cat_file(self._files[shard], start=offset, end=offset + length)
        return os.pread(self._files[shard], length, offset)

    def read_many(self, slots: Iterable[int]) -> np.ndarray:
        slots = list(slots)
        out = np.empty((len(slots), *self.patch_shape), dtype=np.int16)
        for i, slot in enumerate(slots):
            self.read(slot, out[i])
        return out

    def close(self) -> None:
        for fd in self._files.values():
            if isinstance(fd, int):
                os.close(fd)
        self._files.clear()
        self._indexes.clear()

    def __enter__(self) -> PatchReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _index(self, shard: int) -> np.ndarray | None:
        if shard in self._indexes:
            return self._indexes[shard]
        path = shard_path(self.store, shard)
        n = index_bytes(self.per_shard)
        if self.remote:
            try:
                tail = self.store.fs.cat_file(path.path, start=-n)
            except FileNotFoundError:
                self._indexes[shard] = None
                return None
            self._files[shard] = path.path
            self._indexes[shard] = decode_index(tail, self.per_shard, str(path))
            return self._indexes[shard]
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            self._indexes[shard] = None  # a shard never written: every patch in it is fill
            return None
        try:
            index = decode_index(os.pread(fd, n, os.fstat(fd).st_size - n), self.per_shard, str(path))
        except OSError:
            os.close(fd)
            raise
        self._files[shard] = fd
        self._indexes[shard] = index
        return index


def _check_codecs(meta: dict, where: StoragePath) -> int:
    codecs = meta.get("codecs", [])
    if len(codecs) != 1 or codecs[0]["name"] != "sharding_indexed":
        raise UnsupportedStoreError(f"{where}: expected one sharding_indexed codec, found {codecs}")
    config = codecs[0]["configuration"]
    inner = [c["name"] for c in config["codecs"]]
    index = [c["name"] for c in config["index_codecs"]]
    endian = config["codecs"][0].get("configuration", {}).get("endian", "little")
    if inner != ["bytes", "blosc"] or endian != "little" or index != ["bytes", "crc32c"]:
        raise UnsupportedStoreError(
            f"{where}: codecs {inner} / index {index} are not bytes+blosc / bytes+crc32c"
        )
    if config.get("index_location", "end") != "end":
        raise UnsupportedStoreError(
            f"{where}: shard index at the {config['index_location']}, expected the end"
        )
    shard, chunk = meta["chunk_grid"]["configuration"]["chunk_shape"], config["chunk_shape"]
    if chunk[0] != 1 or shard[1:] != chunk[1:]:
        raise UnsupportedStoreError(f"{where}: chunks {chunk} in shards {shard} are not one patch each")
    return int(shard[0])
