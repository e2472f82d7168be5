"""The approval workflow's vocabulary and rules. Standard library only.

Everything here is a frozen dataclass or a constant; state changes return new objects. The
service layer (governance.service) loads objects through the unit of work, applies these rules
and hands the results back to the repositories.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any, Final

from governance.access import (  # re-exported: the vocabulary has one import path
    ADMIN as ADMIN,
    ADMIN_MAY_NOT_SIGN as ADMIN_MAY_NOT_SIGN,
    APPROVER as APPROVER,
    AUDITOR as AUDITOR,
    AUTHORISATION_MATRIX as AUTHORISATION_MATRIX,
    CLI_OPERATOR as CLI_OPERATOR,
    MLFLOW_WEBHOOKS as MLFLOW_WEBHOOKS,
    OIDC_SIGN_IN as OIDC_SIGN_IN,
    PERMISSION_VERBS as PERMISSION_VERBS,
    REQUESTER as REQUESTER,
    ROLES as ROLES,
    SCHEDULER as SCHEDULER,
    SIGNER_ROLE_PERMISSIONS as SIGNER_ROLE_PERMISSIONS,
    SYSTEM_PERMISSIONS as SYSTEM_PERMISSIONS,
    SYSTEM_PREFIX as SYSTEM_PREFIX,
    USER_NAME_RE as USER_NAME_RE,
    VIEWER as VIEWER,
    BrowserSession as BrowserSession,
    Permission as Permission,
    Principal as Principal,
    User as User,
    is_allowed as is_allowed,
    permissions_of as permissions_of,
    role_for as role_for,
    signing_role as signing_role,
    validate_roles as validate_roles,
    validate_user_name as validate_user_name,
)
from governance.audit import canonical_json, sha256_hex
from governance.errors import InvalidTransition


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
    # "" when the stored row's seal verified (or the object was made here); else what is wrong
    # with it (see governance.row_seals). Not part of equality.
    seal_problem: str = field(default="", compare=False)

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
    # "" when the stored row's seal verified (or the object was made here); else what is wrong
    # with it (see governance.row_seals). Not part of equality.
    seal_problem: str = field(default="", compare=False)

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
    # "" when the stored row's seal verified (or the object was made here); else what is wrong
    # with it (see governance.row_seals). Not part of equality.
    seal_problem: str = field(default="", compare=False)

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
    # "" when the stored row's seal verified (or the object was made here); else what is wrong
    # with it (see governance.row_seals). Not part of equality.
    seal_problem: str = field(default="", compare=False)

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
    PASSWORD_CHANGED: Final = "password_changed"  # noqa: S105
    SESSION_STARTED: Final = "session_started"
    SESSION_REVOKED: Final = "session_revoked"
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
    OUT_OF_BAND_REVERTED: Final = "out_of_band_reverted"  # put back on the governed holder
    OUT_OF_BAND_REVERT_FAILED: Final = "out_of_band_revert_failed"
    MLFLOW_DELIVERY_REFUSED: Final = "mlflow_delivery_refused"  # forged, stale or replayed
    AUDIT_VERIFIED: Final = "audit_verified"
    AUDIT_EXPORTED: Final = "audit_exported"
    MONITORING_BATCH_RECORDED: Final = "monitoring_batch_recorded"
    MONITORING_ALERT: Final = "monitoring_alert"
    MONITORING_FINDING_CLOSED: Final = "monitoring_finding_closed"
    # A row or entry whose seal fails: written outside Countersign (see governance.seals).
    TAMPERING_DETECTED: Final = "tampering_detected"
    # Entries and rows from before sealed records, sealed once by an operator.
    AUDIT_SEALED_EXISTING: Final = "audit_sealed_existing"


class ObjectType:
    REQUEST: Final = "request"
    USER: Final = "user"
    POLICY: Final = "policy"
    TARGET: Final = "target"  # object_id: "<model>/<kind>/<target>"
    AUDIT: Final = "audit"
    SESSION: Final = "session"
    RECEIVER: Final = "receiver"  # object_id: the refusal reason (see app/receiver)
    MODEL_VERSION: Final = "model_version"  # object_id: "<model>/<version>" (monitoring)


def target_object_id(model: str, target_kind: str, target: str) -> str:
    """The audit object id of one registry target."""
    return f"{model}/{target_kind}/{target}"


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
    # Approvers whose stored vote failed its seal: written outside Countersign, not counted.
    unsealed_votes: tuple[str, ...] = ()

    @property
    def message(self) -> str:
        if self.already_recorded:
            return "already recorded"
        text = f"{self.vote.decision} recorded ({self.approvals} of {self.quorum} approvals)"
        if self.unsealed_votes:
            names = ", ".join(self.unsealed_votes)
            text += (
                f"; not counted: the stored vote of {names}, which fails its seal (written "
                "outside Countersign; recorded as tampering)"
            )
        return text


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
class PasswordResetNotice:
    """A vote cast soon after another person reset the signer's password or created the
    signer's account (see `governance.users.password_reset_notices`): whoever chose the password
    knew it until it changed. `event` is "password reset" or "account created"."""

    user: str
    reset_at: datetime
    reset_by: str
    vote: Vote
    event: str = "password reset"


@dataclass(frozen=True)
class RequestDetails:
    request: PromotionRequest
    votes: tuple[Vote, ...]
    decision: Decision | None
    executions: tuple[Execution, ...]
    quorum: int
    approvals: int
    approver_roles: tuple[str, ...]
    password_resets: tuple[PasswordResetNotice, ...] = ()  # votes cast soon after a reset
