"""Monitoring use cases: record a scored batch, raise findings, close them, read them back.

A batch is an ordinary row; recording it appends one `monitoring_batch_recorded` audit entry
(its content hash and verdict), and every threshold it makes count opens a finding with a
`monitoring_alert` entry (which the webhook outbox announces), all in one transaction. A person
closes a finding with a comment (`monitoring_finding_closed`). Recording the same content again
changes nothing and says so.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from governance.context import Context, authorise, refuse, require_text
from governance.domain import AuditAction, ObjectType, Permission
from governance.errors import NotAllowed, NotFound
from governance.monitoring_ports import MonitoringUnitOfWork
from governance.monitoring_rules import (
    OPEN,
    MonitoringBatch,
    MonitoringFinding,
    due_alerts,
    thresholds_for,
)


@dataclass(frozen=True)
class RecordedBatch:
    """What `record_batch` did: `already_recorded` True means the content was stored before."""

    batch: MonitoringBatch
    already_recorded: bool
    opened: tuple[MonitoringFinding, ...] = ()


@dataclass(frozen=True)
class ClosedFinding:
    """What `close_finding` did: `closed_now` False means someone had closed it already."""

    finding: MonitoringFinding
    closed_now: bool


def version_object_id(model: str, version: str) -> str:
    """The audit object id of one model version."""
    return f"{model}/{version}"


def authorise_recording(uow: MonitoringUnitOfWork, ctx: Context, actor: str) -> None:
    """Check the monitor permission before the scoring work (a refusal is audited).

    Raises:
        NotAllowed: The actor may not record batches.
    """
    with uow:
        authorise(
            uow, ctx, actor, Permission.MONITOR, "record_batch", ObjectType.MODEL_VERSION, "*"
        )


def record_batch(
    uow: MonitoringUnitOfWork, ctx: Context, actor: str, batch: MonitoringBatch
) -> RecordedBatch:
    """Store a scored batch, audit it, and open the findings its thresholds now call for.

    Args:
        batch: The scored batch; `recorded_at` and `recorded_by` are set here.

    Raises:
        NotAllowed: The actor may not record batches (the refusal is audited).
    """
    object_id = version_object_id(batch.model, batch.version)
    with uow:
        authorise(
            uow, ctx, actor, Permission.MONITOR, "record_batch", ObjectType.MODEL_VERSION, object_id
        )
        now = ctx.clock.now()
        batch = replace(batch, recorded_at=now, recorded_by=actor)
        if not uow.monitoring.add_batch(batch):
            stored = uow.monitoring.get_batch(batch.batch_id)
            return RecordedBatch(stored or batch, already_recorded=True)
        uow.audit.append(
            actor=actor,
            action=AuditAction.MONITORING_BATCH_RECORDED,
            object_type=ObjectType.MODEL_VERSION,
            object_id=object_id,
            payload={
                "batch_id": batch.batch_id,
                "model": batch.model,
                "version": batch.version,
                "content_sha256": batch.content_sha256,
                "as_of": batch.as_of.isoformat(),
                "rows": batch.rows,
                "dataset_drift": batch.dataset_drift,
                "share_drifted": batch.share_drifted,
                "drifted_columns": len(batch.drifted_columns),
                "quality": batch.metrics(),
            },
            at=now,
        )
        opened = _open_findings(uow, ctx, actor, batch)
        uow.commit()
    return RecordedBatch(batch, already_recorded=False, opened=opened)


def _open_findings(
    uow: MonitoringUnitOfWork, ctx: Context, actor: str, batch: MonitoringBatch
) -> tuple[MonitoringFinding, ...]:
    thresholds = thresholds_for(ctx.policy.document, batch.model)
    if thresholds is None:
        return ()
    history = uow.monitoring.figures(batch.model, batch.version)
    known = uow.monitoring.findings(model=batch.model, version=batch.version, limit=None)
    closed_at = {}
    for f in sorted(known, key=lambda f: f.closed_at or f.opened_at):
        if f.closed_at is not None:
            closed_at[f.check] = f.closed_at
    open_checks = {f.check for f in known if f.is_open}
    now = ctx.clock.now()
    opened = []
    for alert in due_alerts(thresholds, history, open_checks, closed_at):
        finding = MonitoringFinding(
            id=ctx.new_id(),
            model=batch.model,
            version=batch.version,
            check=alert.check,
            limit=alert.limit,
            value=alert.value,
            consecutive=alert.streak,
            batch_id=alert.batch_id,
            as_of=alert.as_of,
            opened_at=now,
            opened_by=actor,
        )
        uow.monitoring.add_finding(finding)
        uow.audit.append(
            actor=actor,
            action=AuditAction.MONITORING_ALERT,
            object_type=ObjectType.MODEL_VERSION,
            object_id=version_object_id(batch.model, batch.version),
            payload={
                "finding_id": finding.id,
                "model": batch.model,
                "version": batch.version,
                "check": alert.check,
                "limit": alert.limit,
                "value": alert.value,
                "consecutive_batches": alert.streak,
                "required_consecutive": thresholds.consecutive,
                "batch_id": alert.batch_id,
                "as_of": alert.as_of.isoformat(),
                "policy_hash": ctx.policy.hash,
            },
            at=now,
        )
        opened.append(finding)
    return tuple(opened)


def close_finding(
    uow: MonitoringUnitOfWork, ctx: Context, actor: str, finding_id: str, comment: str
) -> ClosedFinding:
    """A person closes an open finding with a comment; a repeat changes nothing.

    Raises:
        InvalidInput: The comment is blank or too long.
        NotAllowed: The actor may not close findings, or is not a person (audited).
        NotFound: No such finding (audited).
    """
    text = require_text(comment, "a comment")
    with uow:
        _, user = authorise(
            uow, ctx, actor, Permission.MONITOR, "close_finding", ObjectType.MODEL_VERSION, "*"
        )
        if user is None:
            refuse(
                uow, ctx, actor, "close_finding", ObjectType.MODEL_VERSION, "*",
                NotAllowed("a monitoring finding is closed by a person, with a comment"),
                finding_id=finding_id,
            )  # fmt: skip
        finding = uow.monitoring.get_finding(finding_id)
        if finding is None:
            refuse(
                uow, ctx, actor, "close_finding", ObjectType.MODEL_VERSION, "*",
                NotFound(f"no monitoring finding {finding_id!r}"),
                finding_id=finding_id,
            )  # fmt: skip
        now = ctx.clock.now()
        if not uow.monitoring.close_finding(
            finding_id, closed_at=now, closed_by=actor, comment=text
        ):
            current = uow.monitoring.get_finding(finding_id)
            return ClosedFinding(current or finding, closed_now=False)
        uow.audit.append(
            actor=actor,
            action=AuditAction.MONITORING_FINDING_CLOSED,
            object_type=ObjectType.MODEL_VERSION,
            object_id=version_object_id(finding.model, finding.version),
            payload={
                "finding_id": finding.id,
                "model": finding.model,
                "version": finding.version,
                "check": finding.check,
                "comment": text,
            },
            at=now,
        )
        uow.commit()
        closed = replace(finding, state="closed", closed_at=now, closed_by=actor, comment=text)
    return ClosedFinding(closed, closed_now=True)


def list_batches(
    uow: MonitoringUnitOfWork, ctx: Context, actor: str, model: str, version: str
) -> tuple[MonitoringBatch, ...]:
    """The version's batches, oldest as-of first.

    Raises:
        NotAllowed: The actor may not view.
    """
    with uow:
        authorise(uow, ctx, actor, Permission.VIEW, "view", ObjectType.MODEL_VERSION, "*")
        return uow.monitoring.batches(model, version)


def get_batch(
    uow: MonitoringUnitOfWork, ctx: Context, actor: str, batch_id: str
) -> MonitoringBatch:
    """One batch by id.

    Raises:
        NotAllowed: The actor may not view.
        NotFound: No such batch.
    """
    with uow:
        authorise(uow, ctx, actor, Permission.VIEW, "view", ObjectType.MODEL_VERSION, "*")
        batch = uow.monitoring.get_batch(batch_id)
    if batch is None:
        raise NotFound(f"no monitoring batch {batch_id!r}")
    return batch


def list_findings(
    uow: MonitoringUnitOfWork,
    ctx: Context,
    actor: str,
    *,
    model: str = "",
    version: str = "",
    only_open: bool = True,
    limit: int | None = 200,
) -> tuple[MonitoringFinding, ...]:
    """Findings newest first (open ones only, unless `only_open` is False).

    Raises:
        NotAllowed: The actor may not view.
    """
    with uow:
        authorise(uow, ctx, actor, Permission.VIEW, "view", ObjectType.MODEL_VERSION, "*")
        return uow.monitoring.findings(
            model=model, version=version, state=OPEN if only_open else "", limit=limit
        )
