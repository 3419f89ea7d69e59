"""Tell a fault of the machine from a fault of the data.

A full disk, a folder without write permission or a read-only file system breaks a write into the
data root (patch store, staging folder, catalog), whichever product is being processed. Reported
like a product's fault (beginning with the product's path, or as a quarantine row), it would send
the user looking at a healthy product and keep that product out of the catalog. Here an
``OSError`` raised while writing under a folder is classified by its errno: the faults of the
environment become an :class:`EnvironmentFault` that names the folder and the fault, is neither an
``OSError`` nor a ``RuntimeError`` (so the readers' "bad product" handlers do not catch it), and
fails the step. Every other error passes through unchanged. Reading a product's own files is not
wrapped: an unreadable product stays the product's fault.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

FAULTS = {
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied (operation not permitted)",
    errno.EROFS: "read-only file system",
}
"""Errnos that say the folder cannot be written, whatever is written into it."""
WRITE_ONLY = {errno.ENOSPC, errno.EDQUOT, errno.EROFS}
"""Errnos a read never raises: the environment's fault even when the error names another file."""


class EnvironmentFault(Exception):
    """A folder of the data root cannot be written (no space, permission, read-only); the data
    being processed is not at fault."""

    def __init__(self, message: str, folder: str, errno_: int):
        super().__init__(message)
        self.folder = folder
        self.errno = errno_

    def __reduce__(self):  # picklable across Dask workers and processes
        return (type(self), (str(self), self.folder, self.errno))


def environment_fault(exc: BaseException, folder: Path, what: str) -> EnvironmentFault | None:
    """``exc`` as an environment fault of writing ``what`` under ``folder``, or None when it is
    something else: not an OSError, another errno, or a permission error about a file outside
    ``folder`` (a product's own file)."""
    if isinstance(exc, EnvironmentFault):
        return exc
    if not isinstance(exc, OSError) or exc.errno not in FAULTS:
        return None
    names = [n for n in (exc.filename, exc.filename2) if n]
    inside = [n for n in names if _is_under(n, folder)]
    if names and not inside and exc.errno not in WRITE_ONLY:
        return None
    where = Path(os.fspath(inside[0])).parent if inside else folder
    code = errno.errorcode.get(exc.errno, str(exc.errno))
    detail = f" ({exc.strerror}: {os.fspath(names[0])})" if names else ""
    message = (
        f"cannot write {what} under {where}: {FAULTS[exc.errno]} ({code}){detail}. This is a fault of the "
        f"machine, not of the data: free space or fix the permissions of {folder}, then run again"
    )
    return EnvironmentFault(message, str(where), exc.errno)


@contextmanager
def writing_under(folder: Path, what: str) -> Iterator[None]:
    """Raise the environment faults of the block as :class:`EnvironmentFault` (see
    :func:`environment_fault`); let every other error through unchanged."""
    try:
        yield
    except OSError as exc:
        fault = environment_fault(exc, folder, what)
        if fault is None:
            raise
        raise fault from exc


def _is_under(name: str | bytes | os.PathLike, folder: Path) -> bool:
    path = os.path.abspath(os.fsdecode(name))
    return Path(path).is_relative_to(os.path.abspath(folder))
