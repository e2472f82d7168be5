"""Sign-in modes, session expiry and re-authentication at signing, on an in-memory directory."""

from __future__ import annotations

import ast
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from app.accounts import SessionInfo
from app.demo_users import DEMO_USERS
from app.identity import (
    REAUTH_OIDC,
    REAUTH_PASSWORD,
    Account,
    IdentityRefused,
    IdentityService,
    ReauthRequired,
    SessionExpired,
    claim_time,
    header_value,
)
from app.settings import Settings
from app.ui.navigation import PAGES as PAGE_SPECS, PageSpec, visible_pages
from governance.domain import (
    AUTHORISATION_MATRIX,
    ROLES,
    Permission,
    is_allowed,
    validate_user_name,
)
from governance.errors import AuthenticationFailed, SessionEnded

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


@dataclass
class Clock:
    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now


@dataclass
class FakeDirectory:
    """Accounts and sessions in memory. The session rules themselves (timeouts, revocation)
    are the service's, tested in test_sessions.py; here a session just ends when told to."""

    accounts: dict[str, tuple[Account, str]] = field(default_factory=dict)
    sign_ins: list[tuple[str, str]] = field(default_factory=list)
    sessions: dict[str, tuple[str, datetime]] = field(default_factory=dict)  # id: (user, since)
    ended: dict[str, str] = field(default_factory=dict)  # id: reason
    clock: Clock = field(default_factory=lambda: Clock())

    def add(self, name: str, role: str, password: str = "pw-123456", active: bool = True) -> None:  # noqa: S107
        self.accounts[name] = (Account(name, (role,), active), password)

    def start_session(
        self, username: str, password: str, user_agent: str
    ) -> tuple[SessionInfo, str]:
        entry = self.accounts.get(username)
        if entry is None or entry[1] != password or not entry[0].active:
            raise AuthenticationFailed()
        session_id = f"s{len(self.sessions) + 1}"
        self.sessions[session_id] = (username, self.clock.now)
        return self.check_session(session_id), f"grant-{session_id}"

    def check_session(self, session_id: str) -> SessionInfo:
        if session_id in self.ended:
            raise SessionEnded(self.ended[session_id])
        user, since = self.sessions[session_id]
        account = self.accounts[user][0]
        if not account.active:
            raise SessionEnded("user_disabled")
        return SessionInfo(session_id, account, since, self.clock.now)

    def resume_session(self, secret: str) -> SessionInfo:
        if not secret.startswith("cookie-"):
            raise SessionEnded("unknown")
        return self.check_session(secret.removeprefix("cookie-"))

    def end_session(self, actor: str, session_id: str) -> None:
        self.ended[session_id] = "logout" if actor == self.sessions[session_id][0] else "admin"

    def change_password(self, username: str, current: str, new: str) -> Account:
        entry = self.accounts[username]
        if entry[1] != current:
            raise AuthenticationFailed()
        self.accounts[username] = (entry[0], new)
        return entry[0]

    def find(self, username: str) -> Account | None:
        entry = self.accounts.get(username)
        return entry[0] if entry else None

    def has_active_admin(self) -> bool:
        return any("admin" in a.roles and a.active for a, _ in self.accounts.values())

    def record_sign_in(self, username: str, method: str) -> None:
        self.sign_ins.append((username, method))

    def admit_viewer(self, username: str, display_name: str) -> Account:
        validate_user_name(username)
        if username not in self.accounts:
            self.accounts[username] = (Account(username, ("viewer",), True, display_name), "")
        return self.accounts[username][0]


def make_settings(**overrides: object) -> Settings:
    base = Settings.from_env({"COUNTERSIGN_DATA_DIR": "/tmp/cs-identity"}, Path("/nonexistent"))
    return replace(base, **overrides)  # type: ignore[arg-type]


def make_service(**overrides: object) -> tuple[IdentityService, FakeDirectory, Clock]:
    clock = Clock()
    directory = FakeDirectory(clock=clock)
    directory.add("erin", "approver")
    directory.add("vic", "viewer")
    directory.add("gone", "approver", active=False)
    directory.add("ann@example.org", "requester")
    service = IdentityService(make_settings(**overrides), directory, lambda: DEMO_USERS, clock)
    return service, directory, clock


def test_a_correct_password_signs_in_with_the_account_role_and_a_session() -> None:
    service, _, _ = make_service()
    principal, grant = service.sign_in_password(" erin ", "pw-123456")
    assert (principal.username, principal.roles, principal.method) == (
        "erin",
        ("approver",),
        "local",
    )
    assert principal.authenticated_at == T0
    assert (principal.session_id, grant) == ("s1", "grant-s1")


@pytest.mark.parametrize(("user", "password"), [("erin", "wrong"), ("nobody", "pw-123456")])
def test_an_unknown_user_and_a_wrong_password_get_the_same_message(
    user: str, password: str
) -> None:
    service, _, _ = make_service()
    with pytest.raises(AuthenticationFailed) as caught:
        service.sign_in_password(user, password)
    assert str(caught.value) == str(AuthenticationFailed())


def _header_principal(**overrides: object) -> tuple[IdentityService, FakeDirectory, Clock, Any]:
    service, directory, clock = make_service(
        auth_mode="header", header_auth_enabled=True, **overrides
    )
    return service, directory, clock, service.from_headers({"X-Forwarded-User": "erin"})


@pytest.mark.parametrize(
    ("idle_minutes", "expired"), [(0, False), (29, False), (30, False), (31, True), (600, True)]
)
def test_a_proxy_session_expires_only_after_the_inactivity_timeout(
    idle_minutes: int, expired: bool
) -> None:
    service, _, clock, principal = _header_principal(session_timeout_minutes=30)
    clock.now = T0 + timedelta(minutes=idle_minutes)
    assert service.is_expired(principal) is expired
    if expired:
        with pytest.raises(SessionExpired, match="30 minutes"):
            service.touch(principal)
    else:
        assert service.touch(principal).last_seen == clock.now


def test_activity_keeps_a_proxy_session_alive_beyond_the_timeout() -> None:
    service, _, clock, principal = _header_principal(session_timeout_minutes=30)
    for _ in range(4):
        clock.now += timedelta(minutes=20)
        principal = service.touch(principal)
    assert clock.now - principal.authenticated_at == timedelta(minutes=80)


def test_a_disabled_account_is_signed_out_on_its_next_interaction() -> None:
    service, directory, _ = make_service()
    principal, _ = service.sign_in_password("erin", "pw-123456")
    directory.add("erin", "approver", active=False)
    with pytest.raises(SessionExpired, match="disabled"):
        service.touch(principal)
    _, directory, _, behind_proxy = _header_principal()
    directory.add("erin", "approver", active=False)
    with pytest.raises(IdentityRefused, match="disabled"):
        service.touch(behind_proxy)


def test_a_role_change_applies_on_the_next_interaction_behind_the_proxy() -> None:
    service, directory, _, principal = _header_principal()
    directory.add("erin", "auditor")
    assert service.touch(principal).roles == ("auditor",)


@pytest.mark.parametrize(
    ("reason", "message"),
    [
        ("logout", "You are signed out."),
        ("admin", "An administrator ended your session. Please sign in again."),
        ("idle", "Your session expired after 30 minutes without activity. Please sign in"),
        ("absolute", "Your session reached its maximum length (720 minutes). Please sign in"),
        ("password_reset", "An administrator reset your password: sign in and choose a new one"),
        ("roles_changed", "Your roles changed. Please sign in again."),
        ("unknown", "Your session has ended. Please sign in again."),
    ],
)
def test_a_session_that_ended_signs_the_tab_out_saying_why(reason: str, message: str) -> None:
    service, directory, _ = make_service(session_timeout_minutes=30)
    principal, _ = service.sign_in_password("erin", "pw-123456")
    assert service.touch(principal).session_id == principal.session_id
    directory.ended[principal.session_id] = reason
    with pytest.raises(SessionExpired) as caught:
        service.touch(principal)
    assert str(caught.value).startswith(message)


def test_a_cookie_resumes_its_session_and_logging_out_ends_it() -> None:
    service, directory, clock = make_service()
    principal, _ = service.sign_in_password("erin", "pw-123456")
    clock.now += timedelta(minutes=5)
    resumed = service.resume(f"cookie-{principal.session_id}")
    assert (resumed.username, resumed.session_id) == ("erin", principal.session_id)
    assert (resumed.authenticated_at, resumed.last_seen) == (T0, clock.now)
    service.sign_out(resumed)
    assert directory.ended == {principal.session_id: "logout"}
    with pytest.raises(SessionExpired, match="signed out"):
        service.resume(f"cookie-{principal.session_id}")
    with pytest.raises(SessionExpired, match="has ended"):
        service.resume("made-up")


@pytest.mark.parametrize(
    ("mode", "enabled"), [("header", False), ("local", True), ("oidc", True), ("local", False)]
)
def test_header_sign_in_is_refused_unless_the_mode_is_explicitly_enabled(
    mode: str, enabled: bool
) -> None:
    service, _, _ = make_service(auth_mode=mode, header_auth_enabled=enabled)
    with pytest.raises(IdentityRefused, match="HEADER_AUTH_ENABLED"):
        service.from_headers({"X-Forwarded-User": "erin"})


def test_header_sign_in_trusts_the_configured_header_case_insensitively() -> None:
    service, directory, _ = make_service(
        auth_mode="header", header_auth_enabled=True, auth_header_name="X-Auth-User"
    )
    principal = service.from_headers({"x-auth-user": "erin", "X-Forwarded-User": "vic"})
    assert (principal.username, principal.roles, principal.method) == (
        "erin",
        ("approver",),
        "header",
    )
    assert directory.sign_ins == [("erin", "header")]


@pytest.mark.parametrize(
    "headers", [{}, {"X-Forwarded-User": "nobody"}, {"x-forwarded-user": "gone"}]
)
def test_header_sign_in_refuses_a_missing_unknown_or_disabled_user(
    headers: dict[str, str],
) -> None:
    service, _, _ = make_service(auth_mode="header", header_auth_enabled=True)
    with pytest.raises(IdentityRefused):
        service.from_headers(headers)


def test_header_value_takes_the_first_of_a_list() -> None:
    assert header_value({"X-Forwarded-User": "erin, mallory"}, "x-forwarded-user") == "erin"


def oidc_claims(**extra: object) -> dict[str, object]:
    claims: dict[str, object] = {
        "is_logged_in": True,
        "sub": "1234",
        "iat": int((T0 - timedelta(minutes=2)).timestamp()),
    }
    claims.update(extra)
    return claims


def test_an_oidc_email_maps_to_the_account_of_that_name() -> None:
    service, _, _ = make_service(auth_mode="oidc")
    principal = service.from_oidc(
        oidc_claims(email="ann@example.org", name="Ann", email_verified=True)
    )
    assert (principal.username, principal.roles, principal.method) == (
        "ann@example.org",
        ("requester",),
        "oidc",
    )
    assert principal.display_name == "Ann"
    assert principal.authenticated_at == T0 - timedelta(minutes=2)


def test_an_oidc_email_matches_its_account_whatever_the_case_and_the_sign_in_is_recorded() -> None:
    service, directory, _ = make_service(auth_mode="oidc")
    principal = service.from_oidc(oidc_claims(email="Ann@Example.org", email_verified=True))
    assert (principal.username, principal.roles) == ("ann@example.org", ("requester",))
    assert directory.sign_ins == [("ann@example.org", "oidc")]


def test_an_unverified_oidc_email_names_nobody_and_only_the_subject_counts() -> None:
    service, directory, _ = make_service(auth_mode="oidc", oidc_unknown_role="refuse")
    # ann@example.org is a requester; an unverified claim of that address must not be her.
    with pytest.raises(IdentityRefused, match="no Countersign account"):
        service.from_oidc(oidc_claims(email="ann@example.org", email_verified=False))
    assert directory.sign_ins == []
    directory.add("1234", "viewer")
    principal = service.from_oidc(oidc_claims(email="ann@example.org", email_verified=False))
    assert (principal.username, principal.roles) == ("1234", ("viewer",))


@pytest.mark.parametrize("verified", [None, "yes", 1, "false", False])
def test_an_email_the_provider_does_not_mark_verified_names_nobody_by_default(
    verified: object,
) -> None:
    service, directory, _ = make_service(auth_mode="oidc", oidc_unknown_role="refuse")
    claims = oidc_claims(email="ann@example.org")
    if verified is not None:
        claims["email_verified"] = verified
    with pytest.raises(IdentityRefused, match="no Countersign account"):
        service.from_oidc(claims)  # ann@example.org is a requester: it must not be her
    assert directory.sign_ins == []


@pytest.mark.parametrize(("verified", "trusted"), [(None, True), (False, False), ("true", True)])
def test_a_setting_trusts_a_provider_that_omits_the_claim_but_never_an_explicit_false(
    verified: object, trusted: bool
) -> None:
    service, _directory, _ = make_service(
        auth_mode="oidc", oidc_unknown_role="refuse", oidc_email_verified_required=False
    )
    claims = oidc_claims(email="ann@example.org")
    if verified is not None:
        claims["email_verified"] = verified
    if trusted:
        assert service.from_oidc(claims).username == "ann@example.org"
    else:
        with pytest.raises(IdentityRefused):
            service.from_oidc(claims)


def test_the_email_verified_setting_is_read_from_the_environment() -> None:
    def read(value: str) -> bool:
        env = {"COUNTERSIGN_OIDC_EMAIL_VERIFIED_REQUIRED": value}
        return Settings.from_env(env, Path("/nonexistent")).oidc_email_verified_required

    assert (read(""), read("1"), read("0"), read("false")) == (True, True, False, False)


def test_an_oidc_subject_maps_when_there_is_no_email() -> None:
    service, directory, _ = make_service(auth_mode="oidc")
    directory.add("1234", "auditor")
    assert service.from_oidc(oidc_claims()).roles == ("auditor",)


def test_an_unknown_oidc_identity_gets_a_viewer_account_when_settings_say_so() -> None:
    service, directory, _ = make_service(auth_mode="oidc", oidc_unknown_role="viewer")
    principal = service.from_oidc(
        oidc_claims(email="stranger@example.org", name="Stranger", email_verified=True)
    )
    assert (principal.username, principal.roles) == ("stranger@example.org", ("viewer",))
    assert directory.find("stranger@example.org") == Account(
        "stranger@example.org", ("viewer",), True, "Stranger"
    )
    # An ordinary account: a role granted by an admin applies on the next interaction...
    directory.add("stranger@example.org", "approver")
    assert service.touch(principal).roles == ("approver",)
    # ...and a disabled one is refused, at once and at the next sign-in.
    directory.add("stranger@example.org", "viewer", active=False)
    with pytest.raises(IdentityRefused, match="disabled"):
        service.touch(principal)
    with pytest.raises(IdentityRefused, match="disabled"):
        service.from_oidc(oidc_claims(email="stranger@example.org", email_verified=True))


def test_an_unknown_identity_that_cannot_be_a_user_name_is_refused_clearly() -> None:
    service, directory, _ = make_service(auth_mode="oidc", oidc_unknown_role="viewer")
    with pytest.raises(IdentityRefused, match="cannot be a Countersign user name"):
        service.from_oidc(oidc_claims(sub="auth0|12345"))
    assert directory.find("auth0|12345") is None


def test_an_unknown_oidc_identity_is_refused_when_settings_say_so() -> None:
    service, _, _ = make_service(auth_mode="oidc", oidc_unknown_role="refuse")
    with pytest.raises(IdentityRefused, match="no Countersign account"):
        service.from_oidc(oidc_claims(email="stranger@example.org"))


def test_a_disabled_oidc_account_is_refused() -> None:
    service, _, _ = make_service(auth_mode="oidc")
    with pytest.raises(IdentityRefused, match="disabled"):
        service.from_oidc(oidc_claims(email="gone", email_verified=True))


def test_oidc_claims_are_refused_outside_oidc_mode() -> None:
    service, _, _ = make_service(auth_mode="local")
    with pytest.raises(IdentityRefused):
        service.from_oidc(oidc_claims(email="ann@example.org"))


@pytest.mark.parametrize(
    ("claims", "expected"),
    [
        ({"iat": 1_700_000_000}, datetime.fromtimestamp(1_700_000_000, UTC)),
        ({"iat": 1_700_000_000, "auth_time": 1_600_000_000}, datetime.fromtimestamp(1.6e9, UTC)),
        ({"auth_time": "1600000000"}, datetime.fromtimestamp(1.6e9, UTC)),
        ({"iat": True}, None),
        ({}, None),
    ],
)
def test_the_sign_in_time_prefers_auth_time_over_iat(
    claims: dict[str, object], expected: datetime | None
) -> None:
    assert claim_time(claims) == expected


@pytest.mark.parametrize(("age_minutes", "recent"), [(0, True), (5, True), (6, False), (90, False)])
def test_oidc_signing_needs_a_sign_in_younger_than_the_configured_minutes(
    age_minutes: int, recent: bool
) -> None:
    service, _, clock = make_service(auth_mode="oidc", oidc_reauth_minutes=5)
    principal = service.from_oidc(oidc_claims(email="ann@example.org", iat=int(T0.timestamp())))
    clock.now = T0 + timedelta(minutes=age_minutes)
    assert service.oidc_login_is_recent(principal) is recent
    if recent:
        assert service.signing_reauth_method(principal) == REAUTH_OIDC
    else:
        with pytest.raises(ReauthRequired, match="5 minutes"):
            service.signing_reauth_method(principal)


def test_the_signing_proof_carries_the_method_the_vote_records() -> None:
    service, _, clock = make_service(auth_mode="oidc", oidc_reauth_minutes=5)
    principal = service.from_oidc(oidc_claims(email="ann@example.org", iat=int(T0.timestamp())))
    assert service.signing_proof(principal, "ignored").method == "oidc-recent-login"
    assert service.signing_proof(principal).password is None
    clock.now = T0 + timedelta(minutes=10)
    with pytest.raises(ReauthRequired):
        service.signing_proof(principal)
    local, _, _ = make_service()
    proof = local.signing_proof(local.sign_in_password("erin", "pw-123456")[0], "pw-123456")
    assert (proof.method, proof.password) == ("password", "pw-123456")


@pytest.mark.parametrize("mode", ["local", "header"])
def test_local_and_header_users_re_enter_their_password_to_sign(mode: str) -> None:
    service, _, clock = make_service(auth_mode=mode, header_auth_enabled=True)
    principal = (
        service.sign_in_password("erin", "pw-123456")[0]
        if mode == "local"
        else service.from_headers({"X-Forwarded-User": "erin"})
    )
    clock.now = T0 + timedelta(hours=5)
    assert service.signing_reauth_method(principal) == REAUTH_PASSWORD


@pytest.mark.parametrize(
    ("mode", "has_admin", "needed"),
    [("local", False, True), ("local", True, False), ("oidc", False, False)],
)
def test_the_first_run_asks_for_an_admin_only_in_local_mode_without_one(
    mode: str, has_admin: bool, needed: bool
) -> None:
    service, directory, _ = make_service(auth_mode=mode)
    if has_admin:
        directory.add("root", "admin")
    assert service.needs_first_admin() is needed


def test_a_disabled_admin_does_not_count_as_the_first_admin() -> None:
    service, directory, _ = make_service()
    directory.add("root", "admin", active=False)
    assert service.needs_first_admin() is True


@pytest.mark.parametrize(("demo", "shown"), [(True, True), (False, False)])
def test_demo_accounts_are_listed_only_in_demo_mode(demo: bool, shown: bool) -> None:
    service, _, _ = make_service(demo_mode=demo)
    assert (service.demo_accounts() == DEMO_USERS) is shown
    assert bool(service.demo_accounts()) is shown


def test_demo_users_cover_every_role_and_approvers_are_not_run_authors() -> None:
    roles = sorted(u.role for u in DEMO_USERS)
    assert roles == ["admin", "approver", "approver", "auditor", "requester"]
    approvers = {u.username for u in DEMO_USERS if u.role == "approver"}
    assert approvers.isdisjoint({"alice", "bob", "carol"})


@pytest.mark.parametrize(("failures", "shown"), [(0, False), (2, False), (3, True), (9, True)])
def test_the_lockout_notice_appears_from_the_configured_number_of_failures(
    failures: int, shown: bool
) -> None:
    service, _, _ = make_service(lockout_attempts=3, lockout_minutes=15)
    notice = service.lockout_notice(failures)
    assert (notice is not None) is shown
    if notice:
        assert "locked for 15 minutes" in notice


@pytest.mark.parametrize(
    ("failures", "expected"),
    [
        (0, None),
        (1, "2 attempts left before this account is locked for 15 minutes."),
        (2, "1 attempt left before this account is locked for 15 minutes."),
        (3, None),
    ],
)
def test_the_attempts_left_are_counted_down_until_the_lockout(
    failures: int, expected: str | None
) -> None:
    service, _, _ = make_service(lockout_attempts=3, lockout_minutes=15)
    assert service.attempts_left_notice(failures) == expected


# --- the authorisation matrix, per page and per action -------------------------------------

EXPECTED_ACTIONS = {
    # permission: roles that hold it (viewer, requester, approver, admin, auditor)
    Permission.VIEW: {"viewer", "requester", "approver", "admin", "auditor"},
    Permission.REQUEST: {"requester", "admin"},
    Permission.SIGN: {"approver"},
    Permission.EXECUTE: {"requester", "approver", "admin"},
    Permission.BREAK_GLASS: {"admin"},
    Permission.ADMIN_USERS: {"admin"},
    Permission.READ_AUDIT: {"admin", "auditor"},
    Permission.EXPORT_AUDIT: {"admin", "auditor"},
    Permission.RECONCILE: {"admin", "auditor"},
    Permission.ENFORCE: {"admin"},
    Permission.MONITOR: {"requester", "approver", "admin"},
}
EXPECTED_PAGES = {
    "overview.py": Permission.VIEW,
    "experiments.py": Permission.VIEW,
    "compare_runs.py": Permission.VIEW,
    "models.py": Permission.VIEW,
    "compare_versions.py": Permission.VIEW,
    "drift.py": Permission.VIEW,
    "feature_importance.py": Permission.VIEW,
    "monitoring.py": Permission.VIEW,
    "promotions.py": Permission.REQUEST,
    "approvals.py": Permission.SIGN,
    "audit.py": Permission.READ_AUDIT,
    "admin.py": Permission.ADMIN_USERS,
}
PAGES_DIR = Path(__file__).resolve().parents[2] / "pages"


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("permission", list(Permission))
def test_each_role_holds_exactly_the_permissions_of_the_matrix(
    role: str, permission: Permission
) -> None:
    assert is_allowed((role,), permission) is (role in EXPECTED_ACTIONS[permission])


def _page_guard(path: Path) -> Permission | None:
    """The permission a page's module-level `guard.require(...)` asks for (None: no guard)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in tree.body:
        call = node.value if isinstance(node, (ast.Expr, ast.Assign)) else None
        if not isinstance(call, ast.Call) or not isinstance(call.func, ast.Attribute):
            continue
        if call.func.attr == "require" and ast.unparse(call.func.value) == "guard":
            if not call.args:
                return Permission.VIEW
            return Permission[ast.unparse(call.args[0]).removeprefix("Permission.")]
    return None


@pytest.mark.parametrize("path", sorted(PAGES_DIR.glob("*.py")), ids=lambda p: p.name)
def test_every_page_checks_its_permission_before_anything_else(path: Path) -> None:
    assert _page_guard(path) is EXPECTED_PAGES[path.name]


@pytest.mark.parametrize("spec", PAGE_SPECS, ids=lambda s: s.file)
def test_the_menu_roles_of_a_page_are_those_of_its_guard(spec: PageSpec) -> None:
    permission = EXPECTED_PAGES[spec.file]
    menu_roles = set(spec.roles) or set(ROLES)
    assert menu_roles == set(AUTHORISATION_MATRIX[permission])


@pytest.mark.parametrize("role", ROLES)
def test_the_menu_shows_a_role_exactly_the_pages_it_may_open(role: str) -> None:
    existing = [s for s in PAGE_SPECS if s.path.is_file()]
    shown = {s.file for s in visible_pages(roles=(role,), pages=existing)}
    assert shown == {s.file for s in existing if is_allowed((role,), EXPECTED_PAGES[s.file])}
