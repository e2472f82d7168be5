"""The drift and feature-importance pages in Chromium against `streamlit run` on the demo store."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.identity_env import ACCOUNTS, ROOT, build_governance_db

pytestmark = [pytest.mark.browser, pytest.mark.slow]
CHROMIUM = "/usr/bin/chromium"
WAIT_MS = 180_000  # the first drift view imports mlflow and reads artifacts on a busy machine
VIEWER = next((name, password) for name, role, password in ACCOUNTS if role == "viewer")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(demo_data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed")
    folder = tmp_path_factory.mktemp("drift-browser")
    env = {**os.environ, **build_governance_db(folder)}
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{demo_data_dir / 'mlflow.db'}"
    env.pop("MLFLOW_REGISTRY_URI", None)
    port = _free_port()
    log = folder / "streamlit.log"
    cmd = [sys.executable, "-m", "streamlit", "run", "app/main.py", "--server.port", str(port)]
    cmd += ["--server.address", "127.0.0.1", "--server.headless", "true"]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2):  # noqa: S310
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"streamlit did not start:\n{log.read_text()[-3000:]}")
                time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture
def tab(server: str) -> Iterator[object]:
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(WAIT_MS)
        yield page
        browser.close()


def _open_signed_in(tab, url: str) -> None:
    tab.goto(url)  # the page in the URL survives signing in
    tab.get_by_role("textbox", name="Username").fill(VIEWER[0])
    tab.get_by_role("textbox", name="Password").fill(VIEWER[1])
    tab.get_by_role("button", name="Log in").click()


def _no_error(tab) -> None:
    assert tab.locator('[data-testid="stAlertContentError"]').count() == 0
    assert tab.locator('[data-testid="stException"]').count() == 0


def test_drift_page_shows_the_verdict_and_then_evidently_s_report(server: str, tab) -> None:
    _open_signed_in(tab, f"{server}/drift?model=diabetes-progression&version=2")
    tab.get_by_role("heading", name="Drift", exact=True).wait_for()
    tab.get_by_text("Drifted columns").first.wait_for()
    tab.get_by_text("Share drifted").first.wait_for()  # table cells live on a canvas
    tab.get_by_role("tab", name="Evidently report").click()
    try:  # Evidently builds in the background; the fragment polls every 2 s
        tab.get_by_text("Download report (HTML)").first.wait_for(timeout=2 * WAIT_MS)
    except Exception:
        tab.screenshot(path=str(ROOT / "test-artifacts" / "drift-browser.png"), full_page=True)
        raise
    assert tab.locator("iframe").count() >= 1
    _no_error(tab)


def test_feature_importance_page_compares_versions(server: str, tab) -> None:
    _open_signed_in(tab, f"{server}/feature_importance?model=tumor-classifier&versions=1,3")
    tab.get_by_role("heading", name="Feature importance", exact=True).wait_for()
    tab.get_by_text("v1: model (impurity)").first.wait_for()
    tab.get_by_role("tab", name="Drift by importance").click()
    tab.get_by_text("features of v3 that drifted").first.wait_for()
    _no_error(tab)
