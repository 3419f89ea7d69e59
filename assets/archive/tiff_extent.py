"""How far into its file a TIFF's pixel data reaches: the cheap test for a truncated image.

A truncated GeoTIFF still opens (its header and directory come first), and fails only when a
reader reaches the missing strips, which for a 1 GB product is long after the catalog has
accepted it. The strip (or tile) offsets and byte counts in the first image directory say where
the data ends; comparing that with the file size costs a few kilobytes of reading, also for a
member inside a ZIP, where reading the last strip would mean inflating the whole image.
"""

from __future__ import annotations

from typing import BinaryIO

import tifffile


class NotATiffError(ValueError):
    pass


def tiff_data_extent(stream: BinaryIO) -> int:
    """The byte offset just past the last strip or tile of the first image of a TIFF."""
    try:
        with tifffile.TiffFile(stream) as tif:
            page = tif.pages.first
            offsets, counts = page.dataoffsets, page.databytecounts
    except (tifffile.TiffFileError, ValueError, EOFError, OSError, IndexError) as exc:
        raise NotATiffError(f"not a readable TIFF: {exc}") from None
    if not offsets:
        return 0
    return max(int(o) + int(c) for o, c in zip(offsets, counts, strict=True))
