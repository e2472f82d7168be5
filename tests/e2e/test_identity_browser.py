"""Sign-in, sign-out, lockout and a direct URL without the role, in Debian's Chromium.

`streamlit run app/main.py` serves a real governance database on a free 127.0.0.1 port.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser_support import (
    chromium,
    failed_since,
    require_chromium,
    screenshot,
    serve_app,
    sign_in,
)
from tests.e2e.identity_env import ACCOUNTS, build_governance_db

pytestmark = pytest.mark.browser

PASSWORDS = {name: password for name, _, password in ACCOUNTS}
WAIT_MS = 60_000  # the first page behind the gate imports MLflow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    require_chromium()
    folder = tmp_path_factory.mktemp("identity-browser")
    env = {**os.environ, **build_governance_db(folder)}
    with serve_app(env, folder, timeout_s=90) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    context = browser.new_context()
    pg = context.new_page()
    pg.set_default_timeout(WAIT_MS)
    failed_before = request.session.testsfailed
    yield pg
    if failed_since(request, failed_before):  # keep a screenshot of what went wrong
        screenshot(pg, request.node.name)
    context.close()


def test_sign_in_then_sign_out(server: str, page: Page) -> None:
    page.goto(server)
    expect(page.get_by_role("button", name="Log in")).to_be_visible(timeout=WAIT_MS)
    sign_in(page, "vic", PASSWORDS["vic"])
    log_out = page.get_by_role("button", name="Log out")
    expect(log_out).to_be_visible(timeout=WAIT_MS)
    expect(page.get_by_text("Signed in as")).to_be_visible(timeout=WAIT_MS)
    log_out.click()
    expect(page.get_by_role("button", name="Log in")).to_be_visible(timeout=WAIT_MS)
    expect(page.get_by_text("You are signed out.")).to_be_visible(timeout=WAIT_MS)


def test_a_wrong_password_is_refused_and_the_account_locks(server: str, page: Page) -> None:
    page.goto(server)
    # Each answer differs, so every attempt is waited for before the next one is typed.
    for left in ("2 attempts left", "1 attempt left"):
        sign_in(page, "lee", "not-the-password")
        expect(page.get_by_text(left)).to_be_visible(timeout=WAIT_MS)
        expect(page.get_by_text("invalid user name or password")).to_be_visible(timeout=WAIT_MS)
    sign_in(page, "lee", "not-the-password")
    expect(page.get_by_text("(3 in a row here)")).to_be_visible(timeout=WAIT_MS)
    expect(page.get_by_text("locked for 15 minutes")).to_be_visible(timeout=WAIT_MS)
    sign_in(page, "lee", PASSWORDS["lee"])  # the right password, but the account is locked
    expect(page.get_by_text("(4 in a row here)")).to_be_visible(timeout=WAIT_MS)
    expect(page.get_by_text("invalid user name or password")).to_be_visible(timeout=WAIT_MS)
    expect(page.get_by_role("button", name="Log out")).to_have_count(0, timeout=WAIT_MS)


def test_a_direct_url_without_the_role_says_which_role_it_needs(server: str, page: Page) -> None:
    page.goto(f"{server}/admin")
    expect(page.get_by_role("button", name="Log in")).to_be_visible(timeout=WAIT_MS)
    sign_in(page, "vic", PASSWORDS["vic"])
    expect(page.get_by_text("You need the admin role to open this page.")).to_be_visible(
        timeout=WAIT_MS
    )
    nav = page.get_by_test_id("stSidebarNav")
    expect(nav.get_by_text("Overview")).to_be_visible(timeout=WAIT_MS)
    expect(nav.get_by_text("Admin")).to_have_count(0, timeout=WAIT_MS)


@pytest.fixture(scope="module")
def proxied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    """The app in header mode: the trusted proxy's X-Forwarded-User names the person."""
    require_chromium()
    folder = tmp_path_factory.mktemp("identity-header")
    env = build_governance_db(folder)
    env |= {"COUNTERSIGN_AUTH": "header", "COUNTERSIGN_HEADER_AUTH_ENABLED": "1"}
    with serve_app({**os.environ, **env}, folder, timeout_s=90) as url:
        yield url, env


def test_behind_the_proxy_a_link_opens_its_page_and_the_sign_in_is_audited(
    proxied: tuple[str, dict[str, str]], browser: Browser
) -> None:
    from app.bootstrap import build_governance
    from app.settings import Settings

    url, env = proxied
    context = browser.new_context(extra_http_headers={"X-Forwarded-User": "erin"})
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    try:
        page.goto(f"{url}/approvals")  # a link to a page, followed by someone not yet signed in
        expect(page.get_by_role("heading", name="Approvals")).to_be_visible(timeout=WAIT_MS)
        expect(page.get_by_text("Signed in as")).to_contain_text("erin", timeout=WAIT_MS)
        # The proxy owns the session: there is no form and no "Log out" to offer.
        expect(page.get_by_role("button", name="Log in")).to_have_count(0)
        expect(page.get_by_role("button", name="Log out")).to_have_count(0)
    except BaseException:
        screenshot(page, "header-sign-in")
        raise
    finally:
        context.close()
    facade = build_governance(Settings.from_env(env=env))
    try:
        with facade.store.unit_of_work(read_only=True) as uow:
            sign_ins = uow.audit.search(actions=("login_succeeded",), actor="erin")
    finally:
        facade.dispose()
    assert [json.loads(e.payload) for e in sign_ins] == [{"method": "header"}]
