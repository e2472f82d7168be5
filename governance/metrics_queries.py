"""Read-side figures of the governance tables for monitoring (the Prometheus exporter).

A handful of aggregate queries (indexed, cheap) in one read-only transaction, so the figures are
the database's at one moment, not one process's memory, and any number of exporters agree. The
result is a frozen snapshot: turning it into metric families (names, labels, age buckets) is the
exporter's business.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, func, select

from governance.db import READ_ONLY, translate_errors
from governance.domain import AuditAction, State
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


def read_figures(engine: Engine) -> GovernanceFigures:
    """Read the monitoring figures in one read-only transaction.

    Raises:
        GovernanceError: The database cannot be read (a child such as DatabaseUnavailable).
    """
    with translate_errors(), engine.connect() as conn:
        conn = conn.execution_options(**{READ_ONLY: True})
        changes, still_open, reverted = _out_of_band(conn)
        return GovernanceFigures(
            requests_by_state=_grouped(conn, RequestRow.state),
            pending_created_at=_pending_created_at(conn),
            decisions_by_outcome=_grouped(conn, DecisionRow.outcome),
            executions_by_outcome=_grouped(conn, ExecutionRow.outcome),
            out_of_band_changes=changes,
            out_of_band_open=still_open,
            out_of_band_reverted=reverted,
            drift_shares=_drift_shares(conn),
            webhooks_by_status=tuple(status_counts(conn).items()),
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


def _drift_shares(conn: Connection) -> tuple[tuple[str, str, float], ...]:
    # The persisted drift share per version is the one pinned in a request's evidence
    # (`drift.share_drifted`); the newest request per (model, version) wins.
    latest: dict[tuple[str, str], float] = {}
    for model, version, evidence in conn.execute(
        select(RequestRow.model, RequestRow.version, RequestRow.evidence).order_by(
            RequestRow.created_at
        )
    ):
        try:
            share = (json.loads(evidence or "{}").get("drift") or {}).get("share_drifted")
        except (ValueError, AttributeError):
            continue
        if isinstance(share, (int, float)):
            latest[(str(model), str(version))] = float(share)
    return tuple((model, version, share) for (model, version), share in sorted(latest.items()))
