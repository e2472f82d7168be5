"""Users, passwords and sign-in: the identity half of the governance core."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import NoReturn

from governance.context import ANONYMOUS, Context, authorise, refuse
from governance.domain import (
    AuditAction,
    ObjectType,
    Permission,
    User,
    validate_roles,
    validate_user_name,
)
from governance.errors import (
    AuthenticationFailed,
    Conflict,
    GovernanceError,
    InvalidInput,
    NotAllowed,
    NotFound,
)
from governance.ports import UnitOfWork

MIN_PASSWORD_LENGTH = 8


def _check_password(password: str) -> None:
    if len(password or "") < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")


def create_user(
    uow: UnitOfWork,
    ctx: Context,
    actor: str,
    name: str,
    roles: Sequence[str],
    password: str,
    display_name: str = "",
) -> User:
    """Create a user with an argon2-hashed password.

    Args:
        actor: An admin, or `system:cli` (the operator creating the first admin).
        roles: Built-in roles or roles the policy names (e.g. `risk`).

    Raises:
        NotAllowed: The actor may not administer users.
        InvalidInput: Bad name, unknown role, or a password shorter than 8 characters.
        Conflict: The name is taken.
    """
    with uow:
        authorise(uow, ctx, actor, Permission.ADMIN_USERS, "create_user", ObjectType.USER, name)
        try:
            validate_user_name(name)
            validate_roles(tuple(roles), ctx.policy.roles_named())
            _check_password(password)
            if uow.users.find(name) is not None:
                raise Conflict(f"user {name!r} exists already")
        except GovernanceError as exc:
            refuse(uow, ctx, actor, "create_user", ObjectType.USER, name, exc)
        now = ctx.clock.now()
        user = User(
            name=name,
            display_name=(display_name or name).strip(),
            roles=tuple(dict.fromkeys(roles)),
            password_hash=ctx.hasher.hash(password),
            created_at=now,
        )
        uow.users.add(user)
        uow.audit.append(
            actor=actor,
            action=AuditAction.USER_CREATED,
            object_type=ObjectType.USER,
            object_id=name,
            payload={"roles": list(user.roles), "display_name": user.display_name},
            at=now,
        )
        uow.commit()
        return user


def _target_user(uow: UnitOfWork, ctx: Context, actor: str, attempted: str, name: str) -> User:
    authorise(uow, ctx, actor, Permission.ADMIN_USERS, attempted, ObjectType.USER, name)
    user = uow.users.find(name)
    if user is None:
        refuse(
            uow, ctx, actor, attempted, ObjectType.USER, name, NotFound(f"no user named {name!r}")
        )
    return user


def disable_user(uow: UnitOfWork, ctx: Context, actor: str, name: str) -> User:
    """Disable a user (never deleted: the audit log refers to them). Disabling twice is a no-op.

    Raises:
        NotAllowed: The actor may not administer users, or tries to disable themself.
        NotFound: No such user.
    """
    with uow:
        user = _target_user(uow, ctx, actor, "disable_user", name)
        if name == actor:
            refuse(
                uow,
                ctx,
                actor,
                "disable_user",
                ObjectType.USER,
                name,
                NotAllowed("you cannot disable your own account"),
            )
        if user.disabled:
            return user
        user = replace(user, disabled=True)
        uow.users.update(user)
        uow.audit.append(
            actor=actor,
            action=AuditAction.USER_DISABLED,
            object_type=ObjectType.USER,
            object_id=name,
            payload={},
            at=ctx.clock.now(),
        )
        uow.commit()
        return user


def reset_password(uow: UnitOfWork, ctx: Context, actor: str, name: str, password: str) -> None:
    """Set a new password and lift any lockout.

    Raises:
        NotAllowed: The actor may not administer users.
        NotFound: No such user.
        InvalidInput: The password is shorter than 8 characters.
    """
    with uow:
        user = _target_user(uow, ctx, actor, "reset_password", name)
        try:
            _check_password(password)
        except InvalidInput as exc:
            refuse(uow, ctx, actor, "reset_password", ObjectType.USER, name, exc)
        user = replace(
            user, password_hash=ctx.hasher.hash(password), failed_logins=0, locked_until=None
        )
        uow.users.update(user)
        uow.audit.append(
            actor=actor,
            action=AuditAction.PASSWORD_RESET,
            object_type=ObjectType.USER,
            object_id=name,
            payload={},
            at=ctx.clock.now(),
        )
        uow.commit()


def list_users(uow: UnitOfWork, ctx: Context, actor: str) -> tuple[User, ...]:
    """Every user by name (callers must not show `password_hash`).

    Raises:
        NotAllowed: The actor may not administer users.
    """
    with uow:
        authorise(uow, ctx, actor, Permission.ADMIN_USERS, "list_users", ObjectType.USER, "*")
        return uow.users.list()


def authenticate(uow: UnitOfWork, ctx: Context, name: str, password: str) -> User:
    """Check a user name and password; lock the account after too many failures.

    Unknown user, disabled user, locked account and wrong password all raise the same
    AuthenticationFailed message, so the answer reveals nothing. Each failure and each lockout is
    audited.

    Raises:
        AuthenticationFailed: For every failure.
    """
    with uow:
        user = uow.users.find(name)
        if user is None or user.disabled:
            ctx.hasher.hash(password or "x")  # spend the same time as a real check
            _login_failed(uow, ctx, name, "unknown user" if user is None else "disabled")
        check_password(uow, ctx, user, password, "sign in")
        uow.audit.append(
            actor=user.name,
            action=AuditAction.LOGIN_SUCCEEDED,
            object_type=ObjectType.SESSION,
            object_id=user.name,
            payload={},
            at=ctx.clock.now(),
        )
        uow.commit()
        return uow.users.find(name) or user


def check_password(
    uow: UnitOfWork, ctx: Context, user: User, password: str | None, purpose: str
) -> User:
    """Verify a password inside the caller's transaction, with lockout; stores the counters.

    On success the failure counter is reset (and the hash upgraded if the hasher asks). On
    failure the counter and lockout are committed with their audit events, then
    AuthenticationFailed is raised.
    """
    now = ctx.clock.now()
    if user.is_locked(now):
        _login_failed(uow, ctx, user.name, "locked", purpose)
    if not password or not ctx.hasher.verify(user.password_hash, password):
        failed = user.failed_logins + 1
        locked = failed >= ctx.lockout_attempts
        uow.users.update(
            replace(
                user,
                failed_logins=0 if locked else failed,
                locked_until=now + ctx.lockout_duration if locked else user.locked_until,
            )
        )
        if locked:
            uow.audit.append(
                actor=ANONYMOUS,
                action=AuditAction.USER_LOCKED,
                object_type=ObjectType.USER,
                object_id=user.name,
                payload={"failures": failed, "until": (now + ctx.lockout_duration).isoformat()},
                at=now,
            )
        _login_failed(uow, ctx, user.name, "wrong password", purpose)
    if user.failed_logins or user.locked_until or ctx.hasher.needs_rehash(user.password_hash):
        new_hash = (
            ctx.hasher.hash(password)
            if ctx.hasher.needs_rehash(user.password_hash)
            else user.password_hash
        )
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
