"""Prometheus metrics read from the governance database at scrape time.

A custom collector: every scrape reads a snapshot of figures (`governance.metrics_queries`: a
few indexed aggregate queries), so the numbers are the database's, not one process's memory,
and any number of exporters agree. Verifying the whole chain costs time proportional to the log,
so its result is cached for COUNTERSIGN_METRICS_VERIFY_INTERVAL_S seconds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from governance.audit_store import verify_audit_log
from governance.db import Engine
from governance.metrics_queries import Counts, GovernanceFigures, read_figures
from governance.seals import Sealer

# Upper bounds of the age buckets of pending requests, and their labels.
AGE_BUCKETS: tuple[tuple[timedelta | None, str], ...] = (
    (timedelta(hours=1), "lt_1h"),
    (timedelta(days=1), "1h_to_1d"),
    (timedelta(days=7), "1d_to_7d"),
    (None, "ge_7d"),
)


def _age_bucket(age: timedelta) -> str:
    for bound, label in AGE_BUCKETS:
        if bound is None or age < bound:
            return label
    return AGE_BUCKETS[-1][1]


def _labelled(
    kind: type[GaugeMetricFamily] | type[CounterMetricFamily],
    name: str,
    documentation: str,
    label: str,
    counts: Counts,
) -> Metric:
    family = kind(name, documentation, labels=[label])
    for value, n in counts:
        family.add_metric([value], n)
    return family


class GovernanceCollector(Collector):
    """Collects the Countersign series from the governance database on each scrape."""

    def __init__(
        self,
        engine: Engine,
        *,
        sealer: Sealer | None = None,
        verify_interval_s: float = 300,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.engine = engine
        self.sealer = sealer  # with the seal key, the chain check covers every entry's seal
        self.verify_interval_s = verify_interval_s
        self.clock = clock
        self._lock = threading.Lock()
        self._verified: tuple[float, bool, int, float] | None = None  # at, ok, count, seconds

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "countersign_governance_db_up", "1 when the governance database answered this scrape"
        )
        try:
            families = list(self._from_figures(read_figures(self.engine)))
        except Exception:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families
        yield from self._chain()

    def _from_figures(self, figures: GovernanceFigures) -> Iterator[Metric]:
        yield _labelled(
            GaugeMetricFamily,
            "countersign_requests",
            "Promotion requests by state",
            "state",
            figures.requests_by_state,
        )
        yield from self._pending(figures.pending_created_at)
        yield _labelled(
            CounterMetricFamily,
            "countersign_decisions",
            "Decided requests by outcome",
            "outcome",
            figures.decisions_by_outcome,
        )
        yield _labelled(
            CounterMetricFamily,
            "countersign_executions",
            "Execution attempts in MLflow by outcome (failures included)",
            "outcome",
            figures.executions_by_outcome,
        )
        yield CounterMetricFamily(
            "countersign_out_of_band_changes",
            "Out-of-band changes found in MLflow (webhook or reconcile; each recorded once)",
            value=figures.out_of_band_changes,
        )
        yield CounterMetricFamily(
            "countersign_out_of_band_reverted",
            "Out-of-band changes put back on the governed holder",
            value=figures.out_of_band_reverted,
        )
        yield GaugeMetricFamily(
            "countersign_out_of_band_open",
            "Registry targets whose latest finding is an out-of-band change not yet resolved",
            value=figures.out_of_band_open,
        )
        yield from self._monitoring(figures)
        yield _labelled(
            GaugeMetricFamily,
            "countersign_webhook_deliveries",
            "Webhook deliveries in the outbox by status",
            "status",
            figures.webhooks_by_status,
        )

    def _monitoring(self, figures: GovernanceFigures) -> Iterator[Metric]:
        # What each model version is doing now: its latest monitoring batch (by as-of time).
        drift = GaugeMetricFamily(
            "countersign_model_drift_share",
            "Share of drifted columns in the latest monitoring batch of a model version",
            labels=["model", "version"],
        )
        for model, version, share in figures.drift_shares:
            drift.add_metric([model, version], share)
        yield drift
        quality = GaugeMetricFamily(
            "countersign_model_quality",
            "Quality metric of the latest labelled monitoring batch of a model version",
            labels=["model", "version", "metric"],
        )
        for model, version, metric, value in figures.quality:
            quality.add_metric([model, version, metric], value)
        yield quality
        yield CounterMetricFamily(
            "countersign_monitoring_batches",
            "Monitoring batches recorded (scored production data sets), all versions",
            value=figures.monitoring_batches,
        )
        yield GaugeMetricFamily(
            "countersign_monitoring_findings_open",
            "Monitoring findings (thresholds crossed) not yet closed by a person",
            value=figures.monitoring_findings_open,
        )

    def _pending(self, created_at: tuple[datetime, ...]) -> Iterator[Metric]:
        now = self.clock()
        pending = GaugeMetricFamily(
            "countersign_pending_requests",
            "Pending promotion requests by age bucket",
            labels=["age"],
        )
        counts = {label: 0 for _, label in AGE_BUCKETS}
        oldest = timedelta(0)
        for created in created_at:
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

    def _chain(self) -> Iterator[Metric]:
        with self._lock:
            stale = self._verified is None or (
                time.monotonic() - self._verified[0] >= self.verify_interval_s
            )
            if stale:
                started = time.monotonic()
                try:
                    result = verify_audit_log(self.engine, sealer=self.sealer, workers=1)
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
