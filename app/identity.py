"""Who is signed in: the three sign-in modes, session expiry and re-authentication at signing.

Plain Python (no Streamlit): the UI hands in what it has (a typed user name and password, the
OIDC claims of `st.user`, the request headers of `st.context.headers`) and gets a `SignedInUser`
back, or a one-line refusal. Accounts, roles, passwords and lockout live in the governance
database and are reached only through the facade (`AccountDirectory` below), so every failed
sign-in and every lockout is audited there.

Modes (COUNTERSIGN_AUTH):
- `local`: user name and password checked against the argon2 hash in the governance database.
- `oidc`: Streamlit's `st.login` with an [auth] section in `.streamlit/secrets.toml`; the email
  (or else the subject) of the ID token names the account; unknown identities get a viewer
  account at their first sign-in or are refused, as `COUNTERSIGN_OIDC_UNKNOWN` says.
- `header`: a reverse proxy authenticates and passes the user name in a header. Only when
  COUNTERSIGN_HEADER_AUTH_ENABLED is set, and only safe behind a proxy that strips any copy of
  that header sent by the client (otherwise anyone can claim any name).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from app.accounts import Account, AccountDirectory, FacadeDirectory, SessionInfo
from app.entities import DemoAccount, SignedInUser
from app.errors import UserFacingError
from app.settings import Settings
from governance.errors import InvalidInput, SessionEnded
from governance.revocation import (
    BY_ADMIN,
    LOGOUT,
    PASSWORD_CHANGED,
    PASSWORD_RESET,
    ROLES_CHANGED,
    USER_DISABLED,
)

REAUTH_PASSWORD = "password"  # noqa: S105 - the name of a method, not a secret
REAUTH_OIDC = "oidc-recent-login"
VIEWER = "viewer"
ADMIN = "admin"
FIRST_ADMIN_COMMAND = "python -m app.cli users add NAME --role admin --password-stdin"


class IdentityRefused(UserFacingError):
    """The identity cannot be admitted (unknown, disabled, or the mode is not enabled)."""


class SessionExpired(UserFacingError):
    """The session was idle longer than the configured timeout."""


class ReauthRequired(UserFacingError):
    """Signing needs a fresh proof of identity (a password, or a recent OIDC sign-in)."""


def _utc_now() -> datetime:
    return datetime.now(UTC)


def claim_time(claims: Mapping[str, Any]) -> datetime | None:
    """When the identity provider last authenticated the person: `auth_time`, else `iat`."""
    for key in ("auth_time", "iat"):
        raw = claims.get(key)
        if isinstance(raw, bool):
            continue
        if isinstance(raw, (int, float)):
            return datetime.fromtimestamp(float(raw), UTC)
        if isinstance(raw, str) and raw.strip().isascii() and raw.strip().isdigit():
            return datetime.fromtimestamp(int(raw.strip()), UTC)
    return None


def email_is_verified(claims: Mapping[str, Any], *, claim_required: bool = True) -> bool:
    """Whether the provider vouches for the token's email.

    Only `email_verified: true` does by default: anyone could have typed an address at the
    provider, and a provider that omits the claim says nothing about it. With `claim_required`
    off (COUNTERSIGN_OIDC_EMAIL_VERIFIED_REQUIRED=0, for a provider that verifies every address
    but never sends the claim) a missing claim is trusted too; an explicit false never is.
    """
    verified = claims.get("email_verified")
    if verified is None:
        return not claim_required
    if isinstance(verified, str):
        return verified.strip().lower() == "true"
    return verified is True


def oidc_identity(claims: Mapping[str, Any], *, email_claim_required: bool = True) -> str:
    """The name an OIDC identity maps to: its verified email, else its subject; empty if neither.

    An email the provider does not mark as verified names nobody (see `email_is_verified`):
    only the subject is used then.
    """
    email = claims.get("email")
    verified = email_is_verified(claims, claim_required=email_claim_required)
    if verified and isinstance(email, str) and email.strip():
        return email.strip()
    sub = claims.get("sub")
    return sub.strip() if isinstance(sub, str) else ""


def header_value(headers: Mapping[str, str], name: str) -> str:
    """A request header by case-insensitive name; the first value if a proxy sent a list."""
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return str(value).split(",")[0].strip()
    return ""


@dataclass
class IdentityService:
    """Resolves and keeps the signed-in identity for one deployment (built once per process).

    Args:
        settings: Auth mode, timeouts and the OIDC/header options.
        directory: The accounts of the governance database (through the facade).
        demo_accounts_source: The demo users to list on the sign-in page in demo mode.
        clock: Returns the current UTC time; tests inject a fixed one.
    """

    settings: Settings
    directory: AccountDirectory
    demo_accounts_source: Callable[[], tuple[DemoAccount, ...]] = tuple
    clock: Callable[[], datetime] = _utc_now

    @property
    def mode(self) -> str:
        return self.settings.auth_mode

    # -- sign-in ----------------------------------------------------------------------------

    def sign_in_password(
        self, username: str, password: str, user_agent: str = ""
    ) -> tuple[SignedInUser, str]:
        """Local sign-in: a server-side browser session for this person.

        Returns:
            The signed-in user (bound to the session) and the session's one-time grant, with
            which the page collects the session cookie (`app.web.session_cookie`).

        Raises:
            AuthenticationFailed: Unknown user or wrong password (the same text for both).
            PasswordChangeRequired: The password is right but an admin set it.
        """
        session, grant = self.directory.start_session(username.strip(), password, user_agent)
        return self._principal(session), grant

    def change_password_and_sign_in(
        self, username: str, current: str, new: str, repeated: str, user_agent: str = ""
    ) -> tuple[SignedInUser, str]:
        """Choose a new password (required after an admin reset), then sign in with it.

        Raises:
            IdentityRefused: The two new passwords differ.
            AuthenticationFailed, InvalidInput: See `AccountDirectory.change_password`.
        """
        if new != repeated:
            raise IdentityRefused("The two new passwords differ. Type the same one twice.")
        self.directory.change_password(username.strip(), current, new)
        return self.sign_in_password(username, new, user_agent)

    def resume(self, secret: str) -> SignedInUser:
        """The person a session cookie names, for a tab opened or reloaded (local mode).

        Raises:
            SessionExpired: The session has ended; the message says why, for the sign-in page.
        """
        try:
            return self._principal(self.directory.resume_session(secret))
        except SessionEnded as exc:
            raise SessionExpired(self.session_end_message(exc.reason)) from exc

    def sign_out(self, principal: SignedInUser) -> None:
        """End the person's browser session server-side, for every tab (a no-op without one)."""
        if principal.session_id:
            self.directory.end_session(principal.username, principal.session_id)

    def _principal(self, session: SessionInfo) -> SignedInUser:
        account = session.account
        return SignedInUser(
            username=account.username,
            roles=account.roles,
            method="local",
            authenticated_at=session.created_at,
            last_seen=session.last_seen_at,
            display_name=account.display_name,
            session_id=session.id,
        )

    def from_oidc(self, claims: Mapping[str, Any]) -> SignedInUser:
        """Map the claims of `st.user` (a signed-in OIDC identity) to an account and role."""
        if self.mode != "oidc":
            raise IdentityRefused("OIDC sign-in is not enabled (COUNTERSIGN_AUTH is not oidc)")
        if not claims.get("is_logged_in", True):
            raise IdentityRefused("You are not signed in with the identity provider.")
        name = oidc_identity(
            claims, email_claim_required=self.settings.oidc_email_verified_required
        )
        if not name:
            raise IdentityRefused("The identity provider sent neither an email nor a subject.")
        now = self.clock()
        signed_in = claim_time(claims) or now
        display = str(claims.get("name") or name)
        account = self._oidc_account(name, claims)
        if account is None:
            if self.settings.oidc_unknown_role != VIEWER:
                raise IdentityRefused(
                    "Your identity has no Countersign account. Ask an administrator to add it."
                )
            account = self._admit_viewer(name.lower() if "@" in name else name, display)
        if not account.active:
            raise IdentityRefused("This account is disabled. Ask an administrator.")
        self.directory.record_sign_in(account.username, "oidc")
        return SignedInUser(account.username, account.roles, "oidc", signed_in, now, display)

    def _oidc_account(self, name: str, claims: Mapping[str, Any]) -> Account | None:
        """The account of an identity: its exact name, its email in lower case (email domains,
        and in practice whole addresses, are case-insensitive), else its subject."""
        account = self.directory.find(name)
        if account is None and "@" in name and name != name.lower():
            account = self.directory.find(name.lower())
        if account is None and name != claims.get("sub") and isinstance(claims.get("sub"), str):
            account = self.directory.find(str(claims["sub"]))
        return account

    def _admit_viewer(self, name: str, display: str) -> Account:
        try:
            return self.directory.admit_viewer(name, display)
        except InvalidInput as exc:
            raise IdentityRefused(
                f"Your identity {name!r} cannot be a Countersign user name. Ask an administrator."
            ) from exc

    def from_headers(self, headers: Mapping[str, str]) -> SignedInUser:
        """Trust the reverse proxy's user header, only when header sign-in is enabled."""
        if self.mode != "header" or not self.settings.header_auth_enabled:
            raise IdentityRefused(
                "Header sign-in is disabled: set COUNTERSIGN_AUTH=header and "
                "COUNTERSIGN_HEADER_AUTH_ENABLED=1, and only behind a proxy that strips "
                "client-sent copies of the header."
            )
        name = header_value(headers, self.settings.auth_header_name)
        if not name:
            raise IdentityRefused(
                f"The reverse proxy did not send the {self.settings.auth_header_name} header."
            )
        account = self.directory.find(name)
        if account is None or not account.active:
            raise IdentityRefused("This user has no enabled Countersign account.")
        self.directory.record_sign_in(account.username, "header")
        now = self.clock()
        return SignedInUser(
            account.username, account.roles, "header", now, now, account.display_name
        )

    def attempts_left_notice(self, failures: int) -> str | None:
        """Before the lockout: how many tries remain, counted in this browser session only.

        The service locks the account itself and says nothing about it, so that no answer
        reveals whether a user exists; these notices depend only on the count typed here.
        """
        left = self.settings.lockout_attempts - failures
        if failures <= 0 or left <= 0:
            return None
        tries = "attempt" if left == 1 else "attempts"
        return (
            f"{left} {tries} left before this account is locked for "
            f"{self.settings.lockout_minutes} minutes."
        )

    def lockout_notice(self, failures: int) -> str | None:
        """From the configured number of failures in a row: the account is locked now."""
        if failures < self.settings.lockout_attempts:
            return None
        return (
            f"Too many failed sign-ins ({failures} in a row here): after "
            f"{self.settings.lockout_attempts} failures an "
            f"account is locked for {self.settings.lockout_minutes} minutes. Try again later, "
            "or ask an administrator to reset the password."
        )

    # -- the session ------------------------------------------------------------------------

    @property
    def session_timeout(self) -> timedelta:
        return timedelta(minutes=self.settings.session_timeout_minutes)

    def is_expired(self, principal: SignedInUser) -> bool:
        """Idle longer than the session timeout (a timeout of 0 or less never expires)."""
        if self.settings.session_timeout_minutes <= 0:
            return False
        return self.clock() - principal.last_seen > self.session_timeout

    def session_end_message(self, reason: str) -> str:
        """What the sign-in page says about a session that ended for `reason`."""
        idle, absolute = (
            self.settings.session_timeout_minutes,
            self.settings.session_absolute_minutes,
        )
        messages = {
            "idle": f"Your session expired after {idle} minutes without activity.",
            "absolute": f"Your session reached its maximum length ({absolute} minutes).",
            LOGOUT: "You are signed out.",
            BY_ADMIN: "An administrator ended your session.",
            USER_DISABLED: "This account is disabled. Ask an administrator.",
            PASSWORD_RESET: "An administrator reset your password: sign in and choose a new one.",
            PASSWORD_CHANGED: "Your password was changed.",
            ROLES_CHANGED: "Your roles changed.",
        }
        message = messages.get(reason, "Your session has ended.")
        return message if reason in (LOGOUT, USER_DISABLED) else f"{message} Please sign in again."

    def touch(self, principal: SignedInUser) -> SignedInUser:
        """Check the session again and re-read the account, so that its end, a disabled user or
        a new role applies now. A local sign-in is checked server-side (`session_id`), where
        logging out in another tab, an admin's revocation and both timeouts end it.

        Raises:
            SessionExpired: The session has ended (the message says why).
            IdentityRefused: The account was disabled or removed since sign-in.
        """
        if principal.session_id:
            try:
                session = self.directory.check_session(principal.session_id)
            except SessionEnded as exc:
                raise SessionExpired(self.session_end_message(exc.reason)) from exc
            account = session.account
            return replace(principal, roles=account.roles, last_seen=session.last_seen_at)
        if self.is_expired(principal):
            raise SessionExpired(
                f"Your session expired after {self.settings.session_timeout_minutes} minutes "
                "without activity. Please sign in again."
            )
        account = self.directory.find(principal.username)
        if account is None or not account.active:
            raise IdentityRefused("This account is disabled. Ask an administrator.")
        if account.must_change_password and principal.method == "local":
            raise IdentityRefused(
                "An administrator set your password: sign in again and choose a new one."
            )
        return replace(principal, roles=account.roles, last_seen=self.clock())

    # -- re-authentication at signing -------------------------------------------------------

    def oidc_login_is_recent(self, principal: SignedInUser) -> bool:
        """Whether the OIDC sign-in is younger than COUNTERSIGN_OIDC_REAUTH_MINUTES."""
        age = self.clock() - principal.authenticated_at
        return age <= timedelta(minutes=self.settings.oidc_reauth_minutes)

    def signing_reauth_method(self, principal: SignedInUser) -> str:
        """How this person re-authenticates to sign: "password" or "oidc-recent-login".

        Local and header users re-enter their password (checked by the facade with the vote);
        OIDC users must have signed in at the provider within the configured minutes.

        Raises:
            ReauthRequired: An OIDC sign-in that is too old; sign in again, then sign.
        """
        if principal.method != "oidc":
            return REAUTH_PASSWORD
        if not self.oidc_login_is_recent(principal):
            raise ReauthRequired(
                f"Signing needs a sign-in younger than {self.settings.oidc_reauth_minutes} "
                "minutes: sign in again with your identity provider, then sign."
            )
        return REAUTH_OIDC

    def signing_proof(self, principal: SignedInUser, password: str | None = None) -> Any:
        """The re-authentication to hand to `GovernanceFacade.sign_off(reauth=...)`.

        Local and header users: their password, entered again now (the service verifies it and
        counts failures towards lockout). OIDC users: the attested recent sign-in.

        Raises:
            ReauthRequired: An OIDC sign-in older than the configured minutes.
        """
        from governance.context import Reauthentication

        method = self.signing_reauth_method(principal)
        if method == REAUTH_OIDC:
            return Reauthentication(REAUTH_OIDC)
        return Reauthentication(REAUTH_PASSWORD, password or "")

    # -- first run and demo -----------------------------------------------------------------

    def needs_first_admin(self) -> bool:
        """Local mode with no enabled admin: the app must explain how to create one."""
        return self.mode == "local" and not self.directory.has_active_admin()

    def demo_accounts(self) -> tuple[DemoAccount, ...]:
        """The demo users with their demo passwords, in demo mode only; otherwise nothing."""
        if not self.settings.demo_mode:
            return ()
        return tuple(self.demo_accounts_source())


def build_identity(settings: Settings, facade: Any) -> IdentityService:
    """The identity service of one process, over the governance facade."""
    from app.demo_users import demo_accounts

    return IdentityService(settings, FacadeDirectory(facade), demo_accounts)
