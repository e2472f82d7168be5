"""Browser sessions kept server-side: start at sign-in, hand a cookie over, resume, end.

A session starts only from a successful password check (`start_session`). The browser then
collects its cookie with a one-time grant (`claim_cookie`): the cookie's secret is made there,
and only its SHA-256 is stored, so neither the database nor the page ever holds it. Every
interaction checks the session again (`check_session`, by its public id, or `resume_session`,
by the cookie of a newly opened tab): revoked, idle past `Context.session_idle` or older than
`Context.session_lifetime`, or belonging to a disabled user, it admits nobody. Logging out, an
admin, disabling the user, resetting their password or changing their roles ends it, in every
tab at once; each end is audited.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta

from governance.context import Context, authorise
from governance.domain import AuditAction, BrowserSession, ObjectType, Permission, User
from governance.errors import NotAllowed, NotFound, SessionEnded
from governance.revocation import BY_ADMIN, LOGOUT, USER_DISABLED, revoke
from governance.signin import authenticate
from governance.store_ports import UnitOfWork

GRANT_TTL = timedelta(minutes=2)  # the page hands its grant over within seconds
PRUNE_AFTER = timedelta(days=1)  # ended sessions stay listable this long, then go
USER_AGENT_MAX = 300


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _touch_every(ctx: Context) -> timedelta:
    """How stale `last_seen_at` may get before a check writes it (one write a minute at most)."""
    if ctx.session_idle <= timedelta(0):
        return timedelta(minutes=1)
    return min(timedelta(minutes=1), ctx.session_idle / 10)


def _idle_until(ctx: Context, now: datetime, end: datetime) -> datetime:
    return end if ctx.session_idle <= timedelta(0) else min(end, now + ctx.session_idle)


def start_session(
    uow: UnitOfWork, ctx: Context, name: str, password: str, user_agent: str
) -> tuple[User, BrowserSession, str]:
    """Sign in with a password and open a session for this browser.

    Returns:
        The user, the session, and the one-time grant (valid for GRANT_TTL) with which the
        browser collects its cookie (`claim_cookie`).

    Raises:
        AuthenticationFailed, PasswordChangeRequired: See `governance.signin.authenticate`.
    """
    user = authenticate(uow, ctx, name, password)
    now = ctx.clock.now()
    grant = secrets.token_urlsafe(32)
    end = now + ctx.session_lifetime
    session = BrowserSession(
        id=secrets.token_hex(8),
        user=user.name,
        created_at=now,
        last_seen_at=now,
        idle_expires_at=_idle_until(ctx, now, end),
        expires_at=end,
        user_agent=" ".join((user_agent or "").split())[:USER_AGENT_MAX],
        grant_hash=_digest(grant),
        grant_expires_at=now + GRANT_TTL,
    )
    with uow:
        uow.sessions.prune(now - PRUNE_AFTER)
        uow.sessions.add(session)
        uow.audit.append(
            actor=user.name,
            action=AuditAction.SESSION_STARTED,
            object_type=ObjectType.SESSION,
            object_id=session.id,
            payload={"user": user.name, "user_agent": session.user_agent},
            at=now,
        )
        uow.commit()
    return user, session, grant


def claim_cookie(uow: UnitOfWork, ctx: Context, grant: str) -> tuple[BrowserSession, str]:
    """Exchange a session's one-time grant for the secret of its cookie (made here).

    Raises:
        NotAllowed: The grant is unknown, used, expired, or its session has ended.
    """
    now = ctx.clock.now()
    secret = secrets.token_urlsafe(32)
    with uow:
        # The write lock first: two replicas racing with the same grant read it one after the
        # other, so the second finds it used.
        uow.lock_users()
        session = uow.sessions.find_by_grant(_digest(grant or ""))
        until = session.grant_expires_at if session is not None else None
        if session is None or until is None or until <= now or session.ended(now):
            raise NotAllowed("this sign-in can no longer be handed to the browser: sign in again")
        session = replace(
            session, secret_hash=_digest(secret), grant_hash="", grant_expires_at=None
        )
        uow.sessions.update(session)
        uow.commit()
    return session, secret


def resume_session(uow: UnitOfWork, ctx: Context, secret: str) -> tuple[BrowserSession, User]:
    """The session (and its user) a browser's cookie names, checked and marked as seen.

    Raises:
        SessionEnded: Unknown cookie, or a session that admits nobody any more.
    """
    if not secret:
        raise SessionEnded("unknown")
    return _checked(uow, ctx, lambda: uow.sessions.find_by_secret(_digest(secret)))


def check_session(uow: UnitOfWork, ctx: Context, session_id: str) -> tuple[BrowserSession, User]:
    """The session of a signed-in tab, checked again on every interaction and marked as seen.

    Raises:
        SessionEnded: The session is unknown, revoked, expired, or its user disabled.
    """
    return _checked(uow, ctx, lambda: uow.sessions.get(session_id))


def _checked(
    uow: UnitOfWork, ctx: Context, find: Callable[[], BrowserSession | None]
) -> tuple[BrowserSession, User]:
    """Read the session and its user in one lock-free read; write `last_seen_at` when stale."""
    now = ctx.clock.now()
    with uow.reading():
        session = find()
        user = uow.users.find(session.user) if session is not None else None
    if session is None:
        raise SessionEnded("unknown")
    why = session.ended(now)
    if why:
        raise SessionEnded(session.revoke_reason if why == "revoked" else why)
    if user is None or user.disabled:
        raise SessionEnded(USER_DISABLED)
    if now - session.last_seen_at < _touch_every(ctx):
        return session, user
    with uow:
        fresh = uow.sessions.get(session.id)
        if fresh is None or fresh.ended(now):  # ended meanwhile: the next check says why
            return session, user
        session = replace(
            fresh, last_seen_at=now, idle_expires_at=_idle_until(ctx, now, fresh.expires_at)
        )
        uow.sessions.update(session)
        uow.commit()
    return session, user


def end_session(
    uow: UnitOfWork, ctx: Context, actor: str, session_id: str, reason: str = LOGOUT
) -> BrowserSession:
    """End one session: its own user logging out, or an admin revoking it. Ending an ended
    session changes nothing. Audited as `session_revoked`.

    Raises:
        NotAllowed: The actor is neither the session's user nor an admin.
        NotFound: No such session.
    """
    with uow:
        session = uow.sessions.get(session_id)
        if session is None:
            raise NotFound(f"no session {session_id}")
        if actor != session.user:
            authorise(
                uow,
                ctx,
                actor,
                Permission.ADMIN_USERS,
                "end_session",
                ObjectType.SESSION,
                session_id,
            )
            reason = BY_ADMIN
        if session.revoked_at is not None:
            return session
        [session] = revoke(uow, ctx, actor, (session,), reason)
        uow.commit()
        return session


def list_sessions(uow: UnitOfWork, ctx: Context, actor: str) -> tuple[BrowserSession, ...]:
    """Every live session, newest first (admins).

    Raises:
        NotAllowed: The actor may not administer users.
    """
    with uow:
        authorise(uow, ctx, actor, Permission.ADMIN_USERS, "list_sessions", ObjectType.SESSION, "*")
        return uow.sessions.active(ctx.clock.now())
