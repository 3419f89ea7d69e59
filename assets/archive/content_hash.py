"""Content hashes of product files: what lets the catalog vouch for the bytes a patch came from.

DLR gives every reprocessing a new product name, so the bytes of a file under one product name
never change: when they do, the file is damaged (a bad disk, a partial copy, a flipped block).
The tile step, which reads every byte of a product's image and masks anyway, records a hash of
each; a re-scan that finds a container's size or mtime changed hashes its files again and compares.

XXH3-128 runs at memory speed (10+ GB/s on one core), so hashing costs a fraction of decoding the
same bytes; a cryptographic hash would cost more than the read. A ZIP member is hashed as its
uncompressed content (what GDAL decodes), a folder's or staged delivery's file as its bytes.
"""

from __future__ import annotations

import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import xxhash

from assets.archive.sources import gdal_path_of, is_in_zip, open_zip_member, product_file

ALGORITHM = "xxh3-128"
BLOCK_BYTES = 8 << 20


@dataclass(frozen=True)
class ContentChange:
    """A file whose bytes are not the ones recorded for its product name."""

    file: str
    """The file as a person finds it (a path, or a GDAL /vsizip/ path for a ZIP member)."""
    recorded: str
    found: str

    def describe(self) -> str:
        return (
            f"{self.file}: content changed under the same product name (recorded {self.recorded}, "
            f"found {self.found}); DLR reprocessing always carries a new name, so this is damage: "
            "restore the file from the delivery"
        )


def member_digest(archive_root: Path, product_path: str, member: str) -> str:
    """``xxh3-128:<hex>`` of one product file's content; OSError when it cannot be read."""
    digest = xxhash.xxh3_128()
    if is_in_zip(product_path):
        with open_zip_member(archive_root, product_path, member) as (_, stream):
            _feed(digest, stream)
    else:
        with product_file(archive_root, product_path, member).open("rb") as stream:
            _feed(digest, stream)
    return f"{ALGORITHM}:{digest.hexdigest()}"


def digest_bytes(data: bytes | memoryview) -> str:
    """The same digest of content already in memory (an inflated ZIP member)."""
    return f"{ALGORITHM}:{xxhash.xxh3_128_hexdigest(data)}"


def content_changes(
    archive_root: Path, product_path: str, recorded: Mapping[str, str]
) -> list[ContentChange]:
    """The files of ``recorded`` (member -> digest) whose content now differs (or that are gone),
    in member order. Any other OSError passes through (the product is then unreadable)."""
    changes = []
    for member, digest in sorted(recorded.items()):
        try:
            found = member_digest(archive_root, product_path, member)
        except zipfile.BadZipFile as exc:  # zipfile checks the member's CRC-32 as it reads
            found = f"unreadable ({exc})"
        except (FileNotFoundError, KeyError):  # a folder's file, or a ZIP's member, is gone
            found = "no such file"
        if found != digest:
            changes.append(ContentChange(gdal_path_of(archive_root, product_path, member), digest, found))
    return changes


def _feed(digest, stream) -> None:
    """Hash a stream through one reused buffer (``readinto``: no new 8 MiB bytes per block, which
    cost more than the hash itself)."""
    buffer = bytearray(BLOCK_BYTES)
    view = memoryview(buffer)
    while n := stream.readinto(buffer):
        digest.update(view[:n])
