"""Sign-in, sign-out, lockout, a direct URL without the role, and server-side sessions (reload,
new tabs, links, logging out everywhere, expired, revoked and copied cookies) in Debian's
Chromium.

`streamlit run app/main.py` serves a real governance database on a free 127.0.0.1 port; one
server in local mode for the whole module (and one behind a simulated proxy in header mode).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

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
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    require_chromium()
    folder = tmp_path_factory.mktemp("identity-browser")
    env = build_governance_db(folder)
    with serve_app({**os.environ, **env}, folder, timeout_s=90) as url:
        yield url, env


@pytest.fixture(scope="module")
def server(served: tuple[str, dict[str, str]]) -> str:
    return served[0]


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


# --- server-side sessions ------------------------------------------------------------------------

COOKIE = "countersign_session"


def signed_in_page(context: BrowserContext, url: str, user: str) -> Page:
    """A tab of `context` signed in as `user`, once its browser holds the session cookie."""
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    page.goto(url)
    expect(page.get_by_role("button", name="Log in")).to_be_visible(timeout=WAIT_MS)
    with page.expect_response(lambda r: r.url.endswith("/_countersign/session")) as handed:
        sign_in(page, user, PASSWORDS[user])
    assert handed.value.status == 204
    expect(page.get_by_role("button", name="Log out")).to_be_visible(timeout=WAIT_MS)
    return page


def expect_signed_in(page: Page, user: str) -> None:
    expect(page.get_by_text("Signed in as")).to_contain_text(user, timeout=WAIT_MS)
    expect(page.get_by_role("button", name="Log in")).to_have_count(0)


def expect_sign_in_page(page: Page, notice: str) -> None:
    expect(page.get_by_role("button", name="Log in")).to_be_visible(timeout=WAIT_MS)
    expect(page.get_by_text(notice)).to_be_visible(timeout=WAIT_MS)
    expect(page.get_by_role("button", name="Log out")).to_have_count(0)


def session_cookie(context: BrowserContext) -> dict[str, Any]:
    return next(c for c in context.cookies() if c["name"] == COOKIE)


@pytest.fixture
def context(browser: Browser, request: pytest.FixtureRequest) -> Iterator[BrowserContext]:
    ctx = browser.new_context()
    failed_before = request.session.testsfailed
    yield ctx
    if failed_since(request, failed_before):
        for i, pg in enumerate(ctx.pages):
            screenshot(pg, f"{request.node.name}-{i}")
    ctx.close()


@pytest.fixture(scope="module")
def facade(served: tuple[str, dict[str, str]]) -> Iterator[Any]:
    """The served governance database, from the test's side (requests, revocations)."""
    from app.bootstrap import build_governance
    from app.settings import Settings
    from tests.unit.fakes import FakeRegistry

    registry = FakeRegistry()
    registry.add("session-model", "1", author="someone", metrics={"accuracy": 0.9})
    built = build_governance(Settings.from_env(env=served[1]), registry=registry)
    yield built
    built.dispose()


def test_reload_and_a_new_tab_on_a_request_link_keep_the_person_signed_in(
    server: str, context: BrowserContext, facade: Any
) -> None:
    request_id = facade.request_promotion(
        "lou", "session-model", "1", "challenger", "a link from a notification"
    ).id
    page = signed_in_page(context, server, "erin")
    cookie = session_cookie(context)
    assert (cookie["httpOnly"], cookie["sameSite"], cookie["secure"], cookie["path"]) == (
        True,
        "Lax",
        False,  # plain http on 127.0.0.1; Secure behind https (tested on the endpoint)
        "/",
    )
    assert COOKIE not in page.evaluate("document.cookie")  # scripts cannot read it
    page.reload()
    expect_signed_in(page, "erin")
    tab = context.new_page()
    tab.set_default_timeout(WAIT_MS)
    tab.goto(f"{server}/approvals?request={request_id}")
    expect(tab.get_by_role("heading", name=f"Request {request_id}")).to_be_visible(timeout=WAIT_MS)
    expect_signed_in(tab, "erin")
    assert tab.url.endswith(f"/approvals?request={request_id}")


def test_logging_out_in_one_tab_ends_the_other_and_the_link_then_signs_in_to_it(
    server: str, context: BrowserContext, facade: Any
) -> None:
    request_id = facade.request_promotion(
        "lee", "session-model", "1", "t-logout", "a second link"
    ).id
    first = signed_in_page(context, server, "erin")
    second = context.new_page()
    second.set_default_timeout(WAIT_MS)
    second.goto(f"{server}/approvals")
    expect_signed_in(second, "erin")
    first.get_by_role("button", name="Log out").click()
    expect_sign_in_page(first, "You are signed out.")
    # The other tab ends at its next click.
    second.get_by_test_id("stSidebarNav").get_by_text("Overview").click()
    expect_sign_in_page(second, "You are signed out.")
    # The same tab then opens a request's link and signs in: it lands on that request.
    first.goto(f"{server}/approvals?request={request_id}")
    expect(first.get_by_role("button", name="Log in")).to_be_visible(timeout=WAIT_MS)
    sign_in(first, "erin", PASSWORDS["erin"])
    expect(first.get_by_role("heading", name=f"Request {request_id}")).to_be_visible(
        timeout=WAIT_MS
    )
    assert first.url.endswith(f"/approvals?request={request_id}")


def _age(env: dict[str, str], user: str) -> None:
    from sqlalchemy import update

    from governance.db import make_engine
    from governance.operational_rows import BrowserSessionRow
    from governance.orm import table_of

    table = table_of(BrowserSessionRow)
    engine = make_engine(env["COUNTERSIGN_DB_URL"])
    try:
        with engine.begin() as conn:
            past = datetime.now(UTC) - timedelta(seconds=1)
            conn.execute(
                update(table).where(table.c.user_name == user).values(idle_expires_at=past)
            )
    finally:
        engine.dispose()


def test_an_expired_or_revoked_cookie_shows_the_sign_in_page(
    served: tuple[str, dict[str, str]], browser: Browser, facade: Any
) -> None:
    url, env = served
    expired, revoked = browser.new_context(), browser.new_context()
    try:
        page = signed_in_page(expired, url, "vic")
        _age(env, "vic")
        page.reload()
        expect_sign_in_page(page, "without activity")
        page = signed_in_page(revoked, url, "lou")
        [session] = [s for s in facade.list_sessions("root") if s.user == "lou"]
        facade.end_session("root", session.id)
        # The sign-in page has the browser drop the dead cookie.
        with page.expect_response(lambda r: r.url.endswith("/_countersign/session/end")) as gone:
            page.reload()
        expect_sign_in_page(page, "An administrator ended your session.")
        assert gone.value.status == 204
        assert not [c for c in revoked.cookies() if c["name"] == COOKIE]
    except BaseException:
        for ctx in (expired, revoked):
            for i, pg in enumerate(ctx.pages):
                screenshot(pg, f"session-ended-{i}")
        raise
    finally:
        expired.close()
        revoked.close()


def test_a_cookie_copied_from_another_browser_is_useless_after_its_owner_logs_out(
    server: str, browser: Browser
) -> None:
    owner, thief = browser.new_context(), browser.new_context()
    try:
        page = signed_in_page(owner, server, "vic")
        stolen = session_cookie(owner)
        thief.add_cookies([stolen])
        other = thief.new_page()
        other.set_default_timeout(WAIT_MS)
        other.goto(server)
        expect_signed_in(other, "vic")  # a bearer cookie, while its session lives
        page.get_by_role("button", name="Log out").click()
        expect_sign_in_page(page, "You are signed out.")
        other.get_by_test_id("stSidebarNav").get_by_text("Overview").click()
        expect_sign_in_page(other, "You are signed out.")
        fresh = thief.new_page()
        fresh.set_default_timeout(WAIT_MS)
        thief.add_cookies([stolen])
        fresh.goto(server)
        expect_sign_in_page(fresh, "You are signed out.")
    except BaseException:
        for ctx in (owner, thief):
            for i, pg in enumerate(ctx.pages):
                screenshot(pg, f"copied-cookie-{i}")
        raise
    finally:
        owner.close()
        thief.close()
