"""The governance use cases: one import for the composition root, the CLI and the pages' facade.

Every function takes the unit of work, the Context (ports and policy) and the acting principal
explicitly, authorises the actor against the matrix (governance.domain.AUTHORISATION_MATRIX)
and writes its audit events in the same transaction as its changes. Refusals of authorised
actions are audited too. The functions live in small modules and are re-exported here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from governance.audit import AuditRecord, VerifyResult, verify_chain
from governance.breakglass import break_glass
from governance.context import Context, Reauthentication, authorise, refuse
from governance.domain import (
    AuditAction,
    ObjectType,
    Permission,
    PromotionRequest,
    RequestDetails,
    VoteDecision,
)
from governance.enforcement import enforce, put_back, record_refused_delivery
from governance.errors import NotFound, PolicyError
from governance.execution import execute, provenance_tags, reconcile
from governance.history import model_history
from governance.lifecycle import cancel, expire_due, refresh_evidence, request_rollback
from governance.policy import Policy, load_policy_file, policy_name
from governance.ports import Clock
from governance.sessions import (
    check_session,
    claim_cookie,
    end_session,
    list_sessions,
    resume_session,
    start_session,
)
from governance.signin import authenticate, change_password, record_external_sign_in
from governance.signing import sign_off
from governance.store_ports import UnitOfWork
from governance.users import (
    admit_viewer,
    create_user,
    disable_user,
    enable_user,
    list_users,
    password_reset_notices,
    reset_password,
    set_roles,
)
from governance.workflow import request_promotion

__all__ = [
    "Context",
    "Reauthentication",
    "admit_viewer",
    "authenticate",
    "break_glass",
    "cancel",
    "change_password",
    "check_session",
    "claim_cookie",
    "create_user",
    "disable_user",
    "enable_user",
    "end_session",
    "enforce",
    "execute",
    "expire_due",
    "get_request",
    "list_requests",
    "list_sessions",
    "list_users",
    "load_policy",
    "model_history",
    "password_reset_notices",
    "provenance_tags",
    "put_back",
    "reconcile",
    "record_export",
    "record_external_sign_in",
    "record_refused_delivery",
    "refresh_evidence",
    "request_promotion",
    "request_rollback",
    "reset_password",
    "resume_session",
    "set_roles",
    "sign_off",
    "start_session",
    "verify_audit",
]

ACTIVE_POLICY = "active"


def load_policy(uow: UnitOfWork, clock: Clock, path: str | Path, actor: str) -> Policy:
    """Load and validate the policy file and record it in the audit log.

    A `policy_loaded` event is written when the hash differs from the last one recorded (so a
    restart with the same policy adds nothing); an invalid file writes `policy_rejected`.

    Raises:
        PolicyError: The file is invalid; the message names the file and the key.
    """
    try:
        policy = load_policy_file(path)
    except PolicyError as exc:
        # The log (and every export of it) names the file, never the server path it lives at.
        name = policy_name(str(path))
        with uow:
            uow.audit.append(
                actor=actor,
                action=AuditAction.POLICY_REJECTED,
                object_type=ObjectType.POLICY,
                object_id=ACTIVE_POLICY,
                payload={"source": name, "reason": str(exc).replace(str(path), name)},
                at=clock.now(),
            )
            uow.commit()
        raise
    with uow:
        last = None
        for rec in uow.audit.for_object(ObjectType.POLICY, ACTIVE_POLICY):
            if rec.action == AuditAction.POLICY_LOADED:
                last = rec
        if last is None or f'"hash":"{policy.hash}"' not in last.payload:
            uow.audit.append(
                actor=actor,
                action=AuditAction.POLICY_LOADED,
                object_type=ObjectType.POLICY,
                object_id=ACTIVE_POLICY,
                payload={"source": policy.name, "hash": policy.hash},
                at=clock.now(),
            )
            uow.commit()
    return policy


def verify_audit(
    uow: UnitOfWork,
    ctx: Context,
    actor: str,
    verifier: Callable[[], VerifyResult] | None = None,
) -> VerifyResult:
    """Recompute the whole chain once; the result names the first broken seq. Records the check.

    The check runs between two short transactions (authorise, then record), so no write lock
    is held while the log is read.

    Args:
        verifier: A read-only pass over the store (e.g. `SqlStore.verify`: streamed from one
            snapshot, and it also compares the chain-head row with the last entry). Without
            one, the chain is recomputed through the unit of work.

    Raises:
        NotAllowed: The actor may not read the audit log (the refusal is audited).
    """
    with uow:
        authorise(uow, ctx, actor, Permission.READ_AUDIT, "verify_audit", ObjectType.AUDIT, "*")
    if verifier is not None:
        result = verifier()
    else:
        with uow:
            result = verify_chain(uow.audit.iterate())
    with uow:
        uow.audit.append(
            actor=actor,
            action=AuditAction.AUDIT_VERIFIED,
            object_type=ObjectType.AUDIT,
            object_id="chain",
            payload=result.as_dict(),
            at=ctx.clock.now(),
        )
        uow.commit()
    return result


def record_export(
    uow: UnitOfWork,
    ctx: Context,
    actor: str,
    *,
    scope: Mapping[str, Any],
    first_seq: int,
    last_seq: int,
    manifest_sha256: str,
    files: Mapping[str, str],
) -> AuditRecord:
    """Record an audit export (who, scope, exported range, file and manifest hashes).

    Appended after the exported range (the export is bounded by the head it read first), so
    the bundle's own chain stays verifiable and the next export covers this event.

    Raises:
        NotAllowed: The actor may not export the audit log (the refusal is audited).
    """
    with uow:
        authorise(
            uow, ctx, actor, Permission.EXPORT_AUDIT, "export_audit", ObjectType.AUDIT, "chain"
        )
        record = uow.audit.append(
            actor=actor,
            action=AuditAction.AUDIT_EXPORTED,
            object_type=ObjectType.AUDIT,
            object_id="chain",
            payload={
                "scope": dict(scope),
                "first_seq": first_seq,
                "last_seq": last_seq,
                "manifest_sha256": manifest_sha256,
                "files": dict(sorted(files.items())),
            },
            at=ctx.clock.now(),
        )
        uow.commit()
        return record


def get_request(uow: UnitOfWork, ctx: Context, actor: str, request_id: str) -> RequestDetails:
    """One request with its votes, decision, execution attempts and quorum progress.

    Raises:
        NotAllowed: The actor may not view.
        NotFound: No such request.
    """
    with uow:
        authorise(uow, ctx, actor, Permission.VIEW, "view", ObjectType.REQUEST, request_id)
        try:
            request = uow.requests.get(request_id)
        except NotFound as exc:
            refuse(uow, ctx, actor, "view", ObjectType.REQUEST, request_id, exc)
        votes = uow.votes.for_request(request_id)
        rule = ctx.policy.rule_for(request.model, request.target, request.kind)
        return RequestDetails(
            request=request,
            votes=votes,
            decision=uow.decisions.get(request_id),
            executions=uow.executions.for_request(request_id),
            quorum=rule.quorum,
            approvals=sum(1 for v in votes if v.decision == VoteDecision.APPROVE),
            approver_roles=rule.approver_roles,
            password_resets=password_reset_notices(uow, ctx, votes),
        )


def list_requests(
    uow: UnitOfWork,
    ctx: Context,
    actor: str,
    *,
    state: str | None = None,
    model: str | None = None,
    limit: int | None = None,
) -> tuple[PromotionRequest, ...]:
    """Requests newest first, optionally by state and model.

    Raises:
        NotAllowed: The actor may not view.
    """
    with uow:
        authorise(uow, ctx, actor, Permission.VIEW, "view", ObjectType.REQUEST, "*")
        return uow.requests.find(state=state, model=model, limit=limit)
