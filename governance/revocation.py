"""Ending browser sessions inside the caller's transaction, with one audit event each.

Kept apart from governance.sessions so that the account changes that end sessions (users,
passwords) can use it without importing sign-in.
"""

from __future__ import annotations

from dataclasses import replace

from governance.context import Context
from governance.domain import AuditAction, BrowserSession, ObjectType
from governance.store_ports import UnitOfWork

# Why a session ended (`BrowserSession.revoke_reason`).
LOGOUT = "logout"
BY_ADMIN = "admin"
USER_DISABLED = "user_disabled"
PASSWORD_RESET = "password_reset"  # noqa: S105 (a reason, not a secret)
PASSWORD_CHANGED = "password_changed"  # noqa: S105
ROLES_CHANGED = "roles_changed"


def end_user_sessions(uow: UnitOfWork, ctx: Context, actor: str, name: str, reason: str) -> int:
    """End every live session of `name` inside the caller's transaction (no commit here).

    Called where an account changes (disabled, password reset or changed, roles changed), so the
    change and the end of the sessions commit together.

    Returns:
        How many sessions ended.
    """
    return len(revoke(uow, ctx, actor, uow.sessions.active(ctx.clock.now(), user=name), reason))


def revoke(
    uow: UnitOfWork,
    ctx: Context,
    actor: str,
    sessions: tuple[BrowserSession, ...],
    reason: str,
) -> list[BrowserSession]:
    """Mark each session revoked by `actor` for `reason`, and audit it (no commit here)."""
    now = ctx.clock.now()
    ended = []
    for session in sessions:
        session = replace(session, revoked_at=now, revoked_by=actor, revoke_reason=reason)
        uow.sessions.update(session)
        uow.audit.append(
            actor=actor,
            action=AuditAction.SESSION_REVOKED,
            object_type=ObjectType.SESSION,
            object_id=session.id,
            payload={"user": session.user, "reason": reason},
            at=now,
        )
        ended.append(session)
    return ended
