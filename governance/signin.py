"""Sign-in and password checks, with lockout after repeated failures."""

from __future__ import annotations

import secrets
import weakref
from dataclasses import dataclass, replace
from typing import NoReturn

from governance.context import ANONYMOUS, Context, refuse
from governance.domain import AuditAction, ObjectType, User
from governance.errors import (
    AuthenticationFailed,
    GovernanceError,
    InvalidInput,
    NotAllowed,
    PasswordChangeRequired,
)
from governance.ports import PasswordHasher
from governance.revocation import PASSWORD_CHANGED, end_user_sessions
from governance.store_ports import UnitOfWork
from governance.users import check_new_password

# One hash of a random secret per hasher, with that hasher's own parameters: an unknown or
# disabled user is checked against it, so every sign-in spends the same argon2 work.
_DUMMY_HASHES: weakref.WeakKeyDictionary[PasswordHasher, str] = weakref.WeakKeyDictionary()


def authenticate(uow: UnitOfWork, ctx: Context, name: str, password: str) -> User:
    """Check a user name and password; lock the account after too many failures.

    Unknown user, disabled user, locked account and wrong password all raise the same
    AuthenticationFailed message, so the answer reveals nothing. Each failure and each lockout is
    audited. The (deliberately slow) hash check runs outside any transaction, so it never holds
    a database lock.

    Raises:
        AuthenticationFailed: For every failure.
        PasswordChangeRequired: The password is right but was set by an admin: the person must
            choose a new one (`change_password`) before it serves for anything else.
    """
    with uow.reading():  # no lock and no write transaction for what the hash check needs
        known = uow.users.find(name)
    check = verify_password(ctx, known, password)
    with uow:
        # Read the counters under the write lock: concurrent failures must each count, or a burst
        # of parallel guesses would outrun the lockout.
        uow.lock_users()
        user = uow.users.find(name)
        if user is None or user.disabled:
            _login_failed(uow, ctx, name, "unknown user" if user is None else "disabled")
        user = record_password_check(uow, ctx, user, check, "sign in")
        if user.must_change_password:
            uow.commit()  # keeps the reset of the failure counter
            raise PasswordChangeRequired()
        uow.audit.append(
            actor=user.name,
            action=AuditAction.LOGIN_SUCCEEDED,
            object_type=ObjectType.SESSION,
            object_id=user.name,
            payload={},
            at=ctx.clock.now(),
        )
        uow.commit()
        return user


def change_password(uow: UnitOfWork, ctx: Context, name: str, current: str, new: str) -> User:
    """A person replaces their own password, proving the current one (after an admin reset, the
    one the admin set). Clears the obligation to change it; audited as `password_changed`.

    A wrong current password counts towards the lockout like a failed sign-in. Every browser
    session of the person ends (another browser may have known the old password).

    Raises:
        AuthenticationFailed: Unknown user or wrong current password (the same message).
        InvalidInput: The new password is too short or equals the current one.
    """
    with uow.reading():
        known = uow.users.find(name)
    check = verify_password(ctx, known, current)
    new_hash = ctx.hasher.hash(new) if check.matches else ""  # slow: outside the transaction
    with uow:
        uow.lock_users()
        user = uow.users.find(name)
        if user is None or user.disabled:
            _login_failed(uow, ctx, name, "unknown user" if user is None else "disabled")
        user = record_password_check(uow, ctx, user, check, "change password")
        try:
            check_new_password(new)
            if new == current:
                raise InvalidInput("choose a password different from the current one")
        except GovernanceError as exc:
            refuse(uow, ctx, name, "change_password", ObjectType.USER, name, exc)
        user = replace(user, password_hash=new_hash, must_change_password=False)
        uow.users.update(user)
        uow.audit.append(
            actor=name,
            action=AuditAction.PASSWORD_CHANGED,
            object_type=ObjectType.USER,
            object_id=name,
            payload={},
            at=ctx.clock.now(),
        )
        end_user_sessions(uow, ctx, name, name, PASSWORD_CHANGED)
        uow.commit()
        return user


def record_external_sign_in(uow: UnitOfWork, ctx: Context, name: str, method: str) -> User:
    """Audit a sign-in that the identity provider or the trusted proxy vouched for.

    The password check happened elsewhere (at the provider, or at the proxy), so the audit log
    is the only place here that knows who came in, when, and how (`method`: oidc or header).

    Raises:
        NotAllowed: No enabled account has this name.
    """
    with uow:
        user = uow.users.find(name)
        if user is None or user.disabled:
            raise NotAllowed(f"{name!r} has no enabled account")
        uow.audit.append(
            actor=user.name,
            action=AuditAction.LOGIN_SUCCEEDED,
            object_type=ObjectType.SESSION,
            object_id=user.name,
            payload={"method": method},
            at=ctx.clock.now(),
        )
        uow.commit()
        return user


@dataclass(frozen=True)
class PasswordCheck:
    """The outcome of a hash verification done outside the transaction."""

    password: str
    checked_hash: str
    matches: bool


def verify_password(ctx: Context, user: User | None, password: str | None) -> PasswordCheck:
    """Verify a password against a user's hash (slow on purpose: call it outside a transaction).

    Every path runs exactly one argon2 verification with the same parameters: an unknown or
    disabled user is checked against a dummy hash, and an empty password is checked like any
    other, so the response time does not tell which user names exist.
    """
    typed = password or ""
    if user is None or user.disabled:
        ctx.hasher.verify(dummy_hash(ctx.hasher), typed)
        return PasswordCheck(typed, "", False)
    ok = ctx.hasher.verify(user.password_hash, typed)
    return PasswordCheck(typed, user.password_hash, ok and bool(typed))


def dummy_hash(hasher: PasswordHasher) -> str:
    """A hash of a random secret made by `hasher` (cached per hasher): matches no password."""
    found = _DUMMY_HASHES.get(hasher)
    if found is None:
        found = _DUMMY_HASHES[hasher] = hasher.hash(secrets.token_urlsafe(24))
    return found


def record_password_check(
    uow: UnitOfWork, ctx: Context, user: User, check: PasswordCheck, purpose: str
) -> User:
    """Apply a password check to the user read in THIS transaction (lockout, counters, rehash).

    On success the failure counter is reset (and the hash upgraded if the hasher asks). On
    failure the counter and any lockout are committed with their audit events, then
    AuthenticationFailed is raised. A lock in force refuses even a right password.
    """
    now = ctx.clock.now()
    if user.is_locked(now):
        _login_failed(uow, ctx, user.name, "locked", purpose)
    ok = check.matches
    if ok and check.checked_hash != user.password_hash:  # the password changed meanwhile
        ok = ctx.hasher.verify(user.password_hash, check.password)
    if not ok:
        failed = user.failed_logins + 1
        locked = failed >= ctx.lockout_attempts
        until = now + ctx.lockout_duration
        uow.users.update(
            replace(
                user,
                failed_logins=0 if locked else failed,
                locked_until=until if locked else user.locked_until,
            )
        )
        if locked:
            uow.audit.append(
                actor=ANONYMOUS,
                action=AuditAction.USER_LOCKED,
                object_type=ObjectType.USER,
                object_id=user.name,
                payload={"failures": failed, "until": until.isoformat()},
                at=now,
            )
        _login_failed(uow, ctx, user.name, "wrong password", purpose)
    rehash = ctx.hasher.needs_rehash(user.password_hash)
    if user.failed_logins or user.locked_until or rehash:
        new_hash = ctx.hasher.hash(check.password) if rehash else user.password_hash
        user = replace(user, failed_logins=0, locked_until=None, password_hash=new_hash)
        uow.users.update(user)
    return user


def _login_failed(
    uow: UnitOfWork, ctx: Context, name: str, reason: str, purpose: str = "sign in"
) -> NoReturn:
    uow.audit.append(
        actor=ANONYMOUS,
        action=AuditAction.LOGIN_FAILED,
        object_type=ObjectType.USER,
        object_id=name[:128],
        payload={"reason": reason, "purpose": purpose},
        at=ctx.clock.now(),
    )
    uow.commit()
    raise AuthenticationFailed()
