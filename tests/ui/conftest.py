"""A real Airflow UI (``scripts/airflow_standalone.py --ui-only``) and a headless Chromium, once per module.

The Airflow side is the script behind ``make airflow``, on a free port and a temporary AIRFLOW_HOME: its
sandbox, Connection, Test-button setting and shutdown are exercised too. It needs no browser; the browser
fixture skips (with the reason shown in the summary) where no Chromium is installed.

The browser is the system's Chromium (Debian's ``chromium`` package), driven by Playwright: CI reaches package
registries only, so ``playwright install`` (which downloads Playwright's own browser builds) cannot run there.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.support.airflow_ui import AirflowUI

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "airflow_standalone.py"
START_TIMEOUT = 240.0
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# How long one wait on the page (an element, a navigation) may take before the test fails.
PAGE_TIMEOUT_MS = 30_000


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=3).close()
    except OSError as exc:
        return getattr(exc, "code", None) is not None  # an HTTP error status still means "up"
    return True


@pytest.fixture(scope="module")
def airflow_ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowUI]:
    home = tmp_path_factory.mktemp("airflow-ui-home")
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, str(SCRIPT), "--ui-only", "--port", str(port), "--home", str(home)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO,
    )  # fmt: skip
    assert proc.stdout is not None
    output: list[str] = []
    ready = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            output.append(line.rstrip("\n"))
            if line.startswith("Press Ctrl-C"):
                ready.set()
        ready.set()

    threading.Thread(target=read, name="airflow-ui-output", daemon=True).start()
    if not ready.wait(START_TIMEOUT) or proc.poll() is not None:
        proc.send_signal(signal.SIGINT)
        proc.wait(60)
        log = home / "standalone.log"
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:]) if log.exists() else ""
        pytest.fail("scripts/airflow_standalone.py did not get ready:\n" + "\n".join(output) + "\n" + tail)
    text = "\n".join(output)
    login = re.search(r"login\s+: (\S+) / (\S+)", text)
    sandbox = re.search(r"Preservica sandbox at (\S+) .*account (\S+) / (\S+)\)", text)
    assert login and sandbox, text
    ui = AirflowUI(f"http://localhost:{port}", login[1], login[2], *sandbox.groups(), home, proc, output)
    yield ui
    # Ctrl-C, as a user would: the script must take Airflow and the sandbox down with it.
    proc.send_signal(signal.SIGINT)
    assert proc.wait(90) == 0, "\n".join(output)
    assert output[-1] == "-> Airflow and the sandbox stopped"
    assert not _answers(f"{ui.url}/api/v2/monitor/health"), "the api-server outlived make airflow"
    assert not _answers(f"{ui.sandbox_url}/_sandbox/stats"), "the sandbox outlived make airflow"


def find_chromium() -> str | None:
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    binary = find_chromium()
    if binary is None:
        pytest.skip("no Chromium on PATH (Debian: apt-get install chromium); the Connection form was not checked")
    with sync_playwright() as playwright:
        # Headless; Playwright adds --no-sandbox itself (the tests run as root).
        instance = playwright.chromium.launch(executable_path=binary, args=["--disable-dev-shm-usage"])
        yield instance
        instance.close()


def _path(url: str) -> str:
    return urlsplit(url).path


@pytest.fixture(scope="module")
def logged_in(browser: Browser, airflow_ui: AirflowUI) -> Page:
    """One tab, signed in through the login form of Airflow's simple auth manager."""
    page = browser.new_page(viewport={"width": 1280, "height": 1100})
    page.set_default_timeout(PAGE_TIMEOUT_MS)
    page.goto(f"{airflow_ui.url}/")
    page.wait_for_url(lambda url: _path(url).startswith("/auth/login"))
    page.locator("input[name=username]").fill(airflow_ui.user)
    page.locator("input[name=password]").fill(airflow_ui.password)
    page.locator("button[type=submit]:not([disabled])").click()
    page.wait_for_url(lambda url: not _path(url).startswith("/auth"))
    return page


@pytest.fixture
def screenshot(logged_in: Page, request: pytest.FixtureRequest) -> Iterator[None]:
    """Keep a screenshot of the page at the end of each test (tests/ui/screenshots/, not committed)."""
    yield
    SCREENSHOTS.mkdir(exist_ok=True)
    try:
        logged_in.screenshot(path=SCREENSHOTS / f"{request.node.name}.png", full_page=True)
    except Exception as exc:  # a screenshot must never hide the test's own result
        print(f"no screenshot: {exc}")
