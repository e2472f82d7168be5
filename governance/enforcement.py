"""The ledger as the registry's desired state: compare, record findings, put targets back.

The desired holder of a target (an alias or a stage of one model) is what the ledger made it:
the last successful execution, or an approved request whose execution is under way (approved,
or failed and waiting for a retry, decided after that execution). MLflow holding anything else
is an out-of-band change. It is recorded once (`out_of_band_change`, until it changes), and
where the policy's rule for the target says `out_of_band: revert`, the governed holder is put
back (or an alias no request granted is removed) and `out_of_band_reverted` names the finding
it answers.

Races. Every decision is taken under the ledger's write lock (`uow.lock_users()`: the chain
head on PostgreSQL, BEGIN IMMEDIATE on SQLite), with MLflow read again under it. An approval
needs the same lock, and an execution only writes to MLflow after its approval committed, so a
put-back either sees the approved request (and restores ITS version, the one the execution is
writing too) or runs before the approval exists (and the execution's write comes later). Both
orders end on the governed holder. Our own writes come back as webhooks: by then MLflow agrees
with the ledger, so they are no findings; a loop guard stops putting a target back when
something else keeps moving it (`MAX_REVERTS` in `REVERT_WINDOW`) and leaves it flagged.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from governance.audit import AuditRecord, format_ts
from governance.context import Context, authorise, refuse
from governance.domain import (
    AuditAction,
    Finding,
    ObjectType,
    Permission,
    RequestKind,
    State,
    TargetKind,
    target_kind_for,
    target_object_id,
)
from governance.errors import InvalidInput, NotFound, RegistryUnavailable
from governance.store_ports import UnitOfWork

Key = tuple[str, str, str]  # (model, target_kind, target)
IGNORED_STAGES = ("None", "Archived")  # archiving is a side effect of moving a stage
IN_FLIGHT = (State.APPROVED, State.EXECUTION_FAILED)
FINDING_ACTIONS = (
    AuditAction.OUT_OF_BAND_CHANGE,
    AuditAction.OUT_OF_BAND_CLEARED,
    AuditAction.OUT_OF_BAND_REVERTED,
)
MAX_REVERTS = 5
REVERT_WINDOW = timedelta(minutes=10)


@dataclass(frozen=True)
class Governed:
    """The ledger's view of one target.

    Attributes:
        holder: The version that should hold it (None: nobody should).
        settled: The version the last successful execution left there (None: nobody).
    """

    holder: str | None
    settled: str | None

    def accepts(self, found: tuple[str, ...]) -> bool:
        """MLflow's holders are explained: the settled state, or the one under way."""
        return found in (_holders(self.settled), _holders(self.holder))


@dataclass(frozen=True)
class Outcome:
    """What one comparison did: the findings and the targets put back."""

    findings: tuple[Finding, ...] = ()
    reverted: tuple[Key, ...] = ()
    failed: tuple[Key, ...] = ()


def _holders(version: str | None) -> tuple[str, ...]:
    return (version,) if version else ()


def _fold(moves: Iterable[tuple[str, str, str, str]]) -> dict[Key, str]:
    """Apply (model, kind, target, version) moves in order; a stage move empties the old stage."""
    state: dict[Key, str] = {}
    for model, kind, target, version in moves:
        if kind == TargetKind.STAGE:
            for key, held in list(state.items()):
                if key[0] == model and key[1] == TargetKind.STAGE and held == version:
                    del state[key]
        state[(model, kind, target)] = version
    return state


def ledger_view(uow: UnitOfWork, models: tuple[str, ...] | None) -> dict[Key, Governed]:
    """What the ledger says every target of the models (all when None) should hold."""
    done = (
        [e for m in models for e in uow.executions.successes(m)]
        if models is not None
        else list(uow.executions.successes())
    )
    # An execution row that fails its seal was written outside Countersign: it governs nothing.
    done = [e for e in done if not e.seal_problem]
    done.sort(key=lambda e: e.at)
    settled = _fold((e.model, e.target_kind, e.target, e.version) for e in done)
    last_at: dict[Key, datetime] = {(e.model, e.target_kind, e.target): e.at for e in done}
    pending = []
    for state in IN_FLIGHT:
        for model in models if models is not None else (None,):
            for req in uow.requests.find(state=state, model=model):
                if req.seal_problem:
                    continue
                key = (req.model, req.target_kind, req.target)
                moment = req.updated_at or req.created_at
                if req.kind == RequestKind.FOLLOW_UP or moment < last_at.get(key, moment):
                    continue  # a stale failure that a later execution overtook
                pending.append((moment, key, req.version))
    pending.sort()
    desired = _fold(
        [(e.model, e.target_kind, e.target, e.version) for e in done]
        + [(*key, version) for _, key, version in pending]
    )
    return {
        key: Governed(holder=desired.get(key), settled=settled.get(key))
        for key in set(settled) | set(desired)
    }


def registry_view(ctx: Context, models: tuple[str, ...] | None) -> dict[Key, tuple[str, ...]]:
    """MLflow's holders per target (stages None and Archived left out), sorted."""
    found: dict[Key, list[str]] = {}
    for a in ctx.registry.assignments(models):
        if a.kind == TargetKind.STAGE and a.target in IGNORED_STAGES:
            continue
        found.setdefault((a.model, a.kind, a.target), []).append(a.version)
    return {key: tuple(sorted(v, key=_version_order)) for key, v in found.items()}


def _version_order(version: str) -> tuple[int, str]:
    return (int(version), "") if version.isdigit() else (0, version)


def _last_finding(uow: UnitOfWork, key: Key) -> AuditRecord | None:
    last = None
    for rec in uow.audit.for_object(ObjectType.TARGET, target_object_id(*key)):
        if rec.action in FINDING_ACTIONS:
            last = rec
    return last


def _payload(rec: AuditRecord | None) -> dict[str, object]:
    if rec is None:
        return {}
    data = json.loads(rec.payload)
    return data if isinstance(data, dict) else {}


def _difference(key: Key, found: tuple[str, ...], ledger: str | None) -> dict[str, object]:
    model, kind, target = key
    return {
        "model": model,
        "target_kind": kind,
        "target": target,
        "registry_versions": list(found),
        "ledger_version": ledger,
    }


def needs_attention(
    uow: UnitOfWork, ctx: Context, models: tuple[str, ...] | None
) -> tuple[set[str], dict[Key, tuple[str, ...]]]:
    """Models whose targets differ from the ledger or carry an open finding (no lock taken)."""
    found = registry_view(ctx, models)
    with uow.reading():
        ledger = ledger_view(uow, models)
        dirty = set()
        for key in set(found) | set(ledger):
            governed = ledger.get(key, Governed(None, None))
            if not governed.accepts(found.get(key, ())):
                dirty.add(key[0])
            elif key[0] not in dirty:
                last = _last_finding(uow, key)
                if last is not None and last.action == AuditAction.OUT_OF_BAND_CHANGE:
                    dirty.add(key[0])
    return dirty, found


def settle_model(
    uow: UnitOfWork,
    ctx: Context,
    actor: str,
    model: str,
    *,
    detected_by: Mapping[str, object],
    revert: bool,
    force: Key | None = None,
) -> Outcome:
    """Record the differences of one model under the lock, then put targets back.

    Args:
        detected_by: How the difference came to light (kept in the finding's payload).
        revert: Whether the actor may put targets back (the policy decides which).
        force: One target to put back whatever its rule says (an admin's `put_back`).
    """
    findings: list[Finding] = []
    to_revert: list[Key] = []
    with uow:
        # The ledger is read first: on SQLite that first statement is what takes the write lock
        # (BEGIN IMMEDIATE), so MLflow is read under it too.
        uow.lock_users()
        ledger = ledger_view(uow, (model,))
        found = registry_view(ctx, (model,))
        for key in sorted(set(found) | set(ledger)):
            governed = ledger.get(key, Governed(None, None))
            holders = found.get(key, ())
            finding = _record(uow, ctx, actor, key, holders, governed, detected_by)
            if finding is None:
                continue
            findings.append(finding)
            rule = ctx.policy.rule_for(model, key[2])
            if revert and (key == force or (force is None and rule.out_of_band == "revert")):
                to_revert.append(key)
        uow.commit()
    reverted, failed = [], []
    for key in to_revert:
        result = _put_back(uow, ctx, actor, key)
        if result is True:
            reverted.append(key)
        elif result is False:
            failed.append(key)
    return Outcome(tuple(findings), tuple(reverted), tuple(failed))


def _record(
    uow: UnitOfWork,
    ctx: Context,
    actor: str,
    key: Key,
    found: tuple[str, ...],
    governed: Governed,
    detected_by: Mapping[str, object],
) -> Finding | None:
    """Record a new difference once, or its clearing; None when MLflow agrees."""
    last = _last_finding(uow, key)
    open_finding = last is not None and last.action == AuditAction.OUT_OF_BAND_CHANGE
    difference = _difference(key, found, governed.holder)
    object_id = target_object_id(*key)
    if governed.accepts(found):
        if open_finding:
            _append(uow, ctx, actor, AuditAction.OUT_OF_BAND_CLEARED, object_id, difference)
        return None
    known = {k: v for k, v in _payload(last).items() if k in difference}
    new = not open_finding or known != difference
    if new:
        payload = {**difference, "detected_by": dict(detected_by)}
        _append(uow, ctx, actor, AuditAction.OUT_OF_BAND_CHANGE, object_id, payload)
    model, kind, target = key
    return Finding(model, kind, target, found, governed.holder, newly_recorded=new)


def _put_back(uow: UnitOfWork, ctx: Context, actor: str, key: Key) -> bool | None:
    """Restore the governed holder under the lock; True done, False failed, None not needed."""
    model = key[0]
    object_id = target_object_id(*key)
    with uow:
        uow.lock_users()
        governed = ledger_view(uow, (model,)).get(key, Governed(None, None))
        found = registry_view(ctx, (model,)).get(key, ())
        last = _last_finding(uow, key)
        if governed.accepts(found) or last is None:
            return None  # someone (a concurrent put-back, an execution) already settled it
        if last.action != AuditAction.OUT_OF_BAND_CHANGE:
            return None
        base = {**_difference(key, found, governed.holder), "finding_seq": last.seq}
        if _loop_guard_tripped(uow, ctx, object_id):
            detail = f"put back {MAX_REVERTS} times in {REVERT_WINDOW}: left flagged"
            _append(
                uow, ctx, actor, AuditAction.OUT_OF_BAND_REVERT_FAILED, object_id,
                {**base, "detail": detail},
            )  # fmt: skip
            uow.commit()
            return False
        try:
            removed = _restore(ctx, key, found, governed.holder)
        except (RegistryUnavailable, NotFound) as exc:
            detail = f"{type(exc).__name__}: {exc}"
            _append(
                uow, ctx, actor, AuditAction.OUT_OF_BAND_REVERT_FAILED, object_id,
                {**base, "detail": detail},
            )  # fmt: skip
            uow.commit()
            return False
        payload = {**base, "restored_version": governed.holder, "removed_versions": removed}
        _append(uow, ctx, actor, AuditAction.OUT_OF_BAND_REVERTED, object_id, payload)
        uow.commit()
        return True


def _restore(ctx: Context, key: Key, found: tuple[str, ...], holder: str | None) -> list[str]:
    """Make MLflow hold exactly `holder` on the target; returns the versions taken off it."""
    model, kind, target = key
    registry = ctx.registry
    removed = [v for v in found if v != holder]
    if kind == TargetKind.ALIAS:
        if holder is None:
            registry.delete_alias(model, target)
        else:
            registry.set_alias(model, target, holder)
        return removed
    for version in removed:  # a stage: the intruders leave it, the governed holder returns
        registry.transition_stage(model, version, "None", archive_existing=False)
    if holder is not None and holder not in found:
        registry.transition_stage(model, holder, target, archive_existing=False)
    return removed


def _loop_guard_tripped(uow: UnitOfWork, ctx: Context, object_id: str) -> bool:
    since = format_ts(ctx.clock.now() - REVERT_WINDOW)
    recent = [
        rec
        for rec in uow.audit.for_object(ObjectType.TARGET, object_id)
        if rec.action == AuditAction.OUT_OF_BAND_REVERTED and rec.ts >= since
    ]
    return len(recent) >= MAX_REVERTS


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


def enforce(
    uow: UnitOfWork,
    ctx: Context,
    actor: str,
    models: tuple[str, ...] | None = None,
    *,
    detected_by: Mapping[str, object],
) -> tuple[Finding, ...]:
    """Compare MLflow with the ledger and apply the policy to every difference.

    Models that agree with the ledger (and have no open finding) cost one MLflow read and one
    read of the ledger, without any lock. The others are settled model by model under the lock:
    new differences recorded once, vanished ones cleared, and targets whose rule says
    `out_of_band: revert` put back when the actor holds the enforce permission.

    Raises:
        NotAllowed: The actor may not reconcile (the refusal is audited).
        RegistryUnavailable: MLflow cannot be reached.
    """
    with uow:
        principal, _ = authorise(
            uow, ctx, actor, Permission.RECONCILE, "reconcile", ObjectType.TARGET, "*"
        )
    may_revert = Permission.ENFORCE in principal.permissions
    dirty, _ = needs_attention(uow, ctx, models)
    findings: list[Finding] = []
    for model in sorted(dirty):
        outcome = settle_model(uow, ctx, actor, model, detected_by=detected_by, revert=may_revert)
        findings.extend(outcome.findings)
    return tuple(findings)


def put_back(uow: UnitOfWork, ctx: Context, actor: str, model: str, target: str) -> Outcome:
    """Put one target back on its governed holder now, whatever the policy's setting.

    For a finding left flagged (`out_of_band: flag`): an admin decides the registry must follow
    the ledger. The difference is recorded first (if it was not yet), then reverted.

    Raises:
        NotAllowed: The actor may not enforce (the refusal is audited).
        InvalidInput: The target agrees with the ledger: nothing to put back.
        RegistryUnavailable: MLflow cannot be reached.
    """
    key = (model, target_kind_for(target), target)
    object_id = target_object_id(*key)
    with uow:
        authorise(uow, ctx, actor, Permission.ENFORCE, "put_back", ObjectType.TARGET, object_id)
    outcome = settle_model(
        uow, ctx, actor, model, detected_by={"source": "put_back"}, revert=True, force=key
    )
    if key not in outcome.reverted and key not in outcome.failed:
        with uow:
            problem = InvalidInput(f"{model} {key[1]} {target} agrees with the ledger")
            refuse(uow, ctx, actor, "put_back", ObjectType.TARGET, object_id, problem)
    return outcome


def record_refused_delivery(
    uow: UnitOfWork, ctx: Context, actor: str, reason: str, details: Mapping[str, object]
) -> None:
    """Audit refused webhook deliveries (forged, stale, replayed); the receiver bounds the rate.

    Raises:
        NotAllowed: The actor is not an active principal (the refusal is audited).
    """
    with uow:
        authorise(uow, ctx, actor, Permission.RECONCILE, "receive", ObjectType.RECEIVER, reason)
        uow.audit.append(
            actor=actor,
            action=AuditAction.MLFLOW_DELIVERY_REFUSED,
            object_type=ObjectType.RECEIVER,
            object_id=reason[:64],
            payload={"reason": reason[:64], **details},
            at=ctx.clock.now(),
        )
        uow.commit()
