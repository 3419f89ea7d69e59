"""Deterministic ZIP files: product ZIPs (``<name>.ZIP`` holding ``<name>/<name>-...``) and
delivery ZIPs (``dims_op_oc_oc-en_<order>_1.zip``) that nest product ZIPs.

Every member gets a fixed timestamp (the product's processing time), fixed permissions and a
fixed order, so the same seed gives the same bytes. Product files are deflated; product ZIPs
inside a delivery are *stored*, so GDAL reads their members in place through
``/vsizip/{/vsizip/outer.zip/inner.ZIP}/...`` without inflating the outer archive.
"""

from __future__ import annotations

import os
import shutil
import zipfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np

ZIP_COMPRESSION_LEVEL = 1
"""zlib level for product members: the compressed size of noisy int16 reflectance hardly changes
with the level, the time does (level 6 takes about three times as long)."""
_CHUNK = 1 << 20
_FILE_MODE = 0o100644 << 16
_DIR_MODE = (0o40755 << 16) | 0x10


def zip_time(when: np.datetime64) -> tuple[int, int, int, int, int, int]:
    """A datetime64 as a ZIP timestamp (local time fields, 2 s resolution)."""
    text = np.datetime_as_string(np.datetime64(when, "s"))
    date, clock = text.split("T")
    y, m, d = (int(v) for v in date.split("-"))
    hh, mm, ss = (int(v) for v in clock.split(":"))
    return (y, m, d, hh, mm, ss - ss % 2)


def _info(name: str, when: tuple[int, ...], compress: int, size: int = 0) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=when)
    info.compress_type = compress
    if compress == zipfile.ZIP_DEFLATED:
        # ZipFile.open(info, "w") takes the level from the ZipInfo (a private slot before 3.13)
        try:
            info.compress_level = ZIP_COMPRESSION_LEVEL
        except AttributeError:
            info._compresslevel = ZIP_COMPRESSION_LEVEL
    info.create_system = 3
    info.external_attr = _DIR_MODE if name.endswith("/") else _FILE_MODE
    info.file_size = size
    return info


def add_file(
    archive: zipfile.ZipFile, member: str, source: Path, when: tuple[int, ...], compress: int
) -> None:
    """Stream a file into the archive (images are hundreds of MB: never all in memory)."""
    info = _info(member, when, compress, source.stat().st_size)
    with source.open("rb") as src, archive.open(info, "w", force_zip64=info.file_size > 0x7FFFFFFF) as dst:
        shutil.copyfileobj(src, dst, _CHUNK)


def add_bytes(
    archive: zipfile.ZipFile, member: str, data: bytes, when: tuple[int, ...], compress: int
) -> None:
    archive.writestr(_info(member, when, compress, len(data)), data, compresslevel=ZIP_COMPRESSION_LEVEL)


def write_product_zip(
    target: Path,
    name: str,
    files: Iterable[Path],
    when: tuple[int, ...],
    extra: dict[str, bytes] | None = None,
) -> None:
    """``<name>.ZIP`` holding ``<name>/`` and ``<name>/<file>`` for each file, deflated.

    ``extra`` adds members by exact name (the zip-slip fault uses it); written to a temporary
    name first and renamed, so a scanner never sees half a ZIP.
    """
    tmp = target.with_name(f".{target.name}.tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(_info(f"{name}/", when, zipfile.ZIP_STORED), b"")
        for path in sorted(files, key=lambda p: p.name):
            add_file(archive, f"{name}/{path.name}", path, when, zipfile.ZIP_DEFLATED)
        for member, data in sorted((extra or {}).items()):
            add_bytes(archive, member, data, when, zipfile.ZIP_DEFLATED)
    os.replace(tmp, target)


def delivery_name(order: int) -> str:
    return f"dims_op_oc_oc-en_{order:09d}_1"


DELIVERY_LEVEL_FOLDER = "ENMAP.HSI.L2A"
"""Real deliveries file products under ``dims_op_oc_oc-en_<order>_1/ENMAP.HSI.L2A/``."""


def delivery_member(order: int, product_name: str) -> str:
    return f"{delivery_name(order)}/{DELIVERY_LEVEL_FOLDER}/{product_name}.ZIP"


def write_delivery(
    target: Path, order: int, product_zips: list[tuple[str, Path]], when: tuple[int, ...]
) -> None:
    """A delivery ZIP nesting product ZIPs, stored uncompressed so GDAL can seek into them."""
    tmp = target.with_name(f".{target.name}.tmp")
    folder = f"{delivery_name(order)}/{DELIVERY_LEVEL_FOLDER}/"
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr(_info(f"{delivery_name(order)}/", when, zipfile.ZIP_STORED), b"")
        archive.writestr(_info(folder, when, zipfile.ZIP_STORED), b"")
        for name, path in sorted(product_zips):
            add_file(archive, f"{folder}{name}.ZIP", path, when, zipfile.ZIP_STORED)
    os.replace(tmp, target)
