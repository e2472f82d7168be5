"""The life of an open request: refresh its evidence, cancel, expire, or roll back."""

from __future__ import annotations

from governance.context import Context, authorise, refuse
from governance.domain import (
    AuditAction,
    ObjectType,
    Permission,
    PromotionRequest,
    RequestKind,
    State,
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
)
from governance.store_ports import UnitOfWork
from governance.workflow import (
    capture_or_refuse,
    check_target,
    new_request,
    open_request,
    request_event,
)


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
        problem: GovernanceError | None = None
        try:
            old = uow.requests.get(request_id)
        except NotFound as exc:
            refuse(uow, ctx, actor, "refresh_evidence", ObjectType.REQUEST, request_id, exc)
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
            failed = GateFailed("policy gates failed: " + "; ".join(evidence.failed_gates))
            refuse(uow, ctx, actor, "refresh_evidence", ObjectType.REQUEST, request_id, failed)
        current = uow.lock_request(request_id)
        if current.state != State.PENDING:
            exc2 = InvalidTransition(f"request {request_id} is {current.state}")
            refuse(uow, ctx, actor, "refresh_evidence", ObjectType.REQUEST, request_id, exc2)
        new = open_request(
            uow, ctx, old.requester, evidence, old.justification, kind=old.kind, related=old.id
        )
        request_event(
            uow, actor, AuditAction.EVIDENCE_REFRESHED, new, ctx.clock.now(), replaces=old.id
        )
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
        request_event(
            uow, actor, AuditAction.REQUEST_CANCELLED, request, ctx.clock.now(), reason=reason
        )
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
                request_event(uow, actor, AuditAction.REQUEST_EXPIRED, request, now)
                expired.append(request)
        uow.commit()
        return tuple(expired)


def request_rollback(
    uow: UnitOfWork,
    ctx: Context,
    actor: str,
    model: str,
    target: str,
    justification: str,
    version: str | None = None,
) -> PromotionRequest:
    """Ask to restore an earlier governed holder of a target (by default the one before the
    ledger's last execution).

    Uses the policy's `rollback` rule (its own quorum, no gates), so the version must be one the
    ledger records on this target: a version an execution placed there, or the holder an
    execution replaced.

    Raises:
        NotAllowed, InvalidInput (bad target, nothing to restore, or a version the ledger never
        recorded on the target), UnknownModel, RegistryUnavailable.
    """
    kind = target_kind_for(target)
    obj = target_object_id(model, kind, target)
    with uow:
        authorise(uow, ctx, actor, Permission.REQUEST, "request_rollback", ObjectType.TARGET, obj)
        try:
            target = check_target(target, ctx)
        except GovernanceError as bad:
            refuse(uow, ctx, actor, "request_rollback", ObjectType.TARGET, obj, bad)
        kind = target_kind_for(target)
        last = None
        recorded: set[str] = set()
        for done in uow.executions.successes(model):
            if done.seal_problem:  # written outside Countersign: not part of the record
                continue
            if (done.target_kind, done.target) == (kind, target):
                last = done
                recorded.add(done.version)
                if done.previous_holder:
                    recorded.add(done.previous_holder)
        wanted = str(version).strip() if version else (last.previous_holder if last else None)
        if wanted is None or last is None or wanted not in recorded:
            problem = InvalidInput(
                f"nothing to roll back: no earlier holder of {target} is recorded"
                if wanted is None or last is None
                else f"version {wanted} never held {target} in the ledger's record: request a "
                "promotion instead (a rollback skips the gates)"
            )
            refuse(uow, ctx, actor, "request_rollback", ObjectType.TARGET, obj, problem)
    return new_request(
        uow,
        ctx,
        actor,
        model,
        wanted,
        target,
        justification,
        kind=RequestKind.ROLLBACK,
        related=last.request_id,
    )
