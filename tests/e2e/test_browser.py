"""The real app in a real browser: `streamlit run app/main.py` driven by Debian's Chromium.

Failures leave a screenshot in test-artifacts/.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser_support import chromium, screenshot_on_failure, serve_app, sign_in
from tests.e2e.identity_env import build_governance_db

pytestmark = pytest.mark.browser

WAIT_MS = 60_000  # a busy 2-core machine: the first page imports mlflow
VIEWER = ("vic", "viewer", "vic-pass-1234")  # nothing is reachable without signing in
ADMIN = ("root", "admin", "root-pass-123")  # without an admin the app asks to create one


@pytest.fixture(scope="module")
def app_url(demo_data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    governance = build_governance_db(
        tmp_path_factory.mktemp("governance"), accounts=(ADMIN, VIEWER)
    )
    env = {
        **os.environ,
        "COUNTERSIGN_DB_URL": governance["COUNTERSIGN_DB_URL"],
        "COUNTERSIGN_DATA_DIR": str(demo_data_dir),
        "MLFLOW_TRACKING_URI": f"sqlite:///{demo_data_dir / 'mlflow.db'}",
    }
    env.pop("MLFLOW_REGISTRY_URI", None)
    with serve_app(env, tmp_path_factory.mktemp("streamlit"), timeout_s=90) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def page(browser, request: pytest.FixtureRequest) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    tab = context.new_page()
    tab.set_default_timeout(WAIT_MS)
    yield tab
    context.close()


def visit(tab, url: str, account: tuple[str, str, str] = VIEWER) -> None:
    """Open a URL and sign in (as the viewer unless told); the app then shows the page the URL
    names, with its query parameters."""
    tab.goto(url)
    username = tab.get_by_role("textbox", name="Username")
    username.wait_for()
    # /overview is the default page, whose URL is /: Streamlit says so in a dialog over the form.
    if tab.get_by_role("dialog").count():
        tab.keyboard.press("Escape")
    sign_in(tab, account[0], account[2])


def heading(tab, text: str):
    return tab.get_by_role("heading", name=text, exact=True)


def selected(tab, label: str) -> str:
    """The shown value of the first selectbox labelled `label`."""
    return tab.get_by_role("combobox", name=label, exact=True).first.input_value().strip()


def assert_no_error(tab) -> None:
    alerts = tab.locator('[data-testid="stAlertContentError"]')
    assert alerts.count() == 0, alerts.all_inner_texts()
    assert tab.locator('[data-testid="stException"]').count() == 0


PAGES = [
    ("", "Overview", "Registered models"),  # the default page lives at the root URL
    ("experiments", "Experiments", "Compare runs"),
    ("compare_runs", "Compare runs", "Runs"),
    ("models", "Models", "Versions"),
    ("compare_versions", "Compare versions", "Baseline"),
]


@pytest.mark.parametrize(("path", "title", "content"), PAGES, ids=[p[1] for p in PAGES])
def test_each_page_opens_in_chromium(app_url: str, page, path: str, title: str, content: str):
    with screenshot_on_failure(page, f"browser-{path or 'overview'}"):
        visit(page, f"{app_url}/{path}")
        heading(page, title).wait_for()
        assert page.get_by_text("Page not found").count() == 0
        page.get_by_text(content, exact=False).first.wait_for()
        assert_no_error(page)


def test_the_sidebar_navigates_between_pages(app_url: str, page) -> None:
    with screenshot_on_failure(page, "browser-navigation"):
        visit(page, app_url)
        heading(page, "Overview").wait_for()
        nav = page.locator('[data-testid="stSidebarNav"]')
        for title in ("Experiments", "Models", "Compare versions"):
            nav.get_by_role("link", name=title).click()
            heading(page, title).wait_for()
        assert_no_error(page)


def test_a_model_link_opens_the_version_comparison_with_the_selection(app_url: str, page):
    with screenshot_on_failure(page, "browser-model-to-compare"):
        visit(page, f"{app_url}/models?model=tumor-classifier")
        heading(page, "tumor-classifier").wait_for()
        page.get_by_role("link", name="Compare this version").click()
        heading(page, "Compare versions").wait_for()
        # The page must use the model of the link, not the first model of the store.
        page.get_by_text("Baseline: v2 (champion)", exact=False).first.wait_for()
        assert re.search(r"compare_versions\?.*model=tumor-classifier", page.url)
        assert selected(page, "Registered model") == "tumor-classifier"
        assert_no_error(page)


def test_a_shared_review_url_restores_the_selection(app_url: str, page) -> None:
    with screenshot_on_failure(page, "browser-shared-url"):
        # Not the store's first model, so that a page falling back to its default would show.
        visit(page, f"{app_url}/compare_versions?model=tumor-classifier&versions=1,3")
        heading(page, "Compare versions").wait_for()
        page.get_by_text("Baseline: v1", exact=False).first.wait_for()
        assert "versions=1%2C3" in page.url or "versions=1,3" in page.url
        assert selected(page, "Registered model") == "tumor-classifier"
        assert_no_error(page)


def test_a_deep_link_opened_before_signing_in_lands_on_its_page_with_its_selection(
    app_url: str, page
) -> None:
    with screenshot_on_failure(page, "browser-deep-link"):
        query = "model=tumor-classifier&version=1&target=challenger"
        visit(page, f"{app_url}/promotions?{query}", account=ADMIN)
        heading(page, "Promotions").wait_for()
        page.get_by_text("Evidence SHA-256", exact=False).first.wait_for()
        assert "/promotions?" in page.url
        assert "model=tumor-classifier" in page.url
        assert selected(page, "Registered model") == "tumor-classifier"
        assert selected(page, "Version").startswith("v1")
        assert selected(page, "Target") == "challenger"
        assert_no_error(page)
