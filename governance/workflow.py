"""Opening promotion requests: evidence capture, gates, and superseding the open request."""

from __future__ import annotations

from datetime import datetime

from governance.audit import AuditRecord
from governance.context import Context, authorise, refuse, require_text
from governance.domain import (
    AuditAction,
    ObjectType,
    Permission,
    PromotionRequest,
    RequestKind,
    State,
    content_hash_of,
    target_kind_for,
    target_object_id,
    transition,
)
from governance.errors import (
    GateFailed,
    GovernanceError,
    InvalidInput,
    NotFound,
    RegistryUnavailable,
)
from governance.evidence import Evidence, capture
from governance.store_ports import UnitOfWork
from governance.targets import check_target as check_target_name, targets_named


def check_target(target: str, ctx: Context) -> str:
    """The target, if it is a stage, a target the policy names or a valid alias name.

    Raises:
        InvalidInput: Anything else (see `governance.targets`).
    """
    return check_target_name(target, targets_named(ctx.policy.document))


def capture_or_refuse(
    uow: UnitOfWork,
    ctx: Context,
    actor: str,
    attempted: str,
    *,
    model: str,
    version: str,
    target: str,
    kind: str,
) -> Evidence:
    """Capture evidence outside any transaction; a registry refusal is audited and re-raised."""
    target_kind = target_kind_for(target)
    rule = ctx.policy.rule_for(model, target, kind)
    try:
        return capture(
            ctx.registry,
            ctx.policy,
            rule,
            model=model,
            version=version,
            target=target,
            target_kind=target_kind,
            source=ctx.evidence,
            monitoring=ctx.monitoring,
        )
    except (NotFound, RegistryUnavailable) as exc:
        with uow:
            refuse(
                uow,
                ctx,
                actor,
                attempted,
                ObjectType.TARGET,
                target_object_id(model, target_kind, target),
                exc,
                model=model,
                version=version,
            )


def open_request(
    uow: UnitOfWork,
    ctx: Context,
    actor: str,
    evidence: Evidence,
    justification: str,
    *,
    kind: str = RequestKind.NORMAL,
    related: str | None = None,
) -> PromotionRequest:
    """Insert a pending request (inside the caller's transaction), superseding the open one.

    Follow-up reviews never supersede and are never superseded.
    """
    data = evidence.data
    model, version, target = data["model"], data["version"], data["target"]
    target_kind = data["target_kind"]
    now = ctx.clock.now()
    old = None
    if kind != RequestKind.FOLLOW_UP:
        old = uow.requests.pending_for_target(model, target_kind, target)
        if old is not None:
            old = transition(uow.lock_request(old.id), State.SUPERSEDED, now)
            uow.requests.update(old)
    rule = ctx.policy.rule_for(model, target, kind)
    request = PromotionRequest(
        id=ctx.new_id(),
        model=model,
        version=version,
        target=target,
        target_kind=target_kind,
        requester=actor,
        justification=justification,
        state=State.PENDING,
        created_at=now,
        expires_at=now + rule.expires_after,
        policy_hash=ctx.policy.hash,
        evidence=evidence.text,
        evidence_hash=evidence.hash,
        content_hash=content_hash_of(
            model=model,
            version=version,
            target=target,
            target_kind=target_kind,
            justification=justification,
            evidence_hash=evidence.hash,
            policy_hash=ctx.policy.hash,
        ),
        kind=kind,
        related_request_id=related,
        updated_at=now,
    )
    uow.requests.add(request)
    if old is not None:
        request_event(
            uow, actor, AuditAction.REQUEST_SUPERSEDED, old, now, superseded_by=request.id
        )
    request_event(
        uow,
        actor,
        AuditAction.REQUEST_CREATED,
        request,
        now,
        model=model,
        version=version,
        target=target,
        target_kind=target_kind,
        kind=kind,
        related_request_id=related,
        justification=justification,
        evidence_hash=evidence.hash,
        content_hash=request.content_hash,
        policy_hash=ctx.policy.hash,
        gates=data.get("gates", []),
        quorum=rule.quorum,
    )
    if kind == RequestKind.ROLLBACK:
        request_event(uow, actor, AuditAction.ROLLBACK_REQUESTED, request, now, undoes=related)
    return request


def request_event(
    uow: UnitOfWork, actor: str, action: str, req: PromotionRequest, at: datetime, **payload: object
) -> AuditRecord:
    return uow.audit.append(
        actor=actor,
        action=action,
        object_type=ObjectType.REQUEST,
        object_id=req.id,
        payload={"state": req.state, **payload},
        at=at,
    )


def request_promotion(
    uow: UnitOfWork,
    ctx: Context,
    actor: str,
    model: str,
    version: str,
    target: str,
    justification: str,
) -> PromotionRequest:
    """Ask to move (model, version) to a target; captures the evidence and checks the gates.

    A pending request for the same model and target is superseded.

    Raises:
        NotAllowed: The actor may not request promotions.
        InvalidInput: Blank justification, bad target, or the version already holds the target.
        UnknownModel: No such model or version.
        RegistryUnavailable: The registry cannot be reached.
        GateFailed: A policy gate does not pass (the message lists them).
    """
    return new_request(uow, ctx, actor, model, str(version), target, justification)


def new_request(
    uow: UnitOfWork,
    ctx: Context,
    actor: str,
    model: str,
    version: str,
    target: str,
    justification: str,
    kind: str = RequestKind.NORMAL,
    related: str | None = None,
) -> PromotionRequest:
    attempted = "request_rollback" if kind == RequestKind.ROLLBACK else "request_promotion"
    obj = target_object_id(model, target_kind_for(target or "?"), target)
    with uow:
        authorise(uow, ctx, actor, Permission.REQUEST, attempted, ObjectType.TARGET, obj)
        try:
            target = check_target(target, ctx)
            justification = require_text(justification, "a justification")
        except GovernanceError as exc:
            refuse(uow, ctx, actor, attempted, ObjectType.TARGET, obj, exc)
    evidence = capture_or_refuse(
        uow, ctx, actor, attempted, model=model, version=version, target=target, kind=kind
    )
    with uow:
        authorise(uow, ctx, actor, Permission.REQUEST, attempted, ObjectType.TARGET, obj)
        problem: GovernanceError | None = None
        if evidence.current_version == version:
            problem = InvalidInput(f"{model} version {version} already holds {target}")
        elif not evidence.gates_passed:
            problem = GateFailed("policy gates failed: " + "; ".join(evidence.failed_gates))
        if problem is not None:
            refuse(uow, ctx, actor, attempted, ObjectType.TARGET, obj, problem)
        request = open_request(uow, ctx, actor, evidence, justification, kind=kind, related=related)
        uow.commit()
        return request
