"""Who may do what: roles, the authorisation matrix, users and principals. Standard library only.

`governance.domain` re-exports every name here, so callers keep importing the vocabulary from one
place.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Final

from governance.errors import InvalidInput, NotAllowed

# --- roles and the authorisation matrix -------------------------------------------------------

VIEWER: Final = "viewer"
REQUESTER: Final = "requester"
APPROVER: Final = "approver"
ADMIN: Final = "admin"
AUDITOR: Final = "auditor"
ROLES: Final = (VIEWER, REQUESTER, APPROVER, ADMIN, AUDITOR)

# Principals that are not people: the CLI run by an operator with shell access to the server, and
# scheduled housekeeping. User names cannot contain ":", so these can never collide with a user.
SYSTEM_PREFIX: Final = "system:"
CLI_OPERATOR: Final = "system:cli"
SCHEDULER: Final = "system:scheduler"
# Admits a person whom the OpenID Connect provider vouched for, at their first sign-in, as a viewer.
OIDC_SIGN_IN: Final = "system:oidc"
# The receiver of MLflow's own registry webhooks: compares what MLflow reports with the ledger and
# puts targets back where the policy says so. It never requests, signs or administers.
MLFLOW_WEBHOOKS: Final = "system:mlflow-webhooks"

# Checked with fullmatch: `$` would also accept a trailing newline ("erin\n" prints like "erin").
USER_NAME_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}")


class Permission(StrEnum):
    """What an actor may do. The service checks one of these before every action."""

    VIEW = "view"  # browse runs, models, requests
    REQUEST = "request"  # create, cancel (own) and roll back promotion requests
    SIGN = "sign"  # approve or reject (the policy may name further approver roles per target)
    EXECUTE = "execute"  # retry the execution of an approved request
    BREAK_GLASS = "break_glass"  # promote at once, outside the quorum
    ADMIN_USERS = "admin_users"  # create and disable users, reset passwords
    READ_AUDIT = "read_audit"  # read and verify the audit log
    EXPORT_AUDIT = "export_audit"  # build audit exports
    RECONCILE = "reconcile"  # compare the registry with the ledger and record differences
    ENFORCE = "enforce"  # put a target moved outside the ledger back on its governed holder
    MONITOR = "monitor"  # record production batches and close monitoring findings


PERMISSION_VERBS: Final[Mapping[Permission, str]] = {
    Permission.VIEW: "view requests and models",
    Permission.REQUEST: "request promotions",
    Permission.SIGN: "sign promotion requests",
    Permission.EXECUTE: "execute approved requests",
    Permission.BREAK_GLASS: "break glass",
    Permission.ADMIN_USERS: "administer users",
    Permission.READ_AUDIT: "read the audit log",
    Permission.EXPORT_AUDIT: "export the audit log",
    Permission.RECONCILE: "reconcile the registry with the ledger",
    Permission.ENFORCE: "put registry targets back on their governed holders",
    Permission.MONITOR: "record monitoring batches and close monitoring findings",
}

AUTHORISATION_MATRIX: Final[Mapping[Permission, frozenset[str]]] = {
    Permission.VIEW: frozenset(ROLES),
    Permission.REQUEST: frozenset({REQUESTER, ADMIN}),
    Permission.SIGN: frozenset({APPROVER}),
    Permission.EXECUTE: frozenset({REQUESTER, APPROVER, ADMIN}),
    Permission.BREAK_GLASS: frozenset({ADMIN}),
    Permission.ADMIN_USERS: frozenset({ADMIN}),
    Permission.READ_AUDIT: frozenset({ADMIN, AUDITOR}),
    Permission.EXPORT_AUDIT: frozenset({ADMIN, AUDITOR}),
    Permission.RECONCILE: frozenset({ADMIN, AUDITOR}),
    Permission.ENFORCE: frozenset({ADMIN}),
    Permission.MONITOR: frozenset({REQUESTER, APPROVER, ADMIN}),
}

# The CLI operator already has the server's shell: it may administer, execute, reconcile and
# verify, but it never signs, requests or breaks glass (those need a named person).
SYSTEM_PERMISSIONS: Final[Mapping[str, frozenset[Permission]]] = {
    CLI_OPERATOR: frozenset(
        {
            Permission.VIEW,
            Permission.ADMIN_USERS,
            Permission.EXECUTE,
            Permission.READ_AUDIT,
            Permission.EXPORT_AUDIT,
            Permission.RECONCILE,
            Permission.ENFORCE,
            Permission.MONITOR,
        }
    ),
    SCHEDULER: frozenset(
        {
            Permission.VIEW,
            Permission.EXECUTE,
            Permission.RECONCILE,
            Permission.ENFORCE,
            Permission.MONITOR,
        }
    ),
    OIDC_SIGN_IN: frozenset(),  # it only ever creates viewers, through `admit_viewer`
    MLFLOW_WEBHOOKS: frozenset({Permission.VIEW, Permission.RECONCILE, Permission.ENFORCE}),
}


# A role the policy names as an approver role (e.g. `risk` for "credit-*") grants these; which
# requests its holder may sign is decided per rule by `signing_role`.
SIGNER_ROLE_PERMISSIONS: Final = frozenset({Permission.VIEW, Permission.SIGN})


def permissions_of(
    roles: tuple[str, ...] | frozenset[str], signer_roles: frozenset[str] = frozenset()
) -> frozenset[Permission]:
    """Every permission the given roles grant together.

    `signer_roles` are the approver roles the policy names; a custom one (not built in) grants
    viewing and signing. A built-in role keeps exactly its row of the matrix.
    """
    held = set(roles)
    found = {p for p, allowed in AUTHORISATION_MATRIX.items() if held & allowed}
    if held & (signer_roles - set(ROLES)):
        found |= SIGNER_ROLE_PERMISSIONS
    return frozenset(found)


def is_allowed(
    roles: tuple[str, ...] | frozenset[str],
    permission: Permission,
    signer_roles: frozenset[str] = frozenset(),
) -> bool:
    """True when at least one of the roles grants the permission (see `permissions_of`)."""
    return permission in permissions_of(roles, signer_roles)


# Administering and signing are separate duties (the policy's `admins_may_sign`, default false):
# an admin can reset a signer's password or grant the approver role, so an admin who could also
# sign could make and use a signature alone.
ADMIN_MAY_NOT_SIGN: Final = (
    "an administrator may not sign: administering and signing are separate duties "
    "(the policy's admins_may_sign is false)"
)


# --- users --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class User:
    """A person who signs in. Never deleted (the audit log refers to them): disabled instead."""

    name: str
    display_name: str
    roles: tuple[str, ...]
    password_hash: str
    disabled: bool = False
    failed_logins: int = 0
    locked_until: datetime | None = None
    created_at: datetime | None = None
    # Set when an admin resets the password: the next sign-in must choose a new one.
    must_change_password: bool = False

    def has_role(self, *roles: str) -> bool:
        return bool(set(self.roles) & set(roles))

    def is_locked(self, now: datetime) -> bool:
        return self.locked_until is not None and now < self.locked_until


@dataclass(frozen=True)
class BrowserSession:
    """A signed-in browser, kept server-side (see governance.sessions).

    The browser holds only a random secret in an HttpOnly cookie; the database holds its SHA-256
    (`secret_hash`), never the secret. `id` is a public reference (shown to admins, written to
    the audit log); it grants nothing. Right after sign-in the browser has no cookie yet, only a
    one-time grant (`grant_hash`, valid until `grant_expires_at`) to collect it with.
    """

    id: str
    user: str
    created_at: datetime
    last_seen_at: datetime
    idle_expires_at: datetime
    expires_at: datetime  # the absolute end, whatever the activity
    user_agent: str = ""
    secret_hash: str = ""
    grant_hash: str = ""
    grant_expires_at: datetime | None = None
    revoked_at: datetime | None = None
    revoked_by: str = ""
    revoke_reason: str = ""

    def ended(self, now: datetime) -> str:
        """Why the session no longer admits anyone ("" while it does): revoked, idle, absolute."""
        if self.revoked_at is not None:
            return "revoked"
        if now >= self.expires_at:
            return "absolute"
        if now >= self.idle_expires_at:
            return "idle"
        return ""


def validate_user_name(name: str) -> str:
    """Return the name if usable, else raise InvalidInput (no spaces, no ':', 1-128 chars)."""
    if not USER_NAME_RE.fullmatch(name or ""):
        raise InvalidInput(
            f"invalid user name {name!r}: use letters, digits and . _ @ + - (up to 128)"
        )
    return name


def validate_roles(roles: tuple[str, ...], extra_roles: frozenset[str] = frozenset()) -> None:
    """Raise InvalidInput unless every role is built in or named by the policy."""
    if not roles:
        raise InvalidInput("a user needs at least one role")
    unknown = [r for r in roles if r not in ROLES and r not in extra_roles]
    if unknown:
        raise InvalidInput(f"unknown role {unknown[0]!r}: expected one of {', '.join(ROLES)}")


@dataclass(frozen=True)
class Principal:
    """Who is acting: a user (with stored roles) or a system principal."""

    name: str
    roles: tuple[str, ...] = ()
    display_name: str = ""
    permissions: frozenset[Permission] = field(default_factory=frozenset)

    def require(self, permission: Permission) -> None:
        """Raise NotAllowed unless the principal holds the permission."""
        if permission not in self.permissions:
            raise NotAllowed(f"{self.name} is not allowed to {PERMISSION_VERBS[permission]}")


def role_for(
    permission: Permission, user_roles: tuple[str, ...], policy_roles: tuple[str, ...]
) -> str | None:
    """The role under which a user may act where the POLICY names the roles, or None.

    The policy decides (approver roles of a target, break-glass roles), but it can only narrow
    the matrix for built-in roles: a built-in role counts only when the matrix grants it the
    permission (so a policy cannot make a viewer an approver), while custom policy roles such as
    `risk` count wherever the policy names them.
    """
    for role in user_roles:
        if role in policy_roles and (role not in ROLES or role in AUTHORISATION_MATRIX[permission]):
            return role
    return None


def signing_role(user_roles: tuple[str, ...], rule_roles: tuple[str, ...]) -> str | None:
    """The role a user signs under for a rule's approver roles, or None."""
    return role_for(Permission.SIGN, user_roles, rule_roles)
