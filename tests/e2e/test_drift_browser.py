"""The drift and feature-importance pages in Chromium against `streamlit run` on the demo store."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser_support import (
    chromium,
    require_chromium,
    screenshot_on_failure,
    serve_app,
    sign_in,
)
from tests.e2e.identity_env import ACCOUNTS, build_governance_db

pytestmark = [pytest.mark.browser, pytest.mark.slow]
WAIT_MS = 180_000  # the first drift view imports mlflow and reads artifacts on a busy machine
VIEWER = next((name, password) for name, role, password in ACCOUNTS if role == "viewer")


@pytest.fixture(scope="module")
def server(demo_data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    require_chromium()
    folder = tmp_path_factory.mktemp("drift-browser")
    env = {**os.environ, **build_governance_db(folder)}
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{demo_data_dir / 'mlflow.db'}"
    env.pop("MLFLOW_REGISTRY_URI", None)
    with serve_app(env, folder, timeout_s=120) as url:
        yield url


@pytest.fixture
def tab(server: str) -> Iterator[object]:
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(WAIT_MS)
        yield page


def _open_signed_in(tab, url: str) -> None:
    tab.goto(url)  # the page in the URL survives signing in
    sign_in(tab, *VIEWER)


def _no_error(tab) -> None:
    assert tab.locator('[data-testid="stAlertContentError"]').count() == 0
    assert tab.locator('[data-testid="stException"]').count() == 0


def test_drift_page_shows_the_verdict_and_then_evidently_s_report(server: str, tab) -> None:
    _open_signed_in(tab, f"{server}/drift?model=diabetes-progression&version=2")
    tab.get_by_role("heading", name="Drift", exact=True).wait_for()
    tab.get_by_text("Drifted columns").first.wait_for()
    tab.get_by_text("Share drifted").first.wait_for()  # table cells live on a canvas
    tab.get_by_role("tab", name="Evidently report").click()
    # Evidently builds in the background; the fragment polls every 2 s
    with screenshot_on_failure(tab, "drift-browser"):
        tab.get_by_text("Download report (HTML)").first.wait_for(timeout=2 * WAIT_MS)
    tab.locator("iframe").first.wait_for()
    _no_error(tab)


def test_feature_importance_page_compares_versions(server: str, tab) -> None:
    _open_signed_in(tab, f"{server}/feature_importance?model=tumor-classifier&versions=1,3")
    tab.get_by_role("heading", name="Feature importance", exact=True).wait_for()
    tab.get_by_text("v1: artifact (impurity)").first.wait_for()  # logged, never loaded
    tab.get_by_role("tab", name="Drift by importance").click()
    tab.get_by_text("features of v3 that drifted").first.wait_for()
    _no_error(tab)
