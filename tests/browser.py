"""What a test needs to look at the Dagster UI in a real browser: a small demo-like instance, the
webserver and daemon of ``dagster dev`` on it, and a headless Chromium driven by Selenium.

Everything comes from Debian's packages (``/usr/bin/chromium``, ``/usr/bin/chromedriver``, installed
by ``.ci/run``); Selenium Manager is told where they are and is kept offline, so nothing is
downloaded. The instance is built as ``make demo`` builds its own (``pipelines.demo.run_chain``:
runs with the code location's origin, tile runs as the sensor requests them), in a subprocess so
that the code location resolves its data root from this instance's environment, not from
whatever an earlier test imported.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path

from storage_schemas.paths import PROJECT_ROOT

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
WINDOW = (1600, 1000)

BUILD_CHAIN = """
import sys
from dagster import DagsterInstance
from assets.chains import CHAINS
from pipelines.demo import run_chain
lines = run_chain(DagsterInstance.get(), CHAINS["enmap"])
print("\\n".join(lines or []))
sys.exit(lines is None)
"""
"""The EnMAP chain of ``make demo`` (catalog job, sensor ticks and their tile runs, release job)."""


def missing_browser() -> str | None:
    """Why the browser test cannot run here, or None."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (the dev extra: pip install -e '.[dev]')"
    for binary in (CHROMIUM, CHROMEDRIVER):
        if not binary.exists():
            return f"{binary} is missing (Debian's chromium and chromium-driver; .ci/run installs them)"
    return None


def instance_env(root: Path, home: Path) -> dict[str, str]:
    """This process's environment with every SpectralForge and Dagster location pointing into
    ``root`` and ``home`` (``make test`` exports the demo's), no Dask workers and no alerts."""
    env = {k: v for k, v in os.environ.items() if k != "SPECTRALFORGE_ALERT_WEBHOOK"}
    env.update(
        SPECTRAL_DATA_ROOT=str(root),
        ENMAP_ARCHIVE=str(root / "archive"),
        DESIS_ARCHIVE=str(root / "archive_desis"),
        SPECTRAL_LABEL_SOURCES=str(root / "label_sources"),
        DAGSTER_HOME=str(home),
        SPECTRALFORGE_DEPLOYMENT="local",
        SPECTRALFORGE_DASK_WORKERS="0",
        PYTHONWARNINGS="ignore",
    )
    return env


def build_demo_instance(root: Path, home: Path, tiles: int, tile_size: int) -> dict[str, str]:
    """A simulated archive of ``tiles`` products under ``root`` and the demo's EnMAP chain run on
    the instance at ``home`` (with ``deploy/dagster.dev.yaml``, as ``make demo`` copies it).
    Returns the environment that names them, for the server."""
    from simulator import DEMO_VISIT_MODEL, simulate_archive

    simulate_archive(root, tiles=tiles, tile_size=tile_size, seed=2, model=DEMO_VISIT_MODEL)
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(PROJECT_ROOT / "deploy" / "dagster.dev.yaml", home / "dagster.yaml")
    env = instance_env(root, home)
    built = subprocess.run(
        [sys.executable, "-c", BUILD_CHAIN], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True
    )
    if built.returncode:
        raise RuntimeError(f"the demo chain failed:\n{built.stdout[-3000:]}\n{built.stderr[-5000:]}")
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


@contextmanager
def dagster_dev(env: Mapping[str, str], log: Path, timeout: float = 240) -> Iterator[str]:
    """``dagster dev -w deploy/workspace.yaml`` (webserver and daemon) on a free port, started
    through ``deploy/serve.py`` as ``make ui`` starts it, in a process group of its own that is
    stopped at the end. Yields the UI's base URL once the webserver answers."""
    port = free_port()
    command = [
        sys.executable,
        "deploy/serve.py",
        str(Path(sys.executable).parent / "dagster"),
        "dev",
        "-w",
        "deploy/workspace.yaml",
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
    ]
    with log.open("wb") as out:
        server = subprocess.Popen(
            command,
            cwd=PROJECT_ROOT,
            env=dict(env),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while not _answers(f"{url}/server_info"):
            if server.poll() is not None:
                raise RuntimeError(f"dagster dev exited with {server.returncode}:\n{log.read_text()[-5000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"dagster dev did not answer in {timeout} s:\n{log.read_text()[-5000:]}")
            time.sleep(1)
        yield url
    finally:
        _stop_group(server)


def _stop_group(process: subprocess.Popen, grace: float = 30) -> None:
    """SIGTERM to the server's process group (webserver, daemon, code servers, run workers), then
    SIGKILL to whatever is left after ``grace`` seconds."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        with suppress(subprocess.TimeoutExpired):
            process.wait(grace)
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


@contextmanager
def chromium() -> Iterator:
    """Headless Chromium from Debian's package through its chromedriver; Selenium Manager offline."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    # a driver path given to Service skips Selenium Manager; should it run anyway, it stays offline
    os.environ.setdefault("SE_OFFLINE", "true")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    try:
        yield driver
    finally:
        driver.quit()
