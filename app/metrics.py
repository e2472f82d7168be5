"""Prometheus metrics read from the governance database at scrape time.

A custom collector: every scrape runs a few aggregate queries (indexed, cheap), so the numbers
are the database's, not one process's memory, and any number of exporters agree. Verifying the
whole chain costs time proportional to the log, so its result is cached for
COUNTERSIGN_METRICS_VERIFY_INTERVAL_S seconds.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Connection, Engine, func, select

from governance.audit_store import verify_audit_log
from governance.db import READ_ONLY, translate_errors
from governance.orm import (
    AuditEventRow,
    DecisionRow,
    ExecutionRow,
    RequestRow,
    WebhookOutboxRow,
)

# Upper bounds of the age buckets of pending requests, and their labels.
AGE_BUCKETS: tuple[tuple[timedelta | None, str], ...] = (
    (timedelta(hours=1), "lt_1h"),
    (timedelta(days=1), "1h_to_1d"),
    (timedelta(days=7), "1d_to_7d"),
    (None, "ge_7d"),
)
OUT_OF_BAND = ("out_of_band_change", "out_of_band_cleared")


def _age_bucket(age: timedelta) -> str:
    for bound, label in AGE_BUCKETS:
        if bound is None or age < bound:
            return label
    return AGE_BUCKETS[-1][1]


class GovernanceCollector(Collector):
    """Collects the Countersign series from the governance database on each scrape."""

    def __init__(
        self,
        engine: Engine,
        *,
        verify_interval_s: float = 300,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.engine = engine
        self.verify_interval_s = verify_interval_s
        self.clock = clock
        self._lock = threading.Lock()
        self._verified: tuple[float, bool, int, float] | None = None  # at, ok, count, seconds

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "countersign_governance_db_up", "1 when the governance database answered this scrape"
        )
        try:
            with translate_errors(), self.engine.connect() as conn:
                conn = conn.execution_options(**{READ_ONLY: True})
                families = list(self._from_db(conn))
        except Exception:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families
        yield from self._chain()

    def _from_db(self, conn: Connection) -> Iterator[Metric]:
        now = self.clock()
        by_state = GaugeMetricFamily(
            "countersign_requests", "Promotion requests by state", labels=["state"]
        )
        for state, n in conn.execute(
            select(RequestRow.state, func.count()).group_by(RequestRow.state)
        ):
            by_state.add_metric([str(state)], int(n))
        yield by_state

        pending = GaugeMetricFamily(
            "countersign_pending_requests",
            "Pending promotion requests by age bucket",
            labels=["age"],
        )
        counts = {label: 0 for _, label in AGE_BUCKETS}
        oldest = timedelta(0)
        for (created,) in conn.execute(
            select(RequestRow.created_at).where(RequestRow.state == "pending")
        ):
            age = max(now - created, timedelta(0))
            counts[_age_bucket(age)] += 1
            oldest = max(oldest, age)
        for label, n in counts.items():
            pending.add_metric([label], n)
        yield pending
        yield GaugeMetricFamily(
            "countersign_pending_request_oldest_age_seconds",
            "Age of the oldest pending request (0 when none is pending)",
            value=oldest.total_seconds(),
        )

        decisions = CounterMetricFamily(
            "countersign_decisions", "Decided requests by outcome", labels=["outcome"]
        )
        for outcome, n in conn.execute(
            select(DecisionRow.outcome, func.count()).group_by(DecisionRow.outcome)
        ):
            decisions.add_metric([str(outcome)], int(n))
        yield decisions

        executions = CounterMetricFamily(
            "countersign_executions",
            "Execution attempts in MLflow by outcome (failures included)",
            labels=["outcome"],
        )
        for outcome, n in conn.execute(
            select(ExecutionRow.outcome, func.count()).group_by(ExecutionRow.outcome)
        ):
            executions.add_metric([str(outcome)], int(n))
        yield executions

        yield from self._out_of_band(conn)
        yield from self._drift(conn)

        webhooks = GaugeMetricFamily(
            "countersign_webhook_deliveries",
            "Webhook deliveries in the outbox by status",
            labels=["status"],
        )
        for status, n in conn.execute(
            select(WebhookOutboxRow.status, func.count()).group_by(WebhookOutboxRow.status)
        ):
            webhooks.add_metric([str(status)], int(n))
        yield webhooks

    def _out_of_band(self, conn: Connection) -> Iterator[Metric]:
        rows = conn.execute(
            select(AuditEventRow.object_id, AuditEventRow.action)
            .where(AuditEventRow.action.in_(OUT_OF_BAND))
            .order_by(AuditEventRow.seq)
        ).all()
        last: dict[str, str] = {}
        for object_id, action in rows:
            last[str(object_id)] = str(action)
        yield CounterMetricFamily(
            "countersign_out_of_band_changes",
            "Out-of-band changes found in MLflow by reconcile (each recorded once)",
            value=sum(1 for _, action in rows if action == OUT_OF_BAND[0]),
        )
        yield GaugeMetricFamily(
            "countersign_out_of_band_open",
            "Registry targets whose latest reconcile finding is an unresolved out-of-band change",
            value=sum(1 for action in last.values() if action == OUT_OF_BAND[0]),
        )

    def _drift(self, conn: Connection) -> Iterator[Metric]:
        # The persisted drift share per version is the one pinned in a request's evidence
        # (`drift.share_drifted`); the newest request per (model, version) wins.
        family = GaugeMetricFamily(
            "countersign_model_drift_share",
            "Share of drifted columns in the latest evidence of a model version",
            labels=["model", "version"],
        )
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
        for (model, version), share in sorted(latest.items()):
            family.add_metric([model, version], share)
        yield family

    def _chain(self) -> Iterator[Metric]:
        with self._lock:
            stale = self._verified is None or (
                time.monotonic() - self._verified[0] >= self.verify_interval_s
            )
            if stale:
                started = time.monotonic()
                try:
                    result = verify_audit_log(self.engine, workers=1)
                    ok, count = result.ok, result.count
                except Exception:
                    ok, count = False, 0
                self._verified = (time.monotonic(), ok, count, time.monotonic() - started)
            assert self._verified is not None
            _, ok, count, seconds = self._verified
        yield GaugeMetricFamily(
            "countersign_audit_chain_valid",
            "1 when the last verification of the whole audit chain succeeded",
            value=1 if ok else 0,
        )
        yield GaugeMetricFamily(
            "countersign_audit_chain_events", "Entries in the audit chain", value=count
        )
        yield GaugeMetricFamily(
            "countersign_audit_chain_verify_duration_seconds",
            "How long the last chain verification took",
            value=seconds,
        )
        yield GaugeMetricFamily(
            "countersign_audit_chain_verified_age_seconds",
            "Seconds since the chain was last verified (cached between scrapes)",
            value=time.monotonic() - self._verified[0],
        )
