"""Applying decisions to the registry, and reconciling the registry with the ledger."""

from __future__ import annotations

from governance.context import Context, authorise, refuse
from governance.domain import (
    EXECUTABLE_STATES,
    AuditAction,
    Decision,
    DecisionOutcome,
    Execution,
    ExecutionOutcome,
    ExecutionResult,
    Finding,
    ObjectType,
    Permission,
    PromotionRequest,
    RequestKind,
    State,
    TargetKind,
    content_hash_of,
    transition,
)
from governance.enforcement import enforce
from governance.errors import InvalidTransition, NotFound, RegistryUnavailable, Tampered
from governance.evidence import current_holder
from governance.row_seals import tampered
from governance.store_ports import UnitOfWork

TAG_PREFIX = "countersign."


def execute(uow: UnitOfWork, ctx: Context, actor: str, request_id: str) -> ExecutionResult:
    """Apply an approved request to the registry; safe to call again (retry, double click).

    The decision is already committed. The registry is called outside any transaction (setting
    the same alias or stage again is harmless); the outcome is then recorded under the request's
    lock as its own event. If another caller finished first, nothing more is recorded. A failure
    (registry unreachable, version gone) leaves the request in execution_failed for a retry.

    Raises:
        NotAllowed: The actor may not execute.
        NotFound: No such request.
        InvalidTransition: The request is not approved (or is a follow-up review).
    """
    with uow:
        authorise(uow, ctx, actor, Permission.EXECUTE, "execute", ObjectType.REQUEST, request_id)
    return apply_decision(uow, ctx, actor, request_id)


def apply_decision(
    uow: UnitOfWork,
    ctx: Context,
    actor: str,
    request_id: str,
    *,
    decided: tuple[PromotionRequest, tuple[str, ...]] | None = None,
) -> ExecutionResult:
    """`execute` without the permission check: the follow-through of a decision just taken.

    sign_off and break_glass call it after committing the decision, so the signer who completes
    the quorum need not hold the execute permission (a custom policy role, for instance).

    Args:
        decided: The request as the caller just committed it APPROVED, and its approvers. No
            execution attempt can exist yet, so the read transaction is skipped; the locked
            transaction that records the outcome re-reads the state as always.
    """
    if decided is not None:
        request, approvers = decided
        earlier: tuple[Execution, ...] = ()
    else:
        with uow:
            request = uow.requests.get(request_id)
            if request.seal_problem:
                forged = tampered(f"request {request_id}", request.seal_problem)
                refuse(uow, ctx, actor, "execute", ObjectType.REQUEST, request_id, forged)
            if request.state == State.EXECUTED:
                return ExecutionResult(request, None, executed_now=False)
            if request.state not in EXECUTABLE_STATES or request.kind == RequestKind.FOLLOW_UP:
                exc = InvalidTransition(
                    f"request {request_id} is {request.state}: nothing to execute"
                )
                refuse(uow, ctx, actor, "execute", ObjectType.REQUEST, request_id, exc)
            earlier = tuple(e for e in uow.executions.for_request(request_id) if not e.seal_problem)
            decision = uow.decisions.get(request_id)
            if (problem := decision_problem(request, decision)) is not None:
                refuse(uow, ctx, actor, "execute", ObjectType.REQUEST, request_id, problem)
        approvers = decision.approvers if decision else ()
    previous, detail = _apply(ctx, request, approvers)
    # A retry keeps what an earlier attempt read: a partly applied attempt would otherwise make
    # the candidate its own predecessor.
    readings = [e.previous_holder for e in earlier] + [previous]
    previous = next((p for p in readings if p is not None and p != request.version), None)
    with uow:
        request = uow.lock_request(request_id)
        if request.seal_problem:  # changed with SQL while the registry was being called
            forged = tampered(f"request {request_id}", request.seal_problem)
            refuse(uow, ctx, actor, "execute", ObjectType.REQUEST, request_id, forged)
        if request.state == State.EXECUTED:
            return ExecutionResult(request, None, executed_now=False)
        now = ctx.clock.now()
        attempts = uow.executions.for_request(request_id)
        ok = not detail
        execution = Execution(
            request_id=request_id,
            attempt=len(attempts) + 1,
            outcome=ExecutionOutcome.SUCCEEDED if ok else ExecutionOutcome.FAILED,
            at=now,
            actor=actor,
            model=request.model,
            version=request.version,
            target=request.target,
            target_kind=request.target_kind,
            previous_holder=previous,
            detail=detail,
        )
        if ok or request.state == State.APPROVED:
            request = transition(request, State.EXECUTED if ok else State.EXECUTION_FAILED, now)
            uow.requests.update(request)
        entry = uow.audit.append(
            actor=actor,
            action=AuditAction.EXECUTION_SUCCEEDED if ok else AuditAction.EXECUTION_FAILED,
            object_type=ObjectType.REQUEST,
            object_id=request_id,
            payload={
                "state": request.state,
                "attempt": execution.attempt,
                "model": request.model,
                "version": request.version,
                "target": request.target,
                "target_kind": request.target_kind,
                "previous_holder": previous,
                "detail": detail,
            },
            at=now,
        )
        uow.executions.add(execution, audit_seq=entry.seq)
        uow.commit()
        return ExecutionResult(request, execution, executed_now=ok)


def decision_problem(request: PromotionRequest, decision: Decision | None) -> Tampered | None:
    """Why the stored decision does not authorise executing this request, or None.

    A request becomes executable only through a sealed decision (a quorum or a break-glass)
    over exactly its content: a state flipped with SQL, a decision row inserted or edited with
    SQL, or a request whose model, version or target was changed afterwards is refused.
    """
    what = f"the decision of request {request.id}"
    if decision is None:
        return Tampered(
            f"request {request.id} is {request.state} but no decision is on record: its state "
            "was changed outside Countersign; nothing is executed"
        )
    if decision.seal_problem:
        return tampered(what, decision.seal_problem)
    if decision.outcome not in (DecisionOutcome.APPROVED, DecisionOutcome.BREAK_GLASS):
        return Tampered(f"{what} is {decision.outcome}: nothing is executed")
    content = content_hash_of(
        model=request.model,
        version=request.version,
        target=request.target,
        target_kind=request.target_kind,
        justification=request.justification,
        evidence_hash=request.evidence_hash,
        policy_hash=request.policy_hash,
    )
    if not (content == request.content_hash == decision.content_hash):
        return Tampered(
            f"request {request.id} differs from the content its decision approved: it was "
            "changed outside Countersign; nothing is executed"
        )
    return None


def provenance_tags(
    request: PromotionRequest, approvers: tuple[str, ...], policy_hash: str
) -> dict[str, str]:
    """The tags written on the model version so that MLflow's own UI shows who approved what."""
    return {
        f"{TAG_PREFIX}request_id": request.id,
        f"{TAG_PREFIX}request_kind": request.kind,
        f"{TAG_PREFIX}target": f"{request.target_kind}:{request.target}",
        f"{TAG_PREFIX}approvers": ",".join(approvers),
        f"{TAG_PREFIX}policy_hash": policy_hash,
        f"{TAG_PREFIX}content_hash": request.content_hash,
    }


def _apply(
    ctx: Context, request: PromotionRequest, approvers: tuple[str, ...]
) -> tuple[str | None, str]:
    """Move the target and tag the version; returns (previous holder, failure detail or "")."""
    registry = ctx.registry
    previous: str | None = None
    try:
        previous = current_holder(registry, request.model, request.target, request.target_kind)
        if request.target_kind == TargetKind.ALIAS:
            registry.set_alias(request.model, request.target, request.version)
        else:
            rule = ctx.policy.rule_for(request.model, request.target, request.kind)
            registry.transition_stage(
                request.model,
                request.version,
                request.target,
                archive_existing=rule.archive_existing,
            )
        registry.set_version_tags(
            request.model, request.version, provenance_tags(request, approvers, ctx.policy.hash)
        )
    except (RegistryUnavailable, NotFound) as exc:
        return previous, f"{type(exc).__name__}: {exc}"
    return previous, ""


def reconcile(
    uow: UnitOfWork, ctx: Context, actor: str, models: tuple[str, ...] | None = None
) -> tuple[Finding, ...]:
    """Compare the registry's aliases and stages with the ledger, and apply the policy.

    Every difference is returned; each is recorded as an `out_of_band_change` event only once
    (until it changes), and an `out_of_band_cleared` event is recorded when it disappears.
    Stages None and Archived are ignored. Targets whose rule says `out_of_band: revert` are put
    back when the actor may enforce (see governance.enforcement).

    Raises:
        NotAllowed: The actor may not reconcile.
        RegistryUnavailable: The registry cannot be reached.
    """
    return enforce(uow, ctx, actor, models, detected_by={"source": "reconcile"})
