"""OIDC sign-in end to end: Debian's Chromium, `streamlit run app/main.py` with
COUNTERSIGN_AUTH=oidc, and a real OpenID Connect provider (tests/oidc_provider.py) on 127.0.0.1.

Streamlit reads the generated [auth] section through `STREAMLIT_SECRETS_FILES` (its option
`secrets.files`), so nothing is written into the repository's .streamlit/. The app signs people in
with `st.login` (Authlib: discovery, PKCE, the code exchange, the RS256 ID token), then maps the
token's email to an account of the governance database.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser_support import chromium, failed_since, require_chromium, screenshot, serve_app
from tests.e2e.gov_env import CLASSIFIER, prepare, store_env, workflow_policy
from tests.e2e.identity_env import build_governance_db
from tests.oidc_provider import OidcProvider, Person
from tests.oidc_server import serve_provider, write_auth_secrets

_fixtures = pytest.importorskip("tests.fixtures_mlflow")
demo_data_dir = _fixtures.demo_data_dir

pytestmark = pytest.mark.browser

WAIT_MS = 90_000  # the first page behind the gate imports MLflow in the server
REAUTH_MINUTES = 5
expect.set_options(timeout=WAIT_MS)
ERIN = Person("idp-0001", "erin@example.org", "Erin Example")  # an approver in the database
UMA = Person("idp-0002", "uma@example.org", "Uma Unknown")  # no account


@pytest.fixture(scope="module")
def idp() -> Iterator[OidcProvider]:
    with serve_provider(OidcProvider(people=[ERIN, UMA])) as provider:
        yield provider


def oidc_env(root: Path, provider: OidcProvider, unknown: str) -> dict[str, str]:
    secrets_file = write_auth_secrets(root / "secrets.toml", provider, prompt="login")
    return {
        "COUNTERSIGN_AUTH": "oidc",
        "COUNTERSIGN_OIDC_UNKNOWN": unknown,
        "COUNTERSIGN_OIDC_REAUTH_MINUTES": str(REAUTH_MINUTES),
        "STREAMLIT_SECRETS_FILES": str(secrets_file),
        "NO_PROXY": "127.0.0.1,localhost",
    }


@pytest.fixture(scope="module")
def served(
    demo_data_dir: Path, idp: OidcProvider, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, dict[str, str]]]:
    """The app over a copy of the demo store; unknown identities become viewers."""
    require_chromium()
    root = tmp_path_factory.mktemp("oidc-viewer")
    env = store_env(demo_data_dir, root) | {"COUNTERSIGN_POLICY": str(workflow_policy(root))}
    prepare(env)
    _add_user(env, ERIN.email, "approver")
    env = {**os.environ, **env, **oidc_env(root, idp, unknown="viewer")}
    env.pop("MLFLOW_REGISTRY_URI", None)
    with serve_app(env, root, timeout_s=120) as url:
        idp.register(f"{url}/oauth2callback")
        yield url, env


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def page(browser: Browser, idp: OidcProvider, request: pytest.FixtureRequest) -> Iterator[Page]:
    context = browser.new_context()
    pg = context.new_page()
    pg.set_default_timeout(WAIT_MS)
    failed_before = request.session.testsfailed
    idp.auth_lag_s, idp.auto_approve = 0, None
    yield pg
    if failed_since(request, failed_before):
        screenshot(pg, request.node.name)
    context.close()


def _facade(env: dict[str, str]):  # type: ignore[no-untyped-def]
    """The governance facade over the served app's database, as the CLI builds it."""
    from app.bootstrap import build_governance
    from app.settings import Settings

    return build_governance(Settings.from_env(env=env))


def _add_user(env: dict[str, str], name: str, role: str) -> None:
    from governance.domain import CLI_OPERATOR

    facade = _facade(env)
    try:
        facade.create_user(CLI_OPERATOR, name, [role], "fallback-pass-123", "")
    finally:
        facade.dispose()


def sign_in_at_provider(page: Page, app_url: str, idp: OidcProvider, who: Person) -> None:
    """From the app's sign-in page through the provider's form and back to the app."""
    expect(page.get_by_text("Sign in with your organisation's identity provider.")).to_be_visible()
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{idp.issuer}/authorize?*")
    page.get_by_role("button", name=f"Sign in as {who.email}").click()
    page.wait_for_url(f"{app_url}/**")


def test_an_approver_signs_in_through_the_provider_and_sees_approvals(
    served: tuple[str, dict[str, str]], idp: OidcProvider, page: Page
) -> None:
    url, env = served
    page.goto(url)
    sign_in_at_provider(page, url, idp, ERIN)
    expect(page.get_by_text("Signed in as")).to_contain_text("Erin Example (approver)")
    nav = page.get_by_test_id("stSidebarNav")
    expect(nav.get_by_text("Approvals")).to_be_visible()
    # What Streamlit asked the provider for: the code flow with PKCE, a nonce, a fresh login.
    asked = idp.authorizations[-1]
    assert asked["prompt"] == "login"
    assert asked["code_challenge_method"] == "S256"
    assert asked["nonce"]
    assert asked["scope"].split() == ["openid", "email", "profile"]
    assert idp.token_requests[-1]["code_verifier"]
    assert idp.id_tokens[-1]["email"] == ERIN.email

    page.get_by_role("link", name="Approvals").click()
    expect(page.get_by_role("heading", name="Approvals")).to_be_visible()
    # The provider checked the password; the audit log records who came in and how.
    facade = _facade(env)
    try:
        with facade.store.unit_of_work(read_only=True) as uow:
            sign_ins = uow.audit.search(actions=("login_succeeded",), actor=ERIN.email)
    finally:
        facade.dispose()
    assert [json.loads(e.payload) for e in sign_ins] == [{"method": "oidc"}]
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("button", name="Log in")).to_be_visible()
    expect(page.get_by_text("Signed in as")).to_have_count(0)


def test_an_unknown_identity_becomes_a_viewer_without_approvals(
    served: tuple[str, dict[str, str]], idp: OidcProvider, page: Page
) -> None:
    url, env = served
    page.goto(url)
    sign_in_at_provider(page, url, idp, UMA)
    expect(page.get_by_text("Signed in as")).to_contain_text("Uma Unknown (viewer)")
    nav = page.get_by_test_id("stSidebarNav")
    expect(nav.get_by_text("Overview")).to_be_visible()
    expect(nav.get_by_text("Approvals")).to_have_count(0)
    # The viewer account made at the first sign-in serves the activity feed every viewer sees.
    expect(page.get_by_role("heading", name="Recent activity")).to_be_visible()
    expect(page.get_by_text("Recent runs")).to_be_visible()
    expect(page.get_by_text("unavailable")).to_have_count(0)
    facade = _facade(env)
    try:
        users = {u.name: u for u in facade.list_users("admin")}
        with facade.store.unit_of_work(read_only=True) as uow:
            created = uow.audit.search(actions=("user_created",), actor="system:oidc")
    finally:
        facade.dispose()
    assert users[UMA.email].roles == ("viewer",)
    assert users[UMA.email].display_name == UMA.name
    assert [e.object_id for e in created] == [UMA.email]
    # A link to a page the role may not open says so (the page asked for survives the sign-in).
    page.goto(f"{url}/approvals")
    expect(page.get_by_text("You need the approver role to open this page.")).to_be_visible()


def test_signing_needs_a_recent_sign_in_and_records_it(
    served: tuple[str, dict[str, str]], idp: OidcProvider, page: Page
) -> None:
    url, env = served
    facade = _facade(env)
    try:
        request_id = facade.request_promotion("alice", CLASSIFIER, "3", "champion", "oidc").id
    finally:
        facade.dispose()
    # The provider says Erin authenticated there longer ago than the app accepts for signing.
    idp.auth_lag_s = (REAUTH_MINUTES + 5) * 60
    page.goto(f"{url}/approvals?request={request_id}")
    sign_in_at_provider(page, url, idp, ERIN)
    # Streamlit's callback always lands on the home page; the link works once signed in.
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    page.goto(f"{url}/approvals?request={request_id}")
    expect(page.get_by_text("Why you may sign")).to_be_visible()
    expect(page.get_by_text(f"sign-in younger than {REAUTH_MINUTES} minutes")).to_be_visible()
    expect(page.get_by_role("button", name="Approve")).to_have_count(0)

    idp.auth_lag_s = 0  # "Sign in again" is a real authentication at the provider
    page.get_by_role("button", name="Sign in again").click()
    page.wait_for_url(f"{idp.issuer}/authorize?*")
    page.get_by_role("button", name=f"Sign in as {ERIN.email}").click()
    page.wait_for_url(f"{url}/**")
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    page.goto(f"{url}/approvals?request={request_id}")
    expect(page.get_by_text("Why you may sign")).to_be_visible()
    expect(page.get_by_role("button", name="Sign in again")).to_have_count(0)
    expect(page.get_by_role("textbox", name="Password")).to_have_count(0)
    page.get_by_label("Comment", exact=True).fill("checked after a fresh sign-in")
    page.get_by_role("button", name="Approve").click()
    expect(page.get_by_text(re.compile(r"approve recorded \(1 of \d approvals\)"))).to_be_visible()

    facade = _facade(env)
    try:
        votes = facade.get_request("admin", request_id).votes
        with facade.store.unit_of_work(read_only=True) as uow:
            events = uow.audit.search(actor=ERIN.email, actions=("vote_recorded",))
    finally:
        facade.dispose()
    assert [(v.approver, v.reauth_method) for v in votes] == [(ERIN.email, "oidc-recent-login")]
    assert [e.object_id for e in events] == [request_id]
    assert json.loads(events[0].payload)["reauth_method"] == "oidc-recent-login"


@pytest.fixture(scope="module")
def served_refusing(
    idp: OidcProvider, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, dict[str, str]]]:
    """The app over an empty store; unknown identities are refused."""
    require_chromium()
    root = tmp_path_factory.mktemp("oidc-refuse")
    env = build_governance_db(root, [("root", "admin", "root-pass-123")])
    env = {**os.environ, **env, **oidc_env(root, idp, unknown="refuse")}
    with serve_app(env, root, timeout_s=90) as url:
        idp.register(f"{url}/oauth2callback")
        yield url, env


def test_an_unknown_identity_is_refused_when_the_settings_say_so(
    served_refusing: tuple[str, dict[str, str]], idp: OidcProvider, page: Page
) -> None:
    url, env = served_refusing
    idp.auto_approve = UMA.sub  # the provider approves at once, as one with a session would
    page.goto(url)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{url}/**")
    expect(page.get_by_text("Your identity has no Countersign account.")).to_be_visible()
    assert idp.id_tokens[-1]["email"] == UMA.email
    expect(page.get_by_text("Signed in as")).to_have_count(0)
    expect(page.get_by_test_id("stSidebarNav")).to_have_count(0)
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("button", name="Log in")).to_be_visible()
    facade = _facade(env)
    try:
        assert [u.name for u in facade.list_users("root")] == ["root"]  # nobody was admitted
    finally:
        facade.dispose()
