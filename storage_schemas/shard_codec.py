"""The bytes of one ``reflectance`` shard file, as the Zarr v3 sharding codec defines them.

A shard is the encoded chunks one after the other, then the index: for each of the shard's
chunks (in C order) its byte offset and length as little-endian uint64 (both 2**64 - 1 for a chunk
the shard does not store), then the CRC32C of the index. Chunks are Blosc-compressed int16 bytes
with the store's codec settings. The tile writer and the fast reader both use this module, and a
test checks that Zarr-Python reads what it writes, byte for byte the same pixels.

Why write shards ourselves: Zarr-Python assembles a shard by encoding every chunk of it through an
event loop, fill chunks included, and costs as much again as the compression itself.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from functools import cache

import google_crc32c
import numpy as np
from numcodecs import Blosc

from storage_schemas.patch_store import CODEC

EMPTY = 2**64 - 1
"""Offset and length of a chunk the shard does not store (all fill value)."""
INDEX_ENTRY_BYTES = 16
CRC_BYTES = 4


@cache
def _blosc() -> Blosc:
    config = CODEC["configuration"]
    shuffle = {"noshuffle": Blosc.NOSHUFFLE, "shuffle": Blosc.SHUFFLE, "bitshuffle": Blosc.BITSHUFFLE}
    return Blosc(
        cname=config["cname"],
        clevel=config["clevel"],
        shuffle=shuffle[config["shuffle"]],
        blocksize=config.get("blocksize", 0),
        typesize=config.get("typesize", 2),
    )


def encode_chunk(pixels: np.ndarray) -> bytes:
    """One chunk (a patch) as the store encodes it: little-endian int16, Blosc."""
    raw = np.ascontiguousarray(pixels, dtype="<i2")
    return _blosc().encode(raw.view(np.uint8).reshape(-1))


def decode_chunk(data: bytes, shape: tuple[int, ...], out: np.ndarray | None = None) -> np.ndarray:
    """A writable int16 array, decoded in place: into ``out`` when given (a C-contiguous int16
    array of ``shape``, e.g. one row of a batch), else into a new one."""
    if out is None:
        out = np.empty(shape, dtype="<i2")
    if out.shape != tuple(shape) or out.dtype != np.dtype("<i2") or not out.flags.c_contiguous:
        raise ValueError(f"decode_chunk: out is {out.dtype} {out.shape}, not contiguous int16 {tuple(shape)}")
    _blosc().decode(data, out=out.reshape(-1).view(np.uint8))
    return out


def index_bytes(n_chunks: int) -> int:
    """Size of a shard's index (with its checksum) at the end of the file."""
    return n_chunks * INDEX_ENTRY_BYTES + CRC_BYTES


def shard_parts(chunks: Sequence[bytes | None]) -> list[bytes]:
    """The pieces of a shard file, in file order, from its encoded chunks (None: not stored):
    the stored chunks, then the index and its checksum. Written one after the other they are the
    shard, without a copy of the whole shard in memory."""
    index = np.full((len(chunks), 2), EMPTY, dtype="<u8")
    offset = 0
    for i, chunk in enumerate(chunks):
        if chunk is not None:
            index[i] = (offset, len(chunk))
            offset += len(chunk)
    table = index.tobytes()
    checksum = struct.pack("<I", google_crc32c.value(table))
    return [c for c in chunks if c is not None] + [table, checksum]


def decode_index(tail: bytes, n_chunks: int, where: str) -> np.ndarray:
    """(n_chunks, 2) offsets and lengths from the last :func:`index_bytes` of a shard file."""
    table, (crc,) = tail[:-CRC_BYTES], struct.unpack("<I", tail[-CRC_BYTES:])
    if len(table) != n_chunks * INDEX_ENTRY_BYTES or google_crc32c.value(table) != crc:
        raise OSError(f"{where}: shard index checksum mismatch (damaged or half-written shard)")
    return np.frombuffer(table, dtype="<u8").reshape(n_chunks, 2)
