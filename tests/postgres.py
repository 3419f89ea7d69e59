"""A throwaway PostgreSQL cluster on loopback, for tests that run Dagster on a real PostgreSQL.

``initdb`` makes a cluster in a temporary folder (trust authentication, user ``postgres``),
``pg_ctl`` starts it on a free port of 127.0.0.1 with its socket in the same folder, and it is
stopped (``pg_ctl stop -m fast``) and deleted afterwards. PostgreSQL refuses to run as root, so
when the tests run as root (containers, CI) every PostgreSQL command runs as the unprivileged
``nobody`` through ``runuser``, in a folder under the system temp dir that ``nobody`` owns
(pytest's own temp folders are private to the user who runs pytest, so ``nobody`` could not
enter them).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

UNPRIVILEGED = "nobody"
"""Who runs PostgreSQL when the tests run as root."""
DEBIAN_BINARIES = Path("/usr/lib/postgresql/15/bin")
"""Where Debian's postgresql-15 package puts ``initdb`` and ``pg_ctl`` (not on PATH by default)."""


@dataclass(frozen=True)
class PostgresServer:
    """A running cluster: where to connect, and the environment ``deploy/dagster.postgres.yaml`` reads."""

    host: str
    port: int
    user: str
    db: str
    data_dir: Path

    def dagster_env(self) -> dict[str, str]:
        """The ``DAGSTER_PG_*`` variables that point the production instance file at this server."""
        return {
            "DAGSTER_PG_HOST": self.host,
            "DAGSTER_PG_PORT": str(self.port),
            "DAGSTER_PG_USER": self.user,
            "DAGSTER_PG_PASSWORD": "",
            "DAGSTER_PG_DB": self.db,
        }

    def conninfo(self) -> str:
        """A libpq connection string (for psycopg)."""
        return f"host={self.host} port={self.port} user={self.user} dbname={self.db}"


def postgres_binary(name: str) -> str | None:
    """``initdb``/``pg_ctl`` from PATH or from Debian's versioned folder; None when not installed."""
    found = shutil.which(name)
    if found is None and (DEBIAN_BINARIES / name).exists():
        found = str(DEBIAN_BINARIES / name)
    return found


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_owner(command: list[str]) -> list[str]:
    """``command`` as the user who may run PostgreSQL: ourselves, or ``nobody`` when we are root."""
    if os.geteuid() == 0:
        return ["runuser", "-u", UNPRIVILEGED, "--", *command]
    return command


def _run(command: list[str]) -> None:
    done = subprocess.run(_as_owner(command), capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")


@contextmanager
def throwaway_postgres(user: str = "postgres", db: str = "postgres") -> Iterator[PostgresServer]:
    """Start a fresh cluster on 127.0.0.1 (a free port), yield it, then stop and delete it.

    The caller checks ``postgres_binary`` first and skips when PostgreSQL is not installed."""
    initdb, pg_ctl = postgres_binary("initdb"), postgres_binary("pg_ctl")
    if initdb is None or pg_ctl is None:
        raise FileNotFoundError("initdb/pg_ctl not found (Debian: apt-get install postgresql)")
    folder = Path(tempfile.mkdtemp(prefix="spectralforge-pg-"))
    try:
        if os.geteuid() == 0:
            shutil.chown(folder, user=UNPRIVILEGED)
        data = folder / "data"
        _run([initdb, "-D", str(data), "-U", user, "--auth=trust", "--no-sync", "-E", "UTF8"])
        port = _free_port()
        options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        _run([pg_ctl, "-D", str(data), "-l", str(folder / "server.log"), "-o", options, "-w", "start"])
        try:
            yield PostgresServer("127.0.0.1", port, user, db, data)
        finally:
            _run([pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"])
    finally:
        shutil.rmtree(folder, ignore_errors=True)
