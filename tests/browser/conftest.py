"""Browser tests: a real headless Chromium, driven by Playwright's sync API, against the local
platform (``python -m local.platform``, what ``make run`` runs) with the SPEC's demo data.

The browser is Debian's ``chromium`` (``make test`` installs it when missing), or the binary named
by ``BSS_CHROMIUM``; Playwright's own browser builds are never downloaded. Every test here is
marked ``browser``. Fixtures:

* ``platform`` (per module): the running platform, ``url``, ``secret`` (its ``BSS_JWT_SECRET``),
  ``log`` (the file of its output) and ``output()``; stopped with Ctrl-C (SIGINT) at the end;
* ``browser`` (per session, that is per xdist worker): the launched Chromium;
* ``page`` (1280×900) and ``phone_page`` (390×844, mobile): a page in a new browser context, closed
  after the test; a test that fails leaves ``failure.png`` (``failure-phone.png``) of its pages;
* ``shots``: ``shots.save(page, name)`` writes the whole page to
  ``build/screenshots/<test module>/<test name>/<nn>-<name>.png``, numbered in order.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Playwright, ViewportSize, sync_playwright
from playwright.sync_api import Error as PlaywrightError

from tests.e2e.test_local_platform import SECRET, Running, free_port, start

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SCREENSHOTS = ROOT / "build" / "screenshots"

CHROMIUM = os.environ.get("BSS_CHROMIUM", "/usr/bin/chromium")
#: Headless (Playwright adds ``--headless``) as root on a closed network. Playwright gives every
#: launch a fresh, empty user-data-dir of its own (it refuses ``--user-data-dir``) and removes it.
CHROMIUM_ARGS = [
    "--no-sandbox",  # root
    "--disable-gpu",
    "--disable-dev-shm-usage",  # a container's /dev/shm is 64 MB
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP: ViewportSize = {"width": 1280, "height": 900}
PHONE: ViewportSize = {"width": 390, "height": 844}
#: every wait and navigation gives up after this (Playwright's default is 30 s)
TIMEOUT_MS = 15_000

#: the report of each phase of a test ("setup", "call", "teardown"), for the failure screenshots
REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(pytest.mark.browser)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    item.stash.setdefault(REPORTS, {})[report.when] = report
    return report


def failed(item: pytest.Item) -> bool:
    """Whether the test itself (its call phase) failed."""
    call = item.stash.get(REPORTS, {}).get("call")
    return call is not None and call.failed


@dataclass
class Platform:
    """The local platform as the browser tests see it."""

    url: str
    secret: str
    log: Path
    state_dir: Path
    running: Running

    def output(self) -> str:
        """What the platform printed so far (its banner, requests, errors)."""
        return self.running.output()


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """``python -m local.platform`` on a free port with a fresh demo in a temporary
    ``BSS_LOCAL_DIR`` and ``BSS_JWT_SECRET`` = ``secret``, as tests/e2e starts it; a start that
    fails fails the test with the platform's output."""
    folder = tmp_path_factory.mktemp("platform")
    with (folder / "platform.log").open("w+b") as log:
        running = start(free_port(), log)  # BSS_LOCAL_DIR: folder / "local-state"
        try:
            yield Platform(running.url, SECRET, Path(log.name), folder / "local-state", running)
        finally:
            running.interrupt()


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """Chromium at ``BSS_CHROMIUM`` (default ``/usr/bin/chromium``), headless."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"no Chromium at {CHROMIUM}: `make test` installs Debian's chromium, "
            "BSS_CHROMIUM=<path> names another"
        )
    browser = playwright.chromium.launch(
        executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
    )
    try:
        yield browser
    finally:
        browser.close()


def slug(text: str) -> str:
    """``text`` as a file name: letters, digits, ``.``, ``_`` and ``-``."""
    return re.sub(r"[^\w.-]+", "_", text).strip("_") or "_"


@pytest.fixture
def screenshot_dir(request: pytest.FixtureRequest) -> Path:
    """``build/screenshots/<test module>/<test name>/``, emptied of a previous run's files."""
    folder = SCREENSHOTS / request.node.path.stem / slug(request.node.name)
    shutil.rmtree(folder, ignore_errors=True)
    return folder


class Shots:
    """Numbered screenshots of a test: ``01-<name>.png``, ``02-<name>.png``, …"""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.count = 0

    def save(self, page: Page, name: str, *, full_page: bool = True) -> Path:
        """The whole page (``full_page=False``: the viewport only, quicker on a long page)."""
        self.count += 1
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{self.count:02d}-{slug(name)}.png"
        page.screenshot(path=path, full_page=full_page)
        return path


@pytest.fixture
def shots(screenshot_dir: Path) -> Shots:
    return Shots(screenshot_dir)


def open_page(
    browser: Browser,
    request: pytest.FixtureRequest,
    folder: Path,
    failure: str,
    viewport: ViewportSize,
    is_mobile: bool = False,
) -> Iterator[Page]:
    context = browser.new_context(viewport=viewport, is_mobile=is_mobile, has_touch=is_mobile)
    context.set_default_timeout(TIMEOUT_MS)
    try:
        page = context.new_page()
        yield page
        if failed(request.node) and not page.is_closed():
            folder.mkdir(parents=True, exist_ok=True)
            # a page that crashed or hangs takes none; the test's own failure is what counts
            with contextlib.suppress(PlaywrightError):
                page.screenshot(path=folder / failure, full_page=True, timeout=5_000)
    finally:
        context.close()


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest, screenshot_dir: Path) -> Iterator[Page]:
    """A desktop page (1280×900) in a context of its own."""
    yield from open_page(browser, request, screenshot_dir, "failure.png", DESKTOP)


@pytest.fixture
def phone_page(
    browser: Browser, request: pytest.FixtureRequest, screenshot_dir: Path
) -> Iterator[Page]:
    """A phone's page (390×844, mobile, touch) in a context of its own."""
    yield from open_page(browser, request, screenshot_dir, "failure-phone.png", PHONE, True)
