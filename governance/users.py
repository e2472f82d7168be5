"""Users, passwords and sign-in: the identity half of the governance core."""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime

from governance.audit import AuditRecord, format_ts
from governance.context import Context, authorise, refuse
from governance.domain import (
    ADMIN,
    OIDC_SIGN_IN,
    SYSTEM_PREFIX,
    VIEWER,
    AuditAction,
    ObjectType,
    PasswordResetNotice,
    Permission,
    User,
    Vote,
    validate_roles,
    validate_user_name,
)
from governance.errors import (
    Conflict,
    GovernanceError,
    InvalidInput,
    NotAllowed,
    NotFound,
)
from governance.revocation import (
    PASSWORD_RESET,
    ROLES_CHANGED,
    USER_DISABLED,
    end_user_sessions,
)
from governance.store_ports import UnitOfWork

MIN_PASSWORD_LENGTH = 8


def check_new_password(password: str) -> None:
    """Raise InvalidInput unless the password is long enough to be set."""
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

    An account an admin makes knows a password that admin chose: like after a reset, its owner
    must choose a new one at the first sign-in, and until then it signs nothing. The operator
    (`system:cli`, who holds the server's shell) makes accounts that are ready to use.

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
            check_new_password(password)
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
            must_change_password=_chosen_by_another_person(actor, name),
        )
        uow.users.add(user)
        uow.audit.append(
            actor=actor,
            action=AuditAction.USER_CREATED,
            object_type=ObjectType.USER,
            object_id=name,
            payload={
                "roles": list(user.roles),
                "display_name": user.display_name,
                "must_change_password": user.must_change_password,
            },
            at=now,
        )
        uow.commit()
        return user


def admit_viewer(uow: UnitOfWork, ctx: Context, name: str, display_name: str = "") -> User:
    """Give an identity vouched for by the OIDC provider, unknown here, a viewer account.

    The identity layer calls this at a first sign-in when unknown identities are admitted as
    viewers, so that the governance reads every viewer may make (activity, out-of-band flags)
    work for them too, and an admin can later grant roles or disable the account like any other.
    The account's password is random and known to nobody. The creation is audited with the actor
    `system:oidc`. An existing user is returned unchanged: this never grants, enables or restores.

    Raises:
        InvalidInput: The identity cannot be a user name (e.g. a subject containing `|`).
    """
    validate_user_name(name)
    unusable = ctx.hasher.hash(secrets.token_urlsafe(32))  # slow: outside the transaction
    try:
        with uow:
            existing = uow.users.find(name)
            if existing is not None:
                return existing
            now = ctx.clock.now()
            user = User(name, (display_name or name).strip(), (VIEWER,), unusable, created_at=now)
            uow.users.add(user)
            payload = {"roles": [VIEWER], "display_name": user.display_name}
            _user_event(uow, ctx, OIDC_SIGN_IN, AuditAction.USER_CREATED, name, payload)
            uow.commit()
            return user
    except Conflict:  # another session admitted the same identity first
        with uow:
            found = uow.users.find(name)
        if found is None:
            raise
        return found


def _target_user(uow: UnitOfWork, ctx: Context, actor: str, attempted: str, name: str) -> User:
    """The user to change, read fresh under the users lock once the actor is authorised."""
    authorise(uow, ctx, actor, Permission.ADMIN_USERS, attempted, ObjectType.USER, name)
    uow.lock_users()
    user = uow.users.find(name)
    if user is None:
        refuse(
            uow, ctx, actor, attempted, ObjectType.USER, name, NotFound(f"no user named {name!r}")
        )
    return user


def _is_active_admin(user: User) -> bool:
    return ADMIN in user.roles and not user.disabled


def _keep_an_active_admin(
    uow: UnitOfWork, ctx: Context, actor: str, attempted: str, before: User, after: User
) -> None:
    """Refuse a change that would leave no active admin: nobody could administer users in the
    app any more. Runs under the users lock (`_target_user`), so two racing demotions cannot
    both pass."""
    if not _is_active_admin(before) or _is_active_admin(after):
        return
    if not any(_is_active_admin(u) for u in uow.users.list() if u.name != before.name):
        error = NotAllowed(
            f"{before.name!r} is the last active admin: give another user the admin role first"
        )
        refuse(uow, ctx, actor, attempted, ObjectType.USER, before.name, error)


def disable_user(uow: UnitOfWork, ctx: Context, actor: str, name: str) -> User:
    """Disable a user (never deleted: the audit log refers to them) and end their browser
    sessions. Disabling twice is a no-op.

    Raises:
        NotAllowed: The actor may not administer users, tries to disable themself, or the user
            is the last active admin.
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
        disabled = replace(user, disabled=True)
        _keep_an_active_admin(uow, ctx, actor, "disable_user", user, disabled)
        uow.users.update(disabled)
        _user_event(uow, ctx, actor, AuditAction.USER_DISABLED, name, {})
        end_user_sessions(uow, ctx, actor, name, USER_DISABLED)
        uow.commit()
        return disabled


def enable_user(uow: UnitOfWork, ctx: Context, actor: str, name: str) -> User:
    """Enable a disabled user again and lift any lockout. Enabling twice is a no-op.

    Raises:
        NotAllowed: The actor may not administer users.
        NotFound: No such user.
    """
    with uow:
        user = _target_user(uow, ctx, actor, "enable_user", name)
        if not user.disabled:
            return user
        user = replace(user, disabled=False, failed_logins=0, locked_until=None)
        uow.users.update(user)
        _user_event(uow, ctx, actor, AuditAction.USER_ENABLED, name, {})
        uow.commit()
        return user


def set_roles(uow: UnitOfWork, ctx: Context, actor: str, name: str, roles: Sequence[str]) -> User:
    """Replace a user's roles and end their browser sessions (they sign in again under the new
    roles). The same roles again (in any order) are a no-op.

    Raises:
        NotAllowed: The actor may not administer users, would remove their own admin role, or
            would remove the admin role of the last active admin.
        NotFound: No such user.
        InvalidInput: No role, or an unknown one.
    """
    with uow:
        user = _target_user(uow, ctx, actor, "set_roles", name)
        wanted = tuple(dict.fromkeys(roles))
        try:
            validate_roles(wanted, ctx.policy.roles_named())
            if name == actor and ADMIN in user.roles and ADMIN not in wanted:
                raise NotAllowed("you cannot remove your own admin role")
        except GovernanceError as exc:
            refuse(uow, ctx, actor, "set_roles", ObjectType.USER, name, exc)
        if set(wanted) == set(user.roles):
            return user
        changed = replace(user, roles=wanted)
        _keep_an_active_admin(uow, ctx, actor, "set_roles", user, changed)
        uow.users.update(changed)
        payload = {"before": list(user.roles), "after": list(wanted)}
        _user_event(uow, ctx, actor, AuditAction.USER_ROLES_CHANGED, name, payload)
        end_user_sessions(uow, ctx, actor, name, ROLES_CHANGED)
        uow.commit()
        return changed


def _user_event(
    uow: UnitOfWork, ctx: Context, actor: str, action: str, name: str, payload: Mapping[str, object]
) -> None:
    uow.audit.append(
        actor=actor,
        action=action,
        object_type=ObjectType.USER,
        object_id=name,
        payload=payload,
        at=ctx.clock.now(),
    )


def reset_password(uow: UnitOfWork, ctx: Context, actor: str, name: str, password: str) -> None:
    """Set a new password and lift any lockout.

    When the actor is not the user (an admin, or the CLI operator), the user must choose a new
    password at their next sign-in: until then the password works for nothing else (no sign-in,
    no signature, no break-glass). Every browser session of the user ends. The reset stays
    visible on every vote the user casts within `Context.reset_notice_period` (see
    `password_reset_notices`).

    Raises:
        NotAllowed: The actor may not administer users.
        NotFound: No such user.
        InvalidInput: The password is shorter than 8 characters.
    """
    with uow:
        user = _target_user(uow, ctx, actor, "reset_password", name)
        try:
            check_new_password(password)
        except InvalidInput as exc:
            refuse(uow, ctx, actor, "reset_password", ObjectType.USER, name, exc)
        must_change = actor != name
        user = replace(
            user,
            password_hash=ctx.hasher.hash(password),
            failed_logins=0,
            locked_until=None,
            must_change_password=must_change,
        )
        uow.users.update(user)
        uow.audit.append(
            actor=actor,
            action=AuditAction.PASSWORD_RESET,
            object_type=ObjectType.USER,
            object_id=name,
            payload={"must_change_password": must_change},
            at=ctx.clock.now(),
        )
        end_user_sessions(uow, ctx, actor, name, PASSWORD_RESET)
        uow.commit()


def password_reset_notices(
    uow: UnitOfWork, ctx: Context, votes: Sequence[Vote]
) -> tuple[PasswordResetNotice, ...]:
    """Each vote cast within `ctx.reset_notice_period` after another person reset the signer's
    password or created the signer's account, with that event (read from the audit chain,
    inside the caller's transaction).

    Whoever chose a password knew it until its owner changed it (or could change it
    themselves, for an account they made); the packet of the request shows such a vote, so
    reviewers can judge it. Accounts the operator (`system:...`) made are not flagged.
    """
    found: list[PasswordResetNotice] = []
    resets: dict[str, tuple[AuditRecord, ...]] = {}
    for vote in votes:
        if vote.approver not in resets:
            events = uow.audit.for_object(ObjectType.USER, vote.approver)
            resets[vote.approver] = tuple(
                e
                for e in events
                if e.action in _PASSWORD_CHOSEN_BY_OTHERS
                and _chosen_by_another_person(e.actor, vote.approver)
            )
        since = format_ts(vote.signed_at - ctx.reset_notice_period)
        until = format_ts(vote.signed_at)
        recent = [e for e in resets[vote.approver] if since <= e.ts <= until]
        if recent:
            last = recent[-1]
            event = "account created" if last.action == AuditAction.USER_CREATED else ""
            found.append(
                PasswordResetNotice(
                    vote.approver, _parse_ts(last.ts), last.actor, vote, event or "password reset"
                )
            )
    return tuple(found)


_PASSWORD_CHOSEN_BY_OTHERS = (AuditAction.PASSWORD_RESET, AuditAction.USER_CREATED)


def _chosen_by_another_person(actor: str, name: str) -> bool:
    """Whether `actor`, a person other than `name`, chose `name`'s password."""
    return actor != name and not actor.startswith(SYSTEM_PREFIX)


def list_users(uow: UnitOfWork, ctx: Context, actor: str) -> tuple[User, ...]:
    """Every user by name (callers must not show `password_hash`).

    Raises:
        NotAllowed: The actor may not administer users.
    """
    with uow:
        authorise(uow, ctx, actor, Permission.ADMIN_USERS, "list_users", ObjectType.USER, "*")
        return uow.users.list()


def _parse_ts(ts: str) -> datetime:
    """An audit timestamp (`governance.audit.format_ts`) as an aware UTC datetime."""
    return datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
