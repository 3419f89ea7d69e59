"""Deterministic archives: product ZIPs (``<name>.ZIP`` holding ``<name>/<name>-...``), delivery
ZIPs (``dims_op_oc_oc-en_<order>_1.zip``) that nest product ZIPs, and DLR delivery tarballs.

Every member gets a fixed timestamp (the product's processing time), fixed permissions and a
fixed order, so the same seed gives the same bytes. Product files are deflated; product ZIPs
inside a delivery are *stored*, so GDAL reads their members in place through
``/vsizip/{/vsizip/outer.zip/inner.ZIP}/...`` without inflating the outer archive.

A delivery tarball is what DLR ships an order as: ``dims_op_oc_oc-en_<order>_1.tar.gz`` holding
one top folder of the same name with ``ENMAP.HSI.<LEVEL>/<item>/<name>.ZIP`` per product (the item
folder is named after the product, as DLR's item names are), ``iif/<order>_iif.xml`` (the item
list), ``readme.html`` and ``tools/`` (licence and copyright). The ancillary files' contents are
stand-ins marked SIMULATED (the genuine IIF schema is not public): only their names and places
follow DLR's.
"""

from __future__ import annotations

import gzip
import io
import os
import shutil
import tarfile
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


TAR_LEVEL_FOLDER = "ENMAP.HSI.{level}"
TAR_GZIP_LEVEL = 1
"""gzip level of delivery tarballs: their product ZIPs are deflated already."""
_SIMULATED_NOTE = "SIMULATED by SpectralForge, not a DLR delivery"


def tar_member(order: int, product_name: str, level: str = "L2A") -> str:
    """Tar member path of a product ZIP in a delivery tarball."""
    folder = TAR_LEVEL_FOLDER.format(level=level)
    return f"{delivery_name(order)}/{folder}/{product_name}/{product_name}.ZIP"


def _tar_info(name: str, mtime: int, size: int = 0, kind: bytes = tarfile.REGTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.size, info.mtime = kind, size, mtime
    info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def _ancillary(order: int, items: list[tuple[str, str, int]]) -> dict[str, bytes]:
    """The order's iif item list, readme and tools: DLR's names, SIMULATED stand-in contents."""
    top = delivery_name(order)
    rows = "".join(
        f"  <item><itemName>{name}</itemName>"
        f"<productType>{TAR_LEVEL_FOLDER.format(level=level)}</productType>"
        f"<fileName>{name}.ZIP</fileName><size>{size}</size></item>\n"
        for name, level, size in items
    )
    iif = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<!-- {_SIMULATED_NOTE} -->\n'
        f'<order id="{order:09d}" delivery="{top}">\n{rows}</order>\n'
    )
    readme = (
        f"<html><head><title>EnMAP order {order:09d}</title></head><body><p>{_SIMULATED_NOTE}.</p>"
        f"<p>{len(items)} items under ENMAP.HSI.*/; item list in iif/.</p></body></html>\n"
    )
    licence = f"%PDF-1.4\n% {_SIMULATED_NOTE}: stand-in for the EnMAP data licence\n%%EOF\n"
    copyright_page = f"<html><body><p>(c) DLR; {_SIMULATED_NOTE}.</p></body></html>\n"
    return {
        f"{top}/iif/{order:09d}_iif.xml": iif.encode(),
        f"{top}/readme.html": readme.encode(),
        f"{top}/tools/EnMAP_Data_License.pdf": licence.encode(),
        f"{top}/tools/copyright.html": copyright_page.encode(),
    }


def write_tar_delivery(
    target: Path,
    order: int,
    products: list[tuple[str, str, Path]],
    mtime: int,
    extra: list[tuple[tarfile.TarInfo, bytes | None]] | None = None,
) -> None:
    """A DLR delivery tarball (gzip, GNU tar) of ``products`` ((name, level, product ZIP) each),
    with the order's iif, readme and tools members; ``extra`` adds raw members (faults in tests).
    Member times are ``mtime`` (seconds), the gzip header carries none: the same products give the
    same bytes. Written to a temporary name first and renamed, so a scanner never sees half."""
    top = delivery_name(order)
    tmp = target.with_name(f".{target.name}.tmp")
    ordered = sorted(products)
    level_folders = {level: f"{top}/{TAR_LEVEL_FOLDER.format(level=level)}/" for _, level, _ in ordered}
    folders = sorted(  # parents before children
        {f"{top}/", *level_folders.values()}
        | {f"{level_folders[level]}{name}/" for name, level, _ in ordered}
        | {f"{top}/iif/", f"{top}/tools/"}
    )
    with (
        open(tmp, "wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=TAR_GZIP_LEVEL) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.GNU_FORMAT) as tar,
    ):
        for folder in folders:
            tar.addfile(_tar_info(folder.rstrip("/"), mtime, kind=tarfile.DIRTYPE))
        for name, level, path in ordered:
            with path.open("rb") as src:
                tar.addfile(_tar_info(tar_member(order, name, level), mtime, path.stat().st_size), src)
        items = [(name, level, path.stat().st_size) for name, level, path in ordered]
        for member, data in _ancillary(order, items).items():
            tar.addfile(_tar_info(member, mtime, len(data)), io.BytesIO(data))
        for info, data in extra or []:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    os.replace(tmp, target)


def unpack_deliveries_as_folders(archive: Path, target: Path) -> list[str]:
    """The products of every delivery tarball under ``archive`` as plain product folders under
    ``target`` (``<target>/<name>/<name>-...``), for comparisons of the two forms (tests and
    ``benchmarks/deliveries.py``). Python's tarfile and zipfile only, none of the scan's code.
    Returns the product names."""
    names = []
    target.mkdir(parents=True, exist_ok=True)
    for tarball in sorted(archive.rglob("*.tar.gz")):
        with tarfile.open(tarball) as tar:
            for member in tar:
                if member.isfile() and member.name.upper().endswith(".ZIP"):
                    with tar.extractfile(member) as stream, zipfile.ZipFile(stream) as product:
                        product.extractall(target)
                    names.append(Path(member.name).stem)
    return names
