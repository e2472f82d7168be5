"""The accounts and browser sessions of the governance database, as sign-in sees them.

`AccountDirectory` is what `app.identity.IdentityService` needs; `FacadeDirectory` provides it
over the governance facade (tests provide an in-memory one). Password checks, lockout, sessions
and their audit events all happen behind these calls, in the service layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol


@dataclass(frozen=True)
class Account:
    """What sign-in needs to know about a user of the governance database."""

    username: str
    roles: tuple[str, ...]
    active: bool = True
    display_name: str = ""
    must_change_password: bool = False


@dataclass(frozen=True)
class SessionInfo:
    """A live browser session as sign-in sees it (never its secret)."""

    id: str
    account: Account
    created_at: datetime  # when the password was checked
    last_seen_at: datetime


class AccountDirectory(Protocol):
    """The accounts in the governance database, as the facade exposes them."""

    def start_session(
        self, username: str, password: str, user_agent: str
    ) -> tuple[SessionInfo, str]:
        """Check a password and open a browser session; lockout and auditing happen behind
        this call. Returns the session and its one-time grant (for the cookie hand-over).

        Raises:
            AuthenticationFailed: Unknown user or wrong password (one message for both).
            PasswordChangeRequired: The password is right but an admin set it.
        """
        ...

    def check_session(self, session_id: str) -> SessionInfo:
        """The live session of a signed-in tab, marked as seen.

        Raises:
            SessionEnded: Revoked, expired, unknown, or its user disabled (`reason` says which).
        """
        ...

    def resume_session(self, secret: str) -> SessionInfo:
        """The live session a browser's cookie names, marked as seen.

        Raises:
            SessionEnded: As for `check_session`.
        """
        ...

    def end_session(self, actor: str, session_id: str) -> None:
        """Log out (the session's user) or revoke (an admin); audited."""
        ...

    def change_password(self, username: str, current: str, new: str) -> Account:
        """Replace one's own password, proving the current one (audited).

        Raises:
            AuthenticationFailed: Wrong current password (counts towards the lockout).
            InvalidInput: The new password is too short or unchanged.
        """
        ...

    def find(self, username: str) -> Account | None:
        """The account with this exact name, or None."""
        ...

    def has_active_admin(self) -> bool:
        """Whether at least one enabled account has the admin role."""
        ...

    def record_sign_in(self, username: str, method: str) -> None:
        """Audit a sign-in vouched for by the provider or the proxy (`method`: oidc, header).

        Raises:
            GovernanceError: The account is not (or no longer) enabled.
        """
        ...

    def admit_viewer(self, username: str, display_name: str) -> Account:
        """A viewer account for an identity the OIDC provider vouched for (audited); an
        existing account is returned unchanged.

        Raises:
            InvalidInput: The identity cannot be a user name.
        """
        ...


def account_of(user: Any) -> Account:
    """Our view of a governance `User` (never its password hash)."""
    return Account(
        username=user.name,
        roles=tuple(user.roles),
        active=not user.disabled,
        display_name=user.display_name,
        must_change_password=user.must_change_password,
    )


def session_of(session: Any, user: Any) -> SessionInfo:
    """Our view of a governance `BrowserSession` and its user (no hashes)."""
    return SessionInfo(session.id, account_of(user), session.created_at, session.last_seen_at)


class FacadeDirectory:
    """The accounts of the governance database, through the governance facade.

    Password checks (with lockout and audit events) and sessions are the facade's. Looking up an
    account is a plain read of the users table; it changes nothing and needs no actor.
    """

    ADMIN = "admin"

    def __init__(self, facade: Any) -> None:
        self._facade = facade

    def start_session(
        self, username: str, password: str, user_agent: str
    ) -> tuple[SessionInfo, str]:
        user, session, grant = self._facade.start_session(username, password, user_agent)
        return session_of(session, user), grant

    def check_session(self, session_id: str) -> SessionInfo:
        return session_of(*self._facade.check_session(session_id))

    def resume_session(self, secret: str) -> SessionInfo:
        return session_of(*self._facade.resume_session(secret))

    def end_session(self, actor: str, session_id: str) -> None:
        self._facade.end_session(actor, session_id)

    def change_password(self, username: str, current: str, new: str) -> Account:
        return account_of(self._facade.change_password(username, current, new))

    def _users(self) -> Any:
        return self._facade.store.unit_of_work(read_only=True)

    def find(self, username: str) -> Account | None:
        with self._users() as uow:
            user = uow.users.find(username)
        return account_of(user) if user is not None else None

    def admit_viewer(self, username: str, display_name: str) -> Account:
        return account_of(self._facade.admit_viewer(username, display_name))

    def record_sign_in(self, username: str, method: str) -> None:
        self._facade.record_sign_in(username, method)

    def has_active_admin(self) -> bool:
        with self._users() as uow:
            users = uow.users.list()
        return any(self.ADMIN in u.roles and not u.disabled for u in users)
