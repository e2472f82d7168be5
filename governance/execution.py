"""Applying decisions to the registry, and reconciling the registry with the ledger."""

from __future__ import annotations

import json
from collections.abc import Mapping

from governance.context import Context, authorise, refuse
from governance.domain import (
    EXECUTABLE_STATES,
    AuditAction,
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
    target_object_id,
    transition,
)
from governance.errors import InvalidTransition, NotFound, RegistryUnavailable
from governance.evidence import current_holder
from governance.store_ports import UnitOfWork

TAG_PREFIX = "countersign."
IGNORED_STAGES = ("None", "Archived")  # archiving is a side effect of moving a stage


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
            if request.state == State.EXECUTED:
                return ExecutionResult(request, None, executed_now=False)
            if request.state not in EXECUTABLE_STATES or request.kind == RequestKind.FOLLOW_UP:
                exc = InvalidTransition(
                    f"request {request_id} is {request.state}: nothing to execute"
                )
                refuse(uow, ctx, actor, "execute", ObjectType.REQUEST, request_id, exc)
            earlier = tuple(uow.executions.for_request(request_id))
            decision = uow.decisions.get(request_id)
        approvers = decision.approvers if decision else ()
    previous, detail = _apply(ctx, request, approvers)
    # A retry keeps what an earlier attempt read: a partly applied attempt would otherwise make
    # the candidate its own predecessor.
    readings = [e.previous_holder for e in earlier] + [previous]
    previous = next((p for p in readings if p is not None and p != request.version), None)
    with uow:
        request = uow.lock_request(request_id)
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
        uow.executions.add(execution)
        if ok or request.state == State.APPROVED:
            request = transition(request, State.EXECUTED if ok else State.EXECUTION_FAILED, now)
            uow.requests.update(request)
        uow.audit.append(
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
        uow.commit()
        return ExecutionResult(request, execution, executed_now=ok)


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
    """Compare the registry's aliases and stages with what the ledger executed.

    Every difference is returned; each is recorded as an `out_of_band_change` event only once
    (until it changes), and an `out_of_band_cleared` event is recorded when it disappears.
    Stages None and Archived are ignored.

    Raises:
        NotAllowed: The actor may not reconcile.
        RegistryUnavailable: The registry cannot be reached.
    """
    with uow:
        authorise(uow, ctx, actor, Permission.RECONCILE, "reconcile", ObjectType.TARGET, "*")
    assignments = ctx.registry.assignments(models)
    actual: dict[tuple[str, str, str], set[str]] = {}
    for a in assignments:
        if a.kind == TargetKind.STAGE and a.target in IGNORED_STAGES:
            continue
        actual.setdefault((a.model, a.kind, a.target), set()).add(a.version)
    findings = []
    with uow:
        expected: dict[tuple[str, str, str], str] = {}
        for done in uow.executions.successes():
            if models is not None and done.model not in models:
                continue
            if done.target_kind == TargetKind.STAGE:
                # a version sits in one stage at a time: moving it empties its old stage
                for k, v in list(expected.items()):
                    if k[0] == done.model and k[1] == TargetKind.STAGE and v == done.version:
                        del expected[k]
            expected[(done.model, done.target_kind, done.target)] = done.version
        for key in sorted(set(actual) | set(expected)):
            found = tuple(sorted(actual.get(key, ())))
            ledger = expected.get(key)
            finding = _record(uow, ctx, actor, key, found, ledger)
            if finding is not None:
                findings.append(finding)
        uow.commit()
    return tuple(findings)


def _record(
    uow: UnitOfWork,
    ctx: Context,
    actor: str,
    key: tuple[str, str, str],
    found: tuple[str, ...],
    ledger: str | None,
) -> Finding | None:
    model, kind, target = key
    object_id = target_object_id(model, kind, target)
    last = None
    for rec in uow.audit.for_object(ObjectType.TARGET, object_id):
        if rec.action in (AuditAction.OUT_OF_BAND_CHANGE, AuditAction.OUT_OF_BAND_CLEARED):
            last = rec
    payload: Mapping[str, object] = {
        "model": model,
        "target_kind": kind,
        "target": target,
        "registry_versions": list(found),
        "ledger_version": ledger,
    }
    in_step = found == ((ledger,) if ledger else ())
    open_finding = last is not None and last.action == AuditAction.OUT_OF_BAND_CHANGE
    if in_step:
        if open_finding:
            _append(uow, ctx, actor, AuditAction.OUT_OF_BAND_CLEARED, object_id, payload)
        return None
    new = not open_finding or last is None or json.loads(last.payload) != payload
    if new:
        _append(uow, ctx, actor, AuditAction.OUT_OF_BAND_CHANGE, object_id, payload)
    return Finding(model, kind, target, found, ledger, newly_recorded=new)


def _append(
    uow: UnitOfWork,
    ctx: Context,
    actor: str,
    action: str,
    object_id: str,
    payload: Mapping[str, object],
) -> None:
    uow.audit.append(
        actor=actor,
        action=action,
        object_type=ObjectType.TARGET,
        object_id=object_id,
        payload=payload,
        at=ctx.clock.now(),
    )
