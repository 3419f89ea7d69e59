"""The Dagster UI in a real browser (Debian's Chromium, headless, through Selenium) on a small
demo-like instance served as ``make ui`` serves it (``dagster dev``: webserver and daemon): the
asset graph, the tile partitions and the release show what the runs made, the daemon's sensors
tick, and "Materialize" on the release launches a run that the daemon dequeues and that succeeds.
Screenshots stay in each test's temp folder (their paths are printed)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterInstance, DagsterRunStatus
from dagster._core.scheduler.instigation import InstigatorType

from tests.browser import build_demo_instance, chromium, dagster_dev, missing_browser

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(missing_browser() is not None, reason=str(missing_browser())),
]

TILES, TILE_SIZE = 6, 256
PAGE_TIMEOUT = 90
"""Seconds a page may take to show what it should (the first query of a page loads its data)."""
RUN_TIMEOUT = 300
"""Seconds a run launched from the UI may take: queued, dequeued by the daemon, each step a process."""
RELEASE = AssetKey("spectral_earth")


@pytest.fixture(scope="module")
def ui(tmp_path_factory):
    """(base URL, instance) of ``dagster dev`` on a demo-like instance built for this module."""
    folder = tmp_path_factory.mktemp("ui")
    home = folder / "dagster_home"
    env = build_demo_instance(folder / "data", home, TILES, TILE_SIZE)
    with dagster_dev(env, folder / "dagster_dev.log") as url:
        instance = DagsterInstance.from_config(str(home))
        try:
            yield url, instance
        finally:
            instance.dispose()


@pytest.fixture
def browser():
    with chromium() as driver:
        yield driver


def _body(driver) -> str:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.TAG_NAME, "body").text


def _open(driver, url: str, shows: Iterable[str], shot: Path) -> str:
    """Open ``url``, wait until the page shows every text of ``shows``, keep a screenshot and the
    page source beside it; the page's text."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    shows = list(shows)
    driver.get(url)
    try:
        WebDriverWait(driver, PAGE_TIMEOUT).until(lambda d: all(s in _body(d) for s in shows))
    except TimeoutException:
        missing = [s for s in shows if s not in _body(driver)]
        raise AssertionError(f"{url} does not show {missing}; it shows:\n{_body(driver)[:3000]}") from None
    finally:
        driver.save_screenshot(str(shot))
        shot.with_suffix(".html").write_text(driver.page_source)
        print(f"screenshot {shot}")
    return _body(driver)


def _until(condition: Callable[[], object], timeout: float, what: str):
    """Poll ``condition`` until it returns something true; fail saying ``what`` did not happen."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} within {timeout} s")
        time.sleep(1)
    return value


def test_the_ui_shows_the_graph_the_tile_partitions_and_the_release(ui, browser, tmp_path):
    url, instance = ui
    tiles = sorted(instance.get_dynamic_partitions("enmap_tiles"))
    assert tiles, "the demo chain registered its tiles"
    version = instance.get_latest_materialization_event(RELEASE).asset_materialization.metadata["version"]

    _open(
        browser,
        f"{url}/asset-groups",
        ["Global asset lineage", "archive", "geometry", "patches"],
        tmp_path / "lineage.png",
    )
    group = _open(
        browser,
        f"{url}/locations/spectralforge/asset-groups/patches",
        ["patch_store", "tile_patches", "spectral_earth", f"{len(tiles)} partitions", "100% filled"],
        tmp_path / "patches_group.png",
    )
    assert "Materialized" in group
    _open(
        browser,
        f"{url}/assets/tile_patches?view=partitions",
        [f"Materialized ({len(tiles)})", "Failed (0)", "Missing (0)", *tiles],
        tmp_path / "tile_patches_partitions.png",
    )
    _open(
        browser,
        f"{url}/assets/spectral_earth",
        ["spectral_earth", "Latest materialization", "release_job", version.value],
        tmp_path / "spectral_earth.png",
    )


def _sensor_ticked(instance: DagsterInstance, name: str) -> bool:
    states = instance.all_instigator_state(instigator_type=InstigatorType.SENSOR)
    state = next((s for s in states if s.instigator_name == name), None)
    return bool(
        state and state.is_running and instance.get_ticks(state.instigator_origin_id, state.selector_id)
    )


def _launched_run_link(driver):
    """The toast's link to the launched run; a launch dialog, if the UI opens one, is confirmed."""
    from selenium.webdriver.common.by import By

    links = driver.find_elements(By.XPATH, "//li[@data-sonner-toast]//a[starts-with(@href, '/runs/')]")
    if links:
        return links[0]
    confirm = driver.find_elements(
        By.XPATH, "//*[@role='dialog']//button[starts-with(normalize-space(), 'Launch')]"
    )
    if confirm:
        confirm[0].click()
    return None


def _run_outcome(driver) -> str | None:
    """'success' or 'failure' once the run page's status tag says so (its icon's aria label)."""
    from selenium.webdriver.common.by import By

    for outcome in ("success", "failure", "canceled"):
        if driver.find_elements(By.XPATH, f"//*[@role='img' and @aria-label='run_{outcome}']"):
            return outcome
    return None


def test_materialize_in_the_ui_runs_the_release_through_the_daemon(ui, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    url, instance = ui
    _until(
        lambda: _sensor_ticked(instance, "enmap_tiles_sensor"), PAGE_TIMEOUT, "the daemon ticked no sensor"
    )
    before = instance.get_latest_materialization_event(RELEASE)

    _open(
        browser,
        f"{url}/assets/spectral_earth",
        ["spectral_earth", "Latest materialization"],
        tmp_path / "before.png",
    )
    materialize = (By.XPATH, "//button[.//span[normalize-space()='Materialize']]")
    WebDriverWait(browser, PAGE_TIMEOUT).until(ec.element_to_be_clickable(materialize)).click()
    link = WebDriverWait(browser, PAGE_TIMEOUT).until(_launched_run_link)
    run_id = link.get_attribute("href").rsplit("/", 1)[-1]
    browser.save_screenshot(str(tmp_path / "launched.png"))
    print(f"screenshot {tmp_path / 'launched.png'}")

    browser.get(f"{url}/runs/{run_id}")
    outcome = WebDriverWait(browser, RUN_TIMEOUT).until(_run_outcome)
    browser.save_screenshot(str(tmp_path / "run.png"))
    (tmp_path / "run.html").write_text(browser.page_source)
    print(f"screenshot {tmp_path / 'run.png'}")
    assert outcome == "success", _body(browser)[:3000]
    assert "Success" in _body(browser)

    run = instance.get_run_by_id(run_id)
    assert run.status == DagsterRunStatus.SUCCESS
    assert run.asset_selection == {RELEASE}, "the UI launched the release alone"
    assert run.remote_job_origin.location_name == "spectralforge"
    latest = instance.get_latest_materialization_event(RELEASE)
    assert latest.run_id == run_id != before.run_id, "the release was materialised again by that run"
