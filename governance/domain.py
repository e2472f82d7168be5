"""The approval workflow's vocabulary and rules. Standard library only.

Everything here is a frozen dataclass or a constant; state changes return new objects. The
service layer (governance.service) loads objects through the unit of work, applies these rules
and hands the results back to the repositories.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any, Final

from governance.audit import canonical_json, sha256_hex
from governance.errors import InvalidInput, InvalidTransition, NotAllowed


def _plain_strings(obj: Any) -> None:
    """Store StrEnum members as plain str, so records compare, pickle and persist as text."""
    for name, value in vars(obj).items():
        if isinstance(value, StrEnum):
            object.__setattr__(obj, name, value.value)


# --- metric direction ---------------------------------------------------------------------------

# The one built-in list of metrics where a smaller value is an improvement. The policy uses it when
# the policy file names none; Settings defaults to it, so the review pages colour deltas the same
# way the policy gates judge them. Matching by name or suffix lives in Policy.is_lower_better and
# app.analysis.is_lower_better.
BUILTIN_LOWER_IS_BETTER: Final[tuple[str, ...]] = (
    "rmse",
    "mse",
    "mae",
    "mape",
    "loss",
    "log_loss",
    "logloss",
    "error",
    "max_error",
    "brier",
    "training_time",
)


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

USER_NAME_RE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$")


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
        }
    ),
    SCHEDULER: frozenset({Permission.VIEW, Permission.EXECUTE, Permission.RECONCILE}),
    OIDC_SIGN_IN: frozenset(),  # it only ever creates viewers, through `admit_viewer`
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

    def has_role(self, *roles: str) -> bool:
        return bool(set(self.roles) & set(roles))

    def is_locked(self, now: datetime) -> bool:
        return self.locked_until is not None and now < self.locked_until


def validate_user_name(name: str) -> str:
    """Return the name if usable, else raise InvalidInput (no spaces, no ':', 1-128 chars)."""
    if not USER_NAME_RE.match(name or ""):
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


# --- promotion requests -------------------------------------------------------------------------


class State(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    EXECUTED = "executed"
    EXECUTION_FAILED = "execution_failed"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    SUPERSEDED = "superseded"


class RequestKind(StrEnum):
    NORMAL = "normal"
    BREAK_GLASS = "break_glass"  # executed at once by an admin; opens a follow-up review
    ROLLBACK = "rollback"  # restores the previous holder of a target
    FOLLOW_UP = "follow_up"  # review of a break-glass change; nothing left to execute


class TargetKind(StrEnum):
    ALIAS = "alias"
    STAGE = "stage"


STAGE_TARGETS: Final = ("Staging", "Production", "Archived")

TRANSITIONS: Final[Mapping[State, frozenset[State]]] = {
    State.PENDING: frozenset(
        {State.APPROVED, State.REJECTED, State.CANCELLED, State.EXPIRED, State.SUPERSEDED}
    ),
    State.APPROVED: frozenset({State.EXECUTED, State.EXECUTION_FAILED}),
    State.EXECUTION_FAILED: frozenset({State.EXECUTED}),
    State.EXECUTED: frozenset(),
    State.REJECTED: frozenset(),
    State.CANCELLED: frozenset(),
    State.EXPIRED: frozenset(),
    State.SUPERSEDED: frozenset(),
}
OPEN_STATES: Final = frozenset({State.PENDING})
EXECUTABLE_STATES: Final = frozenset({State.APPROVED, State.EXECUTION_FAILED})


def target_kind_for(target: str) -> TargetKind:
    """Legacy stage names are stages; every other target is an alias."""
    return TargetKind.STAGE if target in STAGE_TARGETS else TargetKind.ALIAS


@dataclass(frozen=True)
class PromotionRequest:
    """A request to move (model, version) to a target, signed by a policy-defined quorum.

    `row_version` is the optimistic concurrency counter (the brief's "version" of the row; the
    name `version` is the model version). Every stored change increments it by one.
    `evidence` is the canonical JSON text of the evidence snapshot, `evidence_hash` its SHA-256,
    and `content_hash` covers what a signer approves (see `content_hash_of`). The content never
    changes: refreshing stale evidence creates a new request that supersedes this one, so every
    vote on a request signed the same content.
    """

    id: str
    model: str
    version: str
    target: str
    target_kind: str
    requester: str
    justification: str
    state: str
    created_at: datetime
    expires_at: datetime
    policy_hash: str
    evidence: str
    evidence_hash: str
    content_hash: str
    kind: str = RequestKind.NORMAL
    related_request_id: str | None = None
    row_version: int = 1
    updated_at: datetime | None = None

    def __post_init__(self) -> None:
        _plain_strings(self)

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES

    def evidence_dict(self) -> dict[str, Any]:
        data = json.loads(self.evidence)
        return data if isinstance(data, dict) else {}


def content_hash_of(
    *,
    model: str,
    version: str,
    target: str,
    target_kind: str,
    justification: str,
    evidence_hash: str,
    policy_hash: str,
) -> str:
    """SHA-256 of the canonical JSON of what a signer approves."""
    return sha256_hex(
        canonical_json(
            {
                "evidence_hash": evidence_hash,
                "justification": justification,
                "model": model,
                "policy_hash": policy_hash,
                "target": target,
                "target_kind": target_kind,
                "version": version,
            }
        )
    )


def transition(request: PromotionRequest, new_state: State, at: datetime) -> PromotionRequest:
    """Return the request in `new_state` with row_version + 1, or raise InvalidTransition."""
    current = State(request.state)
    if new_state not in TRANSITIONS[current]:
        raise InvalidTransition(
            f"request {request.id} is {current.value}: it cannot become {new_state.value}"
        )
    return replace(
        request, state=new_state.value, row_version=request.row_version + 1, updated_at=at
    )


# --- votes, decisions, executions ---------------------------------------------------------------


class VoteDecision(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"


REAUTH_PASSWORD: Final = "password"  # noqa: S105 (a method name, not a secret)
REAUTH_OIDC_RECENT_LOGIN: Final = "oidc-recent-login"


@dataclass(frozen=True)
class Vote:
    """One approver's electronic signature on one request (21 CFR Part 11 manifestation).

    `signer_name` is the printed name at signing, `meaning` the human sentence of what the
    signature means, `content_hash` the request content that was signed.
    """

    request_id: str
    approver: str
    decision: str
    comment: str
    role_at_signing: str
    signed_at: datetime
    meaning: str
    reauth_method: str
    content_hash: str
    signer_name: str = ""

    def __post_init__(self) -> None:
        _plain_strings(self)


def vote_meaning(decision: VoteDecision, request: PromotionRequest) -> str:
    """The sentence a signature stands for, stored with the vote."""
    verb = "Approval" if decision is VoteDecision.APPROVE else "Rejection"
    return (
        f"{verb} of moving {request.model} version {request.version} to "
        f"{request.target_kind} {request.target} (request {request.id})"
    )


class DecisionOutcome(StrEnum):
    APPROVED = "approved"
    REJECTED = "rejected"
    BREAK_GLASS = "break_glass"


@dataclass(frozen=True)
class Decision:
    """The closing of the signing phase of one request (at most one per request)."""

    request_id: str
    outcome: str
    decided_at: datetime
    decided_by: str  # the actor whose vote or action closed it
    approvers: tuple[str, ...]
    quorum: int
    policy_hash: str
    content_hash: str

    def __post_init__(self) -> None:
        _plain_strings(self)


class ExecutionOutcome(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass(frozen=True)
class Execution:
    """One attempt to apply an approved request to the registry.

    `previous_holder` is the version that held the target when the first attempt read it (what a
    rollback restores); None when the target was empty. A retry keeps the first attempt's value,
    so a partly applied first attempt cannot make the candidate its own predecessor.
    """

    request_id: str
    attempt: int
    outcome: str
    at: datetime
    actor: str
    model: str
    version: str
    target: str
    target_kind: str
    previous_holder: str | None = None
    detail: str = ""

    def __post_init__(self) -> None:
        _plain_strings(self)


# --- audit vocabulary ---------------------------------------------------------------------------


class AuditAction:
    """Action names written to the audit chain (stable: exports and reports filter on them)."""

    USER_CREATED: Final = "user_created"
    USER_DISABLED: Final = "user_disabled"
    USER_ENABLED: Final = "user_enabled"
    USER_ROLES_CHANGED: Final = "user_roles_changed"
    PASSWORD_RESET: Final = "password_reset"  # noqa: S105
    LOGIN_SUCCEEDED: Final = "login_succeeded"
    LOGIN_FAILED: Final = "login_failed"
    USER_LOCKED: Final = "user_locked"
    REQUEST_CREATED: Final = "request_created"
    REQUEST_SUPERSEDED: Final = "request_superseded"
    REQUEST_CANCELLED: Final = "request_cancelled"
    REQUEST_EXPIRED: Final = "request_expired"
    REQUEST_APPROVED: Final = "request_approved"
    REQUEST_REJECTED: Final = "request_rejected"
    EVIDENCE_REFRESHED: Final = "evidence_refreshed"
    VOTE_RECORDED: Final = "vote_recorded"
    ACTION_REFUSED: Final = "action_refused"
    EXECUTION_SUCCEEDED: Final = "execution_succeeded"
    EXECUTION_FAILED: Final = "execution_failed"
    BREAK_GLASS: Final = "break_glass"
    FOLLOW_UP_OPENED: Final = "follow_up_opened"
    ROLLBACK_REQUESTED: Final = "rollback_requested"
    POLICY_LOADED: Final = "policy_loaded"
    POLICY_REJECTED: Final = "policy_rejected"
    OUT_OF_BAND_CHANGE: Final = "out_of_band_change"
    OUT_OF_BAND_CLEARED: Final = "out_of_band_cleared"
    AUDIT_VERIFIED: Final = "audit_verified"
    AUDIT_EXPORTED: Final = "audit_exported"


class ObjectType:
    REQUEST: Final = "request"
    USER: Final = "user"
    POLICY: Final = "policy"
    TARGET: Final = "target"  # object_id: "<model>/<kind>/<target>"
    AUDIT: Final = "audit"
    SESSION: Final = "session"


def target_object_id(model: str, target_kind: str, target: str) -> str:
    """The audit object id of one registry target."""
    return f"{model}/{target_kind}/{target}"


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


# --- results of the use cases (plain data, safe to show in pages) -----------------------------


@dataclass(frozen=True)
class ExecutionResult:
    """What `execute` did: `executed_now` False with state executed means it had been done."""

    request: PromotionRequest
    execution: Execution | None
    executed_now: bool

    @property
    def succeeded(self) -> bool:
        return self.request.state == State.EXECUTED


@dataclass(frozen=True)
class SignOffResult:
    """What `sign_off` did. `already_recorded` True: a repeat vote, nothing changed."""

    request: PromotionRequest
    vote: Vote
    already_recorded: bool
    approvals: int
    quorum: int
    execution: ExecutionResult | None = None

    @property
    def message(self) -> str:
        if self.already_recorded:
            return "already recorded"
        return f"{self.vote.decision} recorded ({self.approvals} of {self.quorum} approvals)"


@dataclass(frozen=True)
class BreakGlassResult:
    request: PromotionRequest
    follow_up: PromotionRequest
    execution: ExecutionResult


@dataclass(frozen=True)
class Finding:
    """A difference between the registry and the ledger for one target."""

    model: str
    target_kind: str
    target: str
    registry_versions: tuple[str, ...]
    ledger_version: str | None
    newly_recorded: bool


@dataclass(frozen=True)
class RequestDetails:
    request: PromotionRequest
    votes: tuple[Vote, ...]
    decision: Decision | None
    executions: tuple[Execution, ...]
    quorum: int
    approvals: int
    approver_roles: tuple[str, ...]
