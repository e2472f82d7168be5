"""Read-side figures of the governance tables for monitoring (the Prometheus exporter).

A handful of aggregate queries (indexed, cheap) in one read-only transaction, so the figures are
the database's at one moment, not one process's memory, and any number of exporters agree. The
result is a frozen snapshot: turning it into metric families (names, labels, age buckets) is the
exporter's business.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, and_, func, select

from governance.db import READ_ONLY, translate_errors
from governance.domain import AuditAction, State
from governance.monitoring_rows import MonitoringBatchRow, MonitoringFindingRow
from governance.monitoring_rules import OPEN, metrics_of
from governance.orm import AuditEventRow, DecisionRow, ExecutionRow, RequestRow
from governance.webhook_outbox import status_counts

Counts = tuple[tuple[str, int], ...]
OUT_OF_BAND = (
    AuditAction.OUT_OF_BAND_CHANGE,
    AuditAction.OUT_OF_BAND_CLEARED,
    AuditAction.OUT_OF_BAND_REVERTED,
)


@dataclass(frozen=True)
class GovernanceFigures:
    """What the governance database says right now.

    The `*_by_*` fields are (label, count) pairs in the order the database grouped them.
    """

    requests_by_state: Counts
    pending_created_at: tuple[datetime, ...]  # creation time of every pending request
    decisions_by_outcome: Counts
    executions_by_outcome: Counts
    out_of_band_changes: int  # findings recorded (webhook or reconcile), each once
    out_of_band_open: int  # targets whose latest finding is a change not yet cleared or put back
    drift_shares: tuple[tuple[str, str, float], ...]  # (model, version, share), sorted
    webhooks_by_status: Counts
    out_of_band_reverted: int = 0  # moves put back on the governed holder
    # From the latest monitoring batch (by as-of time) of each version:
    quality: tuple[tuple[str, str, str, float], ...] = ()  # (model, version, metric, value)
    monitoring_batches: int = 0  # batches recorded, all versions
    monitoring_findings_open: int = 0


def read_figures(engine: Engine) -> GovernanceFigures:
    """Read the monitoring figures in one read-only transaction.

    Raises:
        GovernanceError: The database cannot be read (a child such as DatabaseUnavailable).
    """
    with translate_errors(), engine.connect() as conn:
        conn = conn.execution_options(**{READ_ONLY: True})
        changes, still_open, reverted = _out_of_band(conn)
        shares, quality = _latest_batches(conn)
        return GovernanceFigures(
            requests_by_state=_grouped(conn, RequestRow.state),
            pending_created_at=_pending_created_at(conn),
            decisions_by_outcome=_grouped(conn, DecisionRow.outcome),
            executions_by_outcome=_grouped(conn, ExecutionRow.outcome),
            out_of_band_changes=changes,
            out_of_band_open=still_open,
            out_of_band_reverted=reverted,
            drift_shares=shares,
            webhooks_by_status=tuple(status_counts(conn).items()),
            quality=quality,
            monitoring_batches=_count(conn, MonitoringBatchRow.id),
            monitoring_findings_open=_count(
                conn, MonitoringFindingRow.id, MonitoringFindingRow.state == OPEN
            ),
        )


def _grouped(conn: Connection, column: Any) -> Counts:
    rows = conn.execute(select(column, func.count()).group_by(column))
    return tuple((str(label), int(n)) for label, n in rows)


def _pending_created_at(conn: Connection) -> tuple[datetime, ...]:
    pending = select(RequestRow.created_at).where(RequestRow.state == State.PENDING.value)
    return tuple(conn.scalars(pending))


def _out_of_band(conn: Connection) -> tuple[int, int, int]:
    rows = conn.execute(
        select(AuditEventRow.object_id, AuditEventRow.action)
        .where(AuditEventRow.action.in_(OUT_OF_BAND))
        .order_by(AuditEventRow.seq)
    ).all()
    last: dict[str, str] = {}
    for object_id, action in rows:
        last[str(object_id)] = str(action)
    changes = sum(1 for _, action in rows if action == AuditAction.OUT_OF_BAND_CHANGE)
    still_open = sum(1 for action in last.values() if action == AuditAction.OUT_OF_BAND_CHANGE)
    reverted = sum(1 for _, action in rows if action == AuditAction.OUT_OF_BAND_REVERTED)
    return changes, still_open, reverted


def _count(conn: Connection, column: Any, *where: Any) -> int:
    return int(conn.scalar(select(func.count(column)).where(*where)) or 0)


def _latest_batches(
    conn: Connection,
) -> tuple[tuple[tuple[str, str, float], ...], tuple[tuple[str, str, str, float], ...]]:
    # The drift share and quality of a version are those of its latest monitoring batch (by
    # as-of time, then recording order): what the model is doing now, not what a promotion
    # request once pinned. Grouped on the (model, version, as_of) index: one row per version.
    b = MonitoringBatchRow
    newest = (
        select(b.model, b.version, func.max(b.as_of).label("as_of"))
        .group_by(b.model, b.version)
        .subquery()
    )
    ids = (
        select(func.max(b.id))
        .join(
            newest,
            and_(
                b.model == newest.c.model, b.version == newest.c.version, b.as_of == newest.c.as_of
            ),
        )
        .group_by(b.model, b.version)
    )
    latest: dict[tuple[str, str], tuple[float, str]] = {}
    for model, version, share, text in conn.execute(
        select(b.model, b.version, b.share_drifted, b.quality).where(b.id.in_(ids))
    ):
        latest[(str(model), str(version))] = (float(share), str(text or ""))
    shares = tuple((m, v, share) for (m, v), (share, _) in sorted(latest.items()))
    quality = tuple(
        (m, v, metric, value)
        for (m, v), (_, quality_text) in sorted(latest.items())
        for metric, value in sorted(metrics_of(quality_text).items())
    )
    return shares, quality
