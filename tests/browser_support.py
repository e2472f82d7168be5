"""The one harness of the browser tests: a served app, Debian's Chromium, signing in, screenshots.

`streamlit run app/main.py` runs on a free 127.0.0.1 port; Chromium is /usr/bin/chromium driven
by Playwright (nothing is downloaded). A failing step leaves a screenshot in test-artifacts/.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",  # /dev/shm is small in containers
]


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def streamlit_argv(port: int) -> list[str]:
    """The command line of one headless app server on 127.0.0.1:`port`."""
    return [
        *(sys.executable, "-m", "streamlit", "run", "app/main.py"),
        *("--server.port", str(port), "--server.address", "127.0.0.1"),
        *("--server.headless", "true", "--browser.gatherUsageStats", "false"),
    ]


def wait_http(url: str, proc: subprocess.Popen[bytes], log: Path, timeout_s: float = 120) -> None:
    """Wait until `url` answers 200; fail with the log tail if the process dies or it never does."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"{url}: process exited: {log.read_text(errors='replace')[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - 127.0.0.1
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    pytest.fail(f"{url} did not answer: {log.read_text(errors='replace')[-3000:]}")


@contextmanager
def serve_app(env: Mapping[str, str], log_dir: Path, timeout_s: float = 120) -> Iterator[str]:
    """Run `streamlit run app/main.py` with `env` until the block ends; yields its base URL."""
    port = free_port()
    log = log_dir / "streamlit.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            streamlit_argv(port), cwd=ROOT, env=dict(env), stdout=out, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/_stcore/health", proc, log, timeout_s)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


def require_chromium() -> None:
    """Skip the calling test where Debian's Chromium (or Playwright) is not installed."""
    pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed")


@contextmanager
def chromium() -> Iterator[Any]:
    """A launched Playwright Browser over /usr/bin/chromium, closed when the block ends."""
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def sign_in(page: Any, username: str, password: str) -> None:
    """Fill the sign-in form on the current page and submit it."""
    page.get_by_role("textbox", name="Username").fill(username)
    page.get_by_role("textbox", name="Password", exact=True).fill(password)
    page.get_by_role("button", name="Log in").click()


def screenshot(page: Any, name: str) -> None:
    """Keep a full-page screenshot as test-artifacts/<name>.png."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


@contextmanager
def screenshot_on_failure(page: Any, name: str) -> Iterator[None]:
    """Screenshot `page` as test-artifacts/<name>.png if the block raises, then re-raise."""
    try:
        yield
    except BaseException:
        screenshot(page, name)
        raise


def failed_since(request: pytest.FixtureRequest, failed_before: int) -> bool:
    """Whether a test failed after a fixture noted `request.session.testsfailed`."""
    return bool(request.session.testsfailed > failed_before)
