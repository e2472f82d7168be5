"""Opening and closing promotion requests: request, refresh, cancel, expire, roll back."""

from __future__ import annotations

from datetime import datetime

from governance.context import Context, authorise, refuse, require_text
from governance.domain import (
    AuditAction,
    ObjectType,
    Permission,
    PromotionRequest,
    RequestKind,
    State,
    content_hash_of,
    permissions_of,
    target_kind_for,
    target_object_id,
    transition,
)
from governance.errors import (
    GateFailed,
    GovernanceError,
    InvalidInput,
    InvalidTransition,
    NotAllowed,
    NotFound,
    RegistryUnavailable,
)
from governance.evidence import Evidence, capture
from governance.ports import UnitOfWork


def check_target(target: str) -> str:
    """A target name: an alias or one of Staging, Production, Archived."""
    name = (target or "").strip()
    if not name or name == "None" or len(name) > 256:
        raise InvalidInput(f"invalid target {target!r}: name an alias or a stage")
    return name


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
        _event(uow, actor, AuditAction.REQUEST_SUPERSEDED, old, now, superseded_by=request.id)
    _event(
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
        _event(uow, actor, AuditAction.ROLLBACK_REQUESTED, request, now, undoes=related)
    return request


def _event(
    uow: UnitOfWork, actor: str, action: str, req: PromotionRequest, at: datetime, **payload: object
) -> None:
    uow.audit.append(
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
    return _new_request(uow, ctx, actor, model, str(version), target, justification)


def _new_request(
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
            target = check_target(target)
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


def refresh_evidence(
    uow: UnitOfWork, ctx: Context, actor: str, request_id: str
) -> PromotionRequest:
    """Capture the evidence again; when it changed, a new request supersedes the old one.

    Votes are bound to the content they signed, so fresh evidence needs fresh signatures. The
    requester, or anyone who may request, may refresh. Returns the request in force (the same one
    when nothing changed).

    Raises:
        NotAllowed, NotFound, InvalidTransition (not pending, or a follow-up review), GateFailed,
        UnknownModel, RegistryUnavailable.
    """
    with uow:
        authorise(uow, ctx, actor, None, "refresh_evidence", ObjectType.REQUEST, request_id)
        old = uow.requests.get(request_id)
        problem: GovernanceError | None = None
        if actor != old.requester and not _may_request(uow, actor):
            problem = NotAllowed(f"{actor} may not refresh request {request_id}")
        elif old.state != State.PENDING or old.kind == RequestKind.FOLLOW_UP:
            problem = InvalidTransition(f"request {request_id} has no evidence to refresh")
        if problem is not None:
            refuse(uow, ctx, actor, "refresh_evidence", ObjectType.REQUEST, request_id, problem)
    evidence = capture_or_refuse(
        uow,
        ctx,
        actor,
        "refresh_evidence",
        model=old.model,
        version=old.version,
        target=old.target,
        kind=old.kind,
    )
    if evidence.hash == old.evidence_hash and ctx.policy.hash == old.policy_hash:
        return old
    with uow:
        if not evidence.gates_passed:
            exc = GateFailed("policy gates failed: " + "; ".join(evidence.failed_gates))
            refuse(uow, ctx, actor, "refresh_evidence", ObjectType.REQUEST, request_id, exc)
        current = uow.lock_request(request_id)
        if current.state != State.PENDING:
            exc2 = InvalidTransition(f"request {request_id} is {current.state}")
            refuse(uow, ctx, actor, "refresh_evidence", ObjectType.REQUEST, request_id, exc2)
        new = open_request(
            uow, ctx, old.requester, evidence, old.justification, kind=old.kind, related=old.id
        )
        _event(uow, actor, AuditAction.EVIDENCE_REFRESHED, new, ctx.clock.now(), replaces=old.id)
        uow.commit()
        return new


def _may_request(uow: UnitOfWork, actor: str) -> bool:
    user = uow.users.find(actor)
    return user is not None and Permission.REQUEST in permissions_of(user.roles)


def cancel(
    uow: UnitOfWork, ctx: Context, actor: str, request_id: str, reason: str = ""
) -> PromotionRequest:
    """Withdraw a pending request; only its requester may.

    Raises:
        NotAllowed: The actor is not the requester.
        NotFound: No such request.
        InvalidTransition: The request is not pending.
    """
    with uow:
        authorise(uow, ctx, actor, None, "cancel", ObjectType.REQUEST, request_id)
        try:
            request = uow.lock_request(request_id)
            if actor != request.requester:
                raise NotAllowed("only the requester may cancel a request")
            request = transition(request, State.CANCELLED, ctx.clock.now())
        except GovernanceError as exc:
            refuse(uow, ctx, actor, "cancel", ObjectType.REQUEST, request_id, exc)
        uow.requests.update(request)
        _event(uow, actor, AuditAction.REQUEST_CANCELLED, request, ctx.clock.now(), reason=reason)
        uow.commit()
        return request


def expire_due(uow: UnitOfWork, ctx: Context, actor: str) -> tuple[PromotionRequest, ...]:
    """Expire every pending request past its `expires_at`; returns the expired ones.

    Housekeeping that any active principal may trigger (e.g. `system:scheduler`).
    """
    with uow:
        authorise(uow, ctx, actor, None, "expire_due", ObjectType.REQUEST, "*")
        now = ctx.clock.now()
        expired = []
        for due in uow.requests.due_for_expiry(now):
            request = uow.lock_request(due.id)
            if request.state == State.PENDING and request.expires_at <= now:
                request = transition(request, State.EXPIRED, now)
                uow.requests.update(request)
                _event(uow, actor, AuditAction.REQUEST_EXPIRED, request, now)
                expired.append(request)
        uow.commit()
        return tuple(expired)


def request_rollback(
    uow: UnitOfWork, ctx: Context, actor: str, model: str, target: str, justification: str
) -> PromotionRequest:
    """Ask to restore the version that held the target before the ledger's last execution.

    Uses the policy's `rollback` rule (its own quorum, no gates).

    Raises:
        NotAllowed, InvalidInput (nothing to restore), UnknownModel, RegistryUnavailable.
    """
    kind = target_kind_for(target)
    with uow:
        authorise(
            uow,
            ctx,
            actor,
            Permission.REQUEST,
            "request_rollback",
            ObjectType.TARGET,
            target_object_id(model, kind, target),
        )
        last = None
        for done in uow.executions.successes(model):
            if (done.target_kind, done.target) == (kind, target):
                last = done
        if last is None or last.previous_holder is None:
            exc = InvalidInput(f"nothing to roll back: no earlier holder of {target} is recorded")
            refuse(
                uow,
                ctx,
                actor,
                "request_rollback",
                ObjectType.TARGET,
                target_object_id(model, kind, target),
                exc,
            )
    return _new_request(
        uow,
        ctx,
        actor,
        model,
        last.previous_holder,
        target,
        justification,
        kind=RequestKind.ROLLBACK,
        related=last.request_id,
    )
