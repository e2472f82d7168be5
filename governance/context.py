"""What every use case needs besides the unit of work, and the guards they share.

The guards write the audit event of a refusal and COMMIT it before raising: the unit of work
rolls back on an exception, and a refusal must still be on the record.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, NoReturn

from governance.domain import (
    SYSTEM_PERMISSIONS,
    SYSTEM_PREFIX,
    AuditAction,
    Permission,
    Principal,
    User,
    permissions_of,
)
from governance.errors import GovernanceError, InvalidInput, NotAllowed
from governance.monitoring_ports import MonitoringSource
from governance.policy import Policy
from governance.ports import Clock, EvidenceSource, ModelRegistry, PasswordHasher
from governance.store_ports import UnitOfWork

ANONYMOUS = "anonymous"


def new_request_id() -> str:
    """A short random id that is easy to type on a command line (48 bits)."""
    return secrets.token_hex(6)


@dataclass(frozen=True)
class Context:
    """The ports and settings the use cases share; built once by the composition root.

    Attributes:
        registry: The model registry (MLflow through app/mlflow_gateway).
        clock: Timezone-aware UTC time.
        policy: The validated policy in force (see `service.load_policy`).
        hasher: Password hashing (argon2 in production).
        evidence: Optional drift and importance summaries.
        monitoring: Optional monitoring figures (batches per version) for monitoring gates.
        lockout_attempts: Failed password checks in a row that lock an account.
        lockout_duration: How long a locked account stays locked.
        new_id: Request id factory (tests inject a deterministic one).
        reset_notice_period: How long after someone else reset a person's password their
            votes carry a notice of it.
        session_idle: A browser session ends after this long without activity (zero or less:
            never for idleness).
        session_lifetime: A browser session ends this long after sign-in, whatever happens.
    """

    registry: ModelRegistry
    clock: Clock
    policy: Policy
    hasher: PasswordHasher
    evidence: EvidenceSource | None = None
    monitoring: MonitoringSource | None = None
    lockout_attempts: int = 5
    lockout_duration: timedelta = timedelta(minutes=15)
    new_id: Callable[[], str] = field(default=new_request_id)
    reset_notice_period: timedelta = timedelta(days=7)
    session_idle: timedelta = timedelta(minutes=30)
    session_lifetime: timedelta = timedelta(hours=12)


@dataclass(frozen=True)
class Reauthentication:
    """How a signer proved who they are at the moment of signing.

    `method` "password" makes the service verify `password` against the stored hash. Other
    methods (e.g. "oidc-recent-login") are attested by the identity adapter that builds this
    object (it checked the sign-in age); the service records them as given.
    """

    method: str
    password: str | None = None


def refuse(
    uow: UnitOfWork,
    ctx: Context,
    actor: str,
    attempted: str,
    object_type: str,
    object_id: str,
    error: GovernanceError,
    **details: Any,
) -> NoReturn:
    """Record `action_refused` for an attempted action, commit it, and raise `error`.

    Must be called inside an open `with uow:` block; anything else written in that transaction
    is committed too, so call it before making changes.
    """
    uow.audit.append(
        actor=actor,
        action=AuditAction.ACTION_REFUSED,
        object_type=object_type,
        object_id=object_id,
        payload={
            "attempted": attempted,
            "error": type(error).__name__,
            "reason": str(error),
            **details,
        },
        at=ctx.clock.now(),
    )
    uow.commit()
    raise error


def load_principal(
    uow: UnitOfWork, actor: str, signer_roles: frozenset[str] = frozenset()
) -> tuple[Principal, User | None]:
    """The acting principal with its permissions, and the stored user for people.

    `signer_roles` are the policy's approver roles (`Policy.signer_roles()`): a custom one grants
    viewing and signing.

    Raises:
        NotAllowed: Unknown user, disabled user, or unknown system principal.
    """
    if actor.startswith(SYSTEM_PREFIX):
        perms = SYSTEM_PERMISSIONS.get(actor)
        if perms is None:
            raise NotAllowed(f"unknown system principal {actor!r}")
        return Principal(name=actor, display_name=actor, permissions=perms), None
    user = uow.users.find(actor)
    if user is None or user.disabled:
        raise NotAllowed(f"{actor!r} is not an active user")
    principal = Principal(
        name=user.name,
        roles=user.roles,
        display_name=user.display_name or user.name,
        permissions=permissions_of(user.roles, signer_roles),
    )
    return principal, user


def authorise(
    uow: UnitOfWork,
    ctx: Context,
    actor: str,
    permission: Permission | None,
    attempted: str,
    object_type: str,
    object_id: str,
) -> tuple[Principal, User | None]:
    """Load the actor and check one permission of the matrix; refusals are audited.

    `permission` None only checks that the actor is an active principal.
    """
    try:
        principal, user = load_principal(uow, actor, ctx.policy.signer_roles())
        if permission is not None:
            principal.require(permission)
    except NotAllowed as exc:
        refuse(uow, ctx, actor, attempted, object_type, object_id, exc)
    return principal, user


def require_text(value: str, what: str) -> str:
    """A mandatory free text (comment, justification), stripped; InvalidInput when blank."""
    text = (value or "").strip()
    if not text:
        raise InvalidInput(f"{what} is mandatory")
    if len(text) > 4000:
        raise InvalidInput(f"{what} is too long (4,000 characters at most)")
    return text
