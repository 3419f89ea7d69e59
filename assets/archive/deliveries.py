"""DLR delivery tarballs: unpacked once, verified, into a staging folder the scan catalogues from.

DLR ships an EnMAP order as ``dims_op_oc_oc-en_<order>_<n>.tar.gz``: one top folder of that name
holding ``ENMAP.HSI.<LEVEL>/<item folder>/<product name>.ZIP`` per product, ``iif/*_iif.xml`` (the
order's item list), ``readme.html`` and ``tools/`` (licence, copyright). A gzip stream has no
index: reading a product in place (``/vsizip/{/vsitar/x.tar.gz/...}``) means inflating the stream
from its start up to that product, again in every process that reads it, and then inflating the
deflated product ZIP on top (``benchmarks/deliveries.py`` measures both ways). So a delivery is
unpacked once, by the scan, into ``<staging root>/<tarball's archive path>/``
(``storage_schemas.paths.staging_root``), each product ZIP into a folder of its own member path
holding the ZIP's files (``.../<item>/<name>.ZIP/<name>/<name>-SPECTRAL_IMAGE.TIF``). Pixels are
then read as from any product folder, while the catalog's ``product_path`` still names the
delivery (``<tarball>!/<top>/ENMAP.HSI.L2A/<item>/<name>.ZIP``).

Unpacking is atomic and verified: everything goes into a ``.partial-*`` folder beside the target,
every tar member's size is checked against its header, every ZIP member's size and CRC-32 against
the ZIP's directory, the gzip stream's CRC-32 and length against its trailer, and the tar must end
with its end-of-archive block (a corrupt header in the middle otherwise ends Python's tarfile
silently); only then is ``.staged.json`` written and the folder renamed into place. A re-scan
compares the tarball's size and mtime with those the manifest recorded.

What is refused, member by member (the rest of the delivery goes on): a member whose name climbs
out of its folder (absolute, ``..``), a symbolic or hard link, a device or FIFO (none of them is
ever created: only regular files of product ZIPs are written, at paths built here), a ZIP under
a level folder other than the accepted one (``ENMAP.HSI.L1B``), a product ZIP member name twice,
a ZIP that is not a ZIP or whose member names climb. An unreadable or truncated tarball is refused
whole (:class:`DeliveryError`), with nothing left in the staging folder. The order's other members
(iif, readme, tools, folders) are ignored on purpose and counted.
"""

from __future__ import annotations

import glob
import gzip
import hashlib
import json
import os
import re
import shutil
import tarfile
import tempfile
import uuid
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from assets.archive.sources import UnsafeArchiveError, check_member_names, is_zip_name
from assets.atomic_files import rename_folder_durably, writer_alive

MANIFEST = ".staged.json"
MANIFEST_VERSION = 1
PARTIAL = ".partial-"
_CHUNK = 1 << 20
SPOOL_BYTES = 1 << 30
"""A product ZIP up to this size is held in memory between the tar and its unpacking."""
_BLOCK = tarfile.BLOCKSIZE
LEVEL_FOLDER = re.compile(r"^(?P<instrument>[A-Za-z0-9]+\.[A-Za-z0-9]+)\.(?P<level>L[0-9][A-Za-z]?)$")
"""DLR's product-type folder of an order, ``ENMAP.HSI.L2A``."""
ANCILLARY = {"iif": "iif", "tools": "tools"}
"""Folders directly under the order's top folder whose members are ignored (ZIPs included)."""
IGNORED_KINDS = ("iif", "readme", "tools", "folders", "other")


class DeliveryError(ValueError):
    """The tarball as a whole cannot be read (truncated, corrupt, not a tar)."""


@dataclass
class StagedDelivery:
    """What unpacking a delivery gave; also its manifest (``.staged.json``)."""

    folder: Path
    size: int
    mtime_ns: int
    checksum: str
    products: list[str] = field(default_factory=list)
    """Tar member paths of the ZIPs unpacked (each into the folder of the same relative path)."""
    refusals: list[tuple[str, str]] = field(default_factory=list)
    """(tar member, reason) of every member refused."""
    ignored: dict[str, int] = field(default_factory=dict)
    """Members ignored on purpose, per kind (``IGNORED_KINDS``)."""

    def manifest(self) -> dict:
        return {
            "version": MANIFEST_VERSION,
            "tarball_size": self.size,
            "tarball_mtime_ns": self.mtime_ns,
            "checksum": self.checksum,
            "products": self.products,
            "refusals": [list(r) for r in self.refusals],
            "ignored": self.ignored,
        }


def current_staging(folder: Path, size: int, mtime_ns: int) -> StagedDelivery | None:
    """The staged delivery in ``folder`` if its manifest says it was unpacked from a tarball of
    this size and mtime, else None (never staged, staged from another version, or damaged)."""
    try:
        data = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    recorded = (data.get("version"), data.get("tarball_size"), data.get("tarball_mtime_ns"))
    if recorded != (MANIFEST_VERSION, size, mtime_ns):
        return None
    return StagedDelivery(
        folder,
        size,
        mtime_ns,
        data["checksum"],
        list(data["products"]),
        [(m, r) for m, r in data["refusals"]],
        dict(data["ignored"]),
    )


def remove_stale_staging(staging: Path, tarballs: set[str]) -> list[str]:
    """Remove the staged copies under ``staging`` of tarballs not in ``tarballs`` (archive paths):
    deliveries that left the archive (their catalog rows are kept as missing; should a tarball
    come back, its next scan unpacks it again). Returns the archive paths removed. Folders being
    unpacked (``.partial-*``) are left to the scan that writes them."""
    removed = []
    for folder, subfolders, files in os.walk(staging):
        if MANIFEST in files:
            subfolders.clear()
            tarball = Path(folder).relative_to(staging).as_posix()
            if tarball not in tarballs:
                shutil.rmtree(folder, ignore_errors=True)
                removed.append(tarball)
        else:
            subfolders[:] = [d for d in subfolders if PARTIAL not in d]
    return sorted(removed)


class _BlockTracker:
    """A read-only stream that remembers its last read, so that the block where tarfile stopped
    can be told apart: the end-of-archive block, a cut, or a corrupt header."""

    def __init__(self, stream: BinaryIO):
        self.stream = stream
        self.last_at = -1
        self.last = b""

    def read(self, size: int = -1) -> bytes:
        at = self.stream.tell()
        data = self.stream.read(size)
        self.last_at, self.last = at, data
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.stream.seek(offset, whence)

    def tell(self) -> int:
        return self.stream.tell()

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True


def stage_delivery(
    tarball: Path, folder: Path, size: int, mtime_ns: int, accepted_level: str = "L2A"
) -> StagedDelivery:
    """Unpack the delivery ``tarball`` into ``folder`` (replacing what was there), atomically and
    verified (see the module docstring); ZIPs under a level folder other than ``accepted_level``
    are refused unread. DeliveryError names what is wrong with the tarball; OSError from writing
    the staging folder passes through (the reader names the folder)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(folder)
    partial = folder.with_name(f"{folder.name}{PARTIAL}{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        staged = _unpack(tarball, partial, size, mtime_ns, accepted_level)
        (partial / MANIFEST).write_text(json.dumps(staged.manifest(), indent=1))
        _replace_folder(partial, folder)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    staged.folder = folder
    return staged


def _remove_leftovers(folder: Path) -> None:
    """Remove what a killed scan left beside ``folder``: its ``.partial-<pid>-*`` unpacking, when
    that process is gone (one catalog run per chain at a time, so a live one is this host's), and
    the ``.partial-old-*`` copy a replacement had not yet removed."""
    for left in folder.parent.glob(f"{glob.escape(folder.name)}{PARTIAL}*"):
        owner = left.name[len(folder.name) + len(PARTIAL) :].split("-")[0]
        if owner == "old" or (owner.isdigit() and not writer_alive(int(owner))):
            shutil.rmtree(left, ignore_errors=True)


def _replace_folder(partial: Path, folder: Path) -> None:
    old = None
    if folder.exists():
        old = folder.with_name(f"{folder.name}{PARTIAL}old-{uuid.uuid4().hex[:8]}")
        rename_folder_durably(folder, old, contents=False)
    rename_folder_durably(partial, folder)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _unpack(tarball: Path, partial: Path, size: int, mtime_ns: int, accepted_level: str) -> StagedDelivery:
    partial.mkdir()
    digest = hashlib.blake2b(digest_size=16)
    staged = StagedDelivery(partial, size, mtime_ns, "", ignored=dict.fromkeys(IGNORED_KINDS, 0))
    seen: set[str] = set()
    where = "its first member"
    try:
        with tarball.open("rb") as raw:  # a local file, or an object streamed by s3fs
            gzipped = raw.read(2) == b"\x1f\x8b"  # the gzip magic, whatever the name says
            raw.seek(0)
            stream: BinaryIO = gzip.GzipFile(fileobj=raw, mode="rb") if gzipped else raw
            tracker = _BlockTracker(stream)
            with stream, tarfile.open(fileobj=tracker, mode="r:") as tar:
                for member in tar:
                    where = f"member {member.name!r}"
                    digest.update(f"{member.name}\0{member.type!r}\0{member.size}\0".encode())
                    kind = _classify(member, seen, accepted_level)
                    if kind is None:
                        crc = _unpack_zip_member(tar, member, partial, staged)
                        digest.update(f"{crc:08x}\n".encode())
                    elif kind in IGNORED_KINDS:
                        staged.ignored[kind] += 1
                    else:
                        staged.refusals.append((member.name, kind))
                _check_end(tar, tracker, where)
                while stream.read(_CHUNK):  # to the end: gzip checks its CRC-32 and length there
                    pass
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise DeliveryError(f"unreadable or truncated tarball (at {where}): {exc}") from None
    staged.checksum = digest.hexdigest()
    return staged


def _check_end(tar: tarfile.TarFile, tracker: _BlockTracker, where: str) -> None:
    """Python's tarfile ends its iteration quietly at a corrupt or missing header after the first
    member; a complete tar has an all-zero end-of-archive block there."""
    block = tracker.last if tracker.last_at == tar.offset else b""
    if len(block) == _BLOCK and not block.strip(b"\0"):
        return
    if len(block) < _BLOCK:
        raise tarfile.ReadError(f"the tar ends at byte {tar.offset:,} without its end-of-archive block")
    raise tarfile.ReadError(f"corrupt tar header at byte {tar.offset:,}, after {where}")


def _classify(member: tarfile.TarInfo, seen: set[str], accepted_level: str) -> str | None:
    """None: a ZIP to unpack; an ``IGNORED_KINDS`` entry; else the reason it is refused."""
    name = member.name
    try:
        check_member_names([name])
    except UnsafeArchiveError as exc:
        return f"tar {exc}; nothing was unpacked from it"
    if member.issym() or member.islnk():
        what = "symbolic" if member.issym() else "hard"
        return f"tar member is a {what} link (to {member.linkname!r}); links are refused and none is created"
    if member.isdir():
        return "folders"
    if not member.isfile():
        return "tar member is not a regular file (device, FIFO or other special file); refused"
    parts = PurePosixPath(name).parts
    if not parts:
        return "other"
    ancillary = [p for p in parts[:-1][:2] if p in ANCILLARY]  # <top>/iif/..., or iif/... without a top
    if ancillary:
        return ANCILLARY[ancillary[0]]
    if not is_zip_name(name):
        return "readme" if parts[-1].lower() == "readme.html" else "other"
    for part in parts[:-1]:
        level = LEVEL_FOLDER.match(part)
        if level and level["level"].upper() != accepted_level.upper():
            return (
                f"lies in the order's {part} folder: a {level['level']} product; "
                f"only {accepted_level} products are accepted (not unpacked)"
            )
    if name in seen:
        return "tar member name appears twice in the delivery; the second copy is refused"
    seen.add(name)
    return None


def _unpack_zip_member(
    tar: tarfile.TarFile, member: tarfile.TarInfo, partial: Path, staged: StagedDelivery
) -> int:
    """Copy one ZIP out of the tar (size checked against the header; in memory up to
    ``SPOOL_BYTES``, else in a temporary file in the partial folder), unpack its members into the
    folder of the ZIP's own member path (sizes and CRC-32s checked). Returns the CRC-32 of the
    ZIP's bytes. A bad ZIP becomes a refusal; a short tar member raises."""
    target = partial.joinpath(*PurePosixPath(member.name).parts)
    target.parent.mkdir(parents=True, exist_ok=True)
    crc, written = 0, 0
    with tar.extractfile(member) as source, tempfile.SpooledTemporaryFile(SPOOL_BYTES, dir=partial) as copy:
        while chunk := source.read(_CHUNK):
            crc = zlib.crc32(chunk, crc)
            written += len(chunk)
            copy.write(chunk)
        if written != member.size:
            raise tarfile.ReadError(
                f"{member.name} has {written:,} of the {member.size:,} bytes of its header"
            )
        copy.seek(0)
        try:
            _unzip(copy, target)
            staged.products.append(member.name)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, UnsafeArchiveError, EOFError) as exc:
            shutil.rmtree(target, ignore_errors=True)
            reason = str(exc) if isinstance(exc, UnsafeArchiveError) else f"not a readable ZIP: {exc}"
            staged.refusals.append((member.name, f"ZIP in the delivery is refused: {reason}"))
        except (FileExistsError, NotADirectoryError, IsADirectoryError) as exc:
            staged.refusals.append((member.name, f"its files collide with another member's path: {exc}"))
    return crc


def _unzip(stream: BinaryIO, target: Path) -> None:
    with zipfile.ZipFile(stream) as archive:
        infos = archive.infolist()
        check_member_names([i.filename for i in infos])
        target.mkdir()
        for info in infos:
            if info.is_dir():
                continue
            out_path = target.joinpath(*PurePosixPath(info.filename.replace("\\", "/")).parts)
            out_path.parent.mkdir(parents=True, exist_ok=True)
            # ZipExtFile checks the CRC-32 at the member's end and raises BadZipFile on a mismatch
            with archive.open(info) as src, open(out_path, "wb") as dst:
                shutil.copyfileobj(src, dst, _CHUNK)
            got = out_path.stat().st_size
            if got != info.file_size:
                raise zipfile.BadZipFile(
                    f"{info.filename}: {got} bytes, its directory entry {info.file_size}"
                )
