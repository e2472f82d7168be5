"""Who held each alias and stage of a model, from when to when, and by whose decision.

Built from the audit chain (executions, out-of-band findings, put-backs, clearings) plus what
MLflow holds now. A tenure starts with the entry that put a version there and ends with the
next entry about the same target. What held a target before Countersign's first record of it
is said so (`before_countersign`) only when something may have held it: the version an
execution replaced (its `previous_holder`), or an unknown holder (version None) when the first
record is a finding. A target that was empty when its first execution read it had no holder
before: no tenure precedes that execution.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from governance.audit import AuditRecord, format_ts
from governance.context import Context, authorise
from governance.domain import AuditAction, ObjectType, Permission, TargetKind
from governance.errors import RegistryUnavailable
from governance.store_ports import UnitOfWork

# Where a tenure came from.
REQUEST = "request"  # an executed request (normal, rollback or break-glass)
OUT_OF_BAND = "out_of_band"  # MLflow showed it, no request explains it
PUT_BACK = "put_back"  # Countersign restored the governed holder
BEFORE = "before_countersign"  # held before Countersign's first record of the target
UNCOMPARED = "not_yet_compared"  # MLflow holds it now; no entry records the move yet
HISTORY_ACTIONS = (
    AuditAction.EXECUTION_SUCCEEDED,
    AuditAction.OUT_OF_BAND_CHANGE,
    AuditAction.OUT_OF_BAND_CLEARED,
    AuditAction.OUT_OF_BAND_REVERTED,
)


@dataclass(frozen=True)
class Tenure:
    """One version (or nobody: version None) holding one target for a span of time."""

    target: str
    target_kind: str
    version: str | None
    since: str | None  # audit timestamp (UTC ISO); None: not known (before Countersign)
    until: str | None  # None: holds it now
    source: str
    actor: str = ""
    seq: int | None = None
    request_id: str | None = None
    request_kind: str | None = None
    signers: tuple[str, ...] = ()

    def holds_at(self, moment: str) -> bool:
        return (self.since is None or self.since <= moment) and (
            self.until is None or moment < self.until
        )


@dataclass(frozen=True)
class ModelHistory:
    """Every tenure of every target of one model; `now` is MLflow's state (None: unreachable)."""

    model: str
    tenures: tuple[Tenure, ...]
    known_since: str | None
    now: dict[tuple[str, str], tuple[str, ...]] | None  # (kind, target) -> versions

    def at(self, moment: datetime) -> tuple[Tenure, ...]:
        """The holder of each target at `moment` (timezone-aware)."""
        stamp = format_ts(moment)
        return tuple(t for t in self.tenures if t.holds_at(stamp))


def _payload(rec: AuditRecord) -> dict[str, Any]:
    data = json.loads(rec.payload)
    return data if isinstance(data, dict) else {}


def _started(uow: UnitOfWork, rec: AuditRecord, data: dict[str, Any]) -> list[Tenure]:
    """The tenures an entry starts (a stage may hold several versions at once)."""
    target, kind = str(data.get("target")), str(data.get("target_kind"))
    base = Tenure(target, kind, None, rec.ts, None, OUT_OF_BAND, rec.actor, rec.seq)
    if rec.action == AuditAction.EXECUTION_SUCCEEDED:
        request = uow.requests.get(rec.object_id)
        decision = uow.decisions.get(rec.object_id)
        return [
            replace(
                base,
                version=str(data.get("version")),
                source=REQUEST,
                request_id=rec.object_id,
                request_kind=str(request.kind),
                signers=tuple(decision.approvers) if decision else (),
            )
        ]
    if rec.action == AuditAction.OUT_OF_BAND_REVERTED:
        restored = data.get("restored_version")
        return [replace(base, version=str(restored) if restored else None, source=PUT_BACK)]
    versions = data.get("registry_versions") or []
    if rec.action == AuditAction.OUT_OF_BAND_CLEARED:
        versions = [data["ledger_version"]] if data.get("ledger_version") else []
    return [replace(base, version=str(v)) for v in versions] or [base]


def _target_key(data: dict[str, Any]) -> tuple[str, str]:
    return (str(data.get("target_kind")), str(data.get("target")))


def model_history(uow: UnitOfWork, ctx: Context, actor: str, model: str) -> ModelHistory:
    """The tenures of every alias and stage of `model`, oldest first per target.

    Raises:
        NotAllowed: The actor may not view (the refusal is audited).
    """
    with uow:
        authorise(uow, ctx, actor, Permission.VIEW, "history", ObjectType.TARGET, f"{model}/*")
    try:
        now = _now(ctx, model)
    except RegistryUnavailable:
        now = None
    with uow.reading():
        records = sorted(
            uow.audit.search(model=model, actions=HISTORY_ACTIONS, limit=None),
            key=lambda r: r.seq,
        )
        per_target: dict[tuple[str, str], list[Tenure]] = {}
        for rec in records:
            data = _payload(rec)
            if data.get("model") not in (None, model):
                continue
            key = _target_key(data)
            tenures = per_target.setdefault(key, [])
            if not tenures and (before := _before(rec, data)) is not None:
                tenures.append(before)
            for k, open_tenure in enumerate(tenures):
                if open_tenure.until is None:
                    tenures[k] = replace(open_tenure, until=rec.ts)
            tenures.extend(_started(uow, rec, data))
    stamp = format_ts(ctx.clock.now())
    for (kind, target), held in (now or {}).items():
        tenures = per_target.setdefault((kind, target), [])
        if not tenures:  # MLflow has it, the ledger never recorded it
            tenures.extend(Tenure(target, kind, v, None, None, BEFORE) for v in held)
            continue
        current = {t.version for t in tenures if t.until is None and t.version}
        if set(held) != current:  # a move no entry records yet: the ledger's account ends now
            for k, open_tenure in enumerate(tenures):
                if open_tenure.until is None:
                    tenures[k] = replace(open_tenure, until=stamp)
            tenures.extend(Tenure(target, kind, v, stamp, None, UNCOMPARED) for v in held)
    ordered = [t for key in sorted(per_target) for t in per_target[key]]
    known = records[0].ts if records else None
    return ModelHistory(model, tuple(ordered), known, now)


def _before(rec: AuditRecord, data: dict[str, Any]) -> Tenure | None:
    """What held the target before Countersign's first entry about it, if anything did.

    An execution read the target just before moving it: its `previous_holder` is the version
    that held it, and null means nothing did (an alias not set yet, an empty stage), so there
    is no tenure to show. Any other first entry (a finding) tells nothing of what came before:
    an unknown holder (version None).
    """
    target, kind = str(data.get("target")), str(data.get("target_kind"))
    previous = None
    if rec.action == AuditAction.EXECUTION_SUCCEEDED and "previous_holder" in data:
        if not data["previous_holder"]:
            return None
        previous = str(data["previous_holder"])
    return Tenure(target, kind, previous, None, rec.ts, BEFORE)


def _now(ctx: Context, model: str) -> dict[tuple[str, str], tuple[str, ...]]:
    held: dict[tuple[str, str], list[str]] = {}
    for a in ctx.registry.assignments((model,)):
        if a.kind == TargetKind.STAGE and a.target in ("None", "Archived"):
            continue
        held.setdefault((a.kind, a.target), []).append(a.version)
    return {key: tuple(sorted(v)) for key, v in held.items()}
