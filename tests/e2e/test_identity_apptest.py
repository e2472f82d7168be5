"""The sign-in gate and the page guards in Streamlit's AppTest, over a real governance database."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.e2e.identity_env import ACCOUNTS, ROOT, build_governance_db, cli, identity_env
from tests.markdown_text import shown

MAIN = str(ROOT / "app" / "main.py")
ADMIN_PAGE = str(ROOT / "pages" / "admin.py")
TIMEOUT = 90  # the first page behind the gate imports MLflow
PASSWORDS = {name: password for name, _, password in ACCOUNTS}


@pytest.fixture(scope="module")
def gov_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return build_governance_db(tmp_path_factory.mktemp("identity-apptest"))


@pytest.fixture
def app_env(gov_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """The module's database in this process's environment, with fresh Streamlit caches."""
    yield from _use(gov_env, monkeypatch)


def _use(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    import app.deps as deps

    for key, value in env.items():
        monkeypatch.setenv(key, value)
    deps.clear_caches()
    yield env
    deps.clear_caches()


def start() -> AppTest:
    at = AppTest.from_file(MAIN, default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, at.exception
    return at


def sign_in(at: AppTest, username: str, password: str) -> AppTest:
    _field(at, "Username").input(username)
    _field(at, "Password").input(password)
    _button(at, "Log in").click()
    at.run()
    assert not at.exception, at.exception
    return at


def _field(at: AppTest, label: str):  # type: ignore[no-untyped-def]
    return next(w for w in at.text_input if w.label == label)


def _button(at: AppTest, label: str):  # type: ignore[no-untyped-def]
    return next(b for b in at.button if b.label == label)


def _labels(at: AppTest) -> list[str]:
    return [b.label for b in at.button]


def _errors(at: AppTest) -> list[str]:
    return [e.value for e in at.error]


def test_the_gate_shows_only_the_sign_in_form(app_env: dict[str, str]) -> None:
    at = start()
    assert [w.label for w in at.text_input] == ["Username", "Password"]
    assert _labels(at) == ["Log in"]
    assert "Log out" not in _labels(at)
    assert [t.value for t in at.title] == ["Countersign"]
    assert not at.table  # no demo users outside demo mode


def test_an_unknown_user_and_a_wrong_password_get_the_same_message(
    app_env: dict[str, str],
) -> None:
    wrong = _errors(sign_in(start(), "erin", "not-her-password"))
    unknown = _errors(sign_in(start(), "nobody-here", "not-her-password"))
    assert wrong == unknown
    assert len(wrong) == 1


def test_a_correct_password_opens_the_app_and_log_out_closes_it(
    app_env: dict[str, str],
) -> None:
    at = sign_in(start(), "vic", PASSWORDS["vic"])
    assert "Log out" in _labels(at)
    assert "Username" not in [w.label for w in at.text_input]
    assert any("vic" in c.value for c in at.sidebar.caption)
    _button(at, "Log out").click()
    at.run()
    assert [w.label for w in at.text_input] == ["Username", "Password"]
    assert "You are signed out." in [shown(i.value) for i in at.info]


def test_the_account_locks_after_repeated_failures(app_env: dict[str, str]) -> None:
    at = start()
    for _ in range(3):
        sign_in(at, "lou", "wrong-password")
    assert any("locked for 15 minutes" in w.value for w in at.warning)
    sign_in(at, "lou", PASSWORDS["lou"])  # the right password no longer opens it
    assert "Log out" not in _labels(at)
    assert _errors(at)


def test_a_viewer_opening_the_admin_page_is_told_it_needs_the_admin_role(
    app_env: dict[str, str],
) -> None:
    at = sign_in(start(), "vic", PASSWORDS["vic"])
    at.switch_page("../pages/admin.py")
    at.run()
    assert "You need the admin role to open this page." in _errors(at)
    assert not [t for t in at.title if t.value == "Admin"]


def test_a_page_run_without_the_gate_asks_to_sign_in(app_env: dict[str, str]) -> None:
    at = AppTest.from_file(ADMIN_PAGE, default_timeout=TIMEOUT)
    at.run()
    assert [i.value for i in at.info] == ["Please sign in to use Countersign."]
    assert not at.title


def _age_sessions(env: dict[str, str], user: str, **ends: timedelta) -> None:
    """Move the ends of `user`'s sessions into the past, as time would (idle or absolute)."""
    from sqlalchemy import update

    from governance.db import make_engine
    from governance.operational_rows import BrowserSessionRow
    from governance.orm import table_of

    table = table_of(BrowserSessionRow)
    now = datetime.now(UTC)
    engine = make_engine(env["COUNTERSIGN_DB_URL"])
    try:
        with engine.begin() as conn:
            conn.execute(
                update(table)
                .where(table.c.user_name == user)
                .values({column: now - ago for column, ago in ends.items()})
            )
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("column", "message"),
    [("idle_expires_at", "without activity"), ("expires_at", "maximum length")],
)
def test_an_idle_or_too_old_session_ends_at_the_next_click(
    app_env: dict[str, str], column: str, message: str
) -> None:
    at = sign_in(start(), "vic", PASSWORDS["vic"])
    assert "Log out" in _labels(at)
    _age_sessions(app_env, "vic", **{column: timedelta(seconds=1)})
    at.run()
    assert [w.label for w in at.text_input] == ["Username", "Password"]
    assert any(message in i.value for i in at.info), [i.value for i in at.info]


def test_an_admin_adds_a_user_who_can_then_sign_in(app_env: dict[str, str]) -> None:
    at = sign_in(start(), "root", PASSWORDS["root"])
    at.switch_page("../pages/admin.py")
    at.run()
    assert not _errors(at), _errors(at)
    _field(at, "User name").input("nina")
    _field(at, "Initial password").input("nina-pass-123")
    next(m for m in at.multiselect if m.label == "Roles").set_value(["auditor"])
    _button(at, "Add user").click()
    at.run()
    assert any("nina" in s.value for s in at.success)
    listed = cli(app_env, "users", "list", "--json").stdout
    assert "nina" in listed
    assert "auditor" in listed


def _admin_page() -> AppTest:
    at = sign_in(start(), "root", PASSWORDS["root"])
    at.switch_page("../pages/admin.py")
    at.run()
    assert not _errors(at), _errors(at)
    return at


def _pick(at: AppTest, label: str, value: str) -> AppTest:
    next(s for s in at.selectbox if s.label == label).set_value(value)
    at.run()
    assert not at.exception, at.exception
    return at


def _roles_of(env: dict[str, str], name: str) -> tuple[str, bool]:
    listed = json.loads(cli(env, "users", "list", "--json").stdout)["users"]
    user = next(u for u in listed if u["name"] == name)
    return ", ".join(user["roles"]), bool(user["disabled"])


def _audited(action: str, name: str) -> list[dict[str, object]]:
    """What the audit log holds for `action` on user `name` by root, newest first."""
    import app.deps as deps

    found = deps.audit_events("root", who="root", action=action)
    return [json.loads(e.payload) for e in found if e.object_id == name]


def test_an_admin_changes_the_roles_of_a_user_and_the_change_is_audited(
    app_env: dict[str, str],
) -> None:
    cli(
        app_env,
        "users",
        "add",
        "rolf",
        "--role",
        "viewer",
        "--password-stdin",
        stdin="rolf-pass-1\n",
    )
    at = _pick(_admin_page(), "User whose roles to change", "rolf")
    roles = next(m for m in at.multiselect if m.label == "New roles")
    assert roles.value == ["viewer"]  # starts from the user's current roles
    roles.set_value(["viewer", "approver"])
    _button(at, "Save roles").click()
    at.run()
    assert [s.value for s in at.success] == ["Roles of rolf set to viewer, approver."]
    assert _roles_of(app_env, "rolf") == ("viewer, approver", False)
    assert _audited("user_roles_changed", "rolf") == [
        {"before": ["viewer"], "after": ["viewer", "approver"]}
    ]


def test_an_admin_removing_their_own_admin_role_is_refused_and_the_refusal_audited(
    app_env: dict[str, str],
) -> None:
    at = _pick(_admin_page(), "User whose roles to change", "root")
    next(m for m in at.multiselect if m.label == "New roles").set_value(["viewer"])
    _button(at, "Save roles").click()
    at.run()
    assert _errors(at) == ["you cannot remove your own admin role"]
    assert not at.success
    assert _roles_of(app_env, "root") == ("admin", False)
    refused = _audited("action_refused", "root")[0]
    assert (refused["attempted"], refused["error"]) == ("set_roles", "NotAllowed")


def test_an_admin_enables_a_disabled_user_who_can_then_sign_in(app_env: dict[str, str]) -> None:
    cli(
        app_env,
        "users",
        "add",
        "dora",
        "--role",
        "viewer",
        "--password-stdin",
        stdin="dora-pass-1\n",
    )
    cli(app_env, "users", "disable", "dora")
    at = _admin_page()
    picker = next(s for s in at.selectbox if s.label == "User to enable")
    assert "dora" in picker.options
    assert "vic" not in picker.options  # only disabled users are offered
    picker.set_value("dora")
    _button(at, "Enable user").click()
    at.run()
    assert [s.value for s in at.success] == ["User dora enabled."]
    assert _roles_of(app_env, "dora") == ("viewer", False)
    assert _audited("user_enabled", "dora") == [{}]
    assert "Log out" in _labels(sign_in(start(), "dora", "dora-pass-1"))


def test_without_an_admin_the_app_explains_how_to_create_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = build_governance_db(tmp_path, accounts=())
    for _ in _use(env, monkeypatch):
        at = start()
        assert not at.text_input
        assert any("users add NAME --role admin --password-stdin" in c.value for c in at.code)


def test_demo_mode_lists_the_demo_users_with_their_passwords(
    gov_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for _ in _use({**gov_env, "COUNTERSIGN_DEMO": "1"}, monkeypatch):
        at = start()
        table = at.table[0].value
        assert set(table["Username"]) == {"alice", "erin", "frank", "admin", "audrey"}
        assert "alice-demo-pass" in set(table["Password"].map(shown))
        finds = dict(zip(table["Username"], table["What you will find"].map(shown), strict=True))
        assert finds["erin"].startswith("Approvals: one request waiting for your signature")
        assert "six requests" in finds["alice"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"COUNTERSIGN_AUTH": "header"}, "Header sign-in is disabled"),
        (
            {"COUNTERSIGN_AUTH": "header", "COUNTERSIGN_HEADER_AUTH_ENABLED": "1"},
            "did not send the X-Forwarded-User header",
        ),
        ({"COUNTERSIGN_AUTH": "oidc"}, "no [auth] section"),
    ],
    ids=["header-not-enabled", "header-missing", "oidc-not-configured"],
)
def test_other_modes_refuse_to_open_without_their_set_up(
    gov_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, extra: dict[str, str], message: str
) -> None:
    for _ in _use({**gov_env, **extra}, monkeypatch):
        at = start()
        assert any(message in shown(e) for e in _errors(at)), _errors(at)
        assert not at.text_input
        assert "Log out" not in _labels(at)


def oidc_start(claims: dict[str, object]) -> AppTest:
    """The app's first run for a browser that signed in at the provider (`st.user`)."""
    at = AppTest.from_file(MAIN, default_timeout=TIMEOUT)
    at.user = {"is_logged_in": True, "iat": int(time.time()), **claims}
    at.run()
    assert not at.exception, at.exception
    return at


def test_an_unknown_oidc_identity_gets_a_viewer_account_and_its_activity_feed(
    gov_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for env in _use({**gov_env, "COUNTERSIGN_AUTH": "oidc"}, monkeypatch):
        claims = {"email": "newcomer@example.org", "sub": "s-new", "name": "New Comer"}
        claims["email_verified"] = True  # else the email names nobody (only the subject)
        at = oidc_start(claims)
        assert any("New Comer" in c.value and "viewer" in c.value for c in at.sidebar.caption)
        assert [t.value for t in at.title] == ["Overview"]
        # The ledger panels read as the signed-in user, which needs an account.
        assert not [w.value for w in at.warning if "unavailable" in w.value]
        listed = cli(env, "users", "list").stdout
        assert re.search(r"newcomer@example\.org\s.*viewer", listed), listed


def test_a_database_without_its_schema_gets_a_message_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for _ in _use(identity_env(tmp_path), monkeypatch):
        at = start()
        assert any("db upgrade" in e for e in _errors(at)), _errors(at)
        assert not at.text_input


def test_after_an_admin_reset_the_person_is_signed_out_and_must_choose_a_new_password(
    app_env: dict[str, str],
) -> None:
    cli(
        app_env,
        "users",
        "add",
        "rhea",
        "--role",
        "viewer",
        "--password-stdin",
        stdin="rhea-pass-1\n",
    )
    signed_in = sign_in(start(), "rhea", "rhea-pass-1")
    assert "Log out" in _labels(signed_in)
    admin = sign_in(start(), "root", PASSWORDS["root"])
    admin.switch_page(ADMIN_PAGE).run()
    reset_form = next(s for s in admin.selectbox if s.label == "User" and "rhea" in s.options)
    reset_form.select("rhea")
    _field(admin, "New password").input("set-by-root-1")
    _button(admin, "Reset password").click()
    admin.run()
    assert any("must choose a new one" in s.value for s in admin.success)
    # The open session ends at its next interaction.
    signed_in.run()
    assert "Log out" not in _labels(signed_in)
    assert any("reset your password" in i.value for i in signed_in.info)
    # The password the admin set opens only the form to choose a new one.
    at = sign_in(start(), "rhea", "set-by-root-1")
    assert "Log out" not in _labels(at)
    assert "Change password and log in" in _labels(at)
    _field(at, "Password the administrator gave you").input("set-by-root-1")
    _field(at, "New password").input("rhea-own-pass-2")
    _field(at, "New password again").input("rhea-own-pass-2")
    _button(at, "Change password and log in").click()
    at.run()
    assert "Log out" in _labels(at)
    assert "Log out" in _labels(sign_in(start(), "rhea", "rhea-own-pass-2"))


def test_an_admin_sees_the_signed_in_browsers_and_ends_one(app_env: dict[str, str]) -> None:
    vic = sign_in(start(), "vic", PASSWORDS["vic"])
    vic_session = vic.session_state["countersign_user"].session_id
    admin = sign_in(start(), "root", PASSWORDS["root"])
    admin.switch_page(ADMIN_PAGE).run()
    assert not _errors(admin), _errors(admin)
    listed = next(df.value for df in admin.dataframe if "user agent" in df.value.columns)
    assert vic_session in set(listed["session"])
    assert {"user", "signed in (UTC)", "last seen (UTC)"} <= set(listed.columns)
    picker = next(s for s in admin.selectbox if s.label == "Session to end")
    picker.select(vic_session)
    _button(admin, "End session").click()
    admin.run()
    assert any(vic_session in s.value for s in admin.success)
    vic.run()
    assert "Log out" not in _labels(vic)
    assert any("An administrator ended your session" in i.value for i in vic.info)
    assert "Log out" in _labels(admin.run())  # the admin's own session goes on
