"""The worker: takes stored deliveries and compares their models with the ledger.

It runs in a thread of the receiver process (every replica has one); `claim` in the governance
database hands each delivery to one worker only. Deliveries are grouped by model, so the seven
events of one governed execution (an alias and six provenance tags) cost one comparison. What
MLflow holds is read again at comparison time: a delivery says where to look, never what is
true, so a reordered or late delivery cannot mislead it. A comparison that fails (MLflow or the
database unreachable) is retried with backoff; after `max_attempts` the delivery is given up and
the next `reconcile` remains the backstop.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta

from app.receiver.refusals import RefusalLog
from governance.errors import GovernanceError, UnknownModel
from governance.mlflow_deliveries import SqlMlflowDeliveries, StoredDelivery

# Registry events that can change what holds an alias or a stage (a stage move sends none of its
# own in MLflow 3.17; the next event of the same model, or reconcile, finds it).
RELEVANT_EVENTS = frozenset(
    {
        "model_version_alias.created",
        "model_version_alias.deleted",
        "model_version_tag.set",
        "model_version_tag.deleted",
        "model_version.created",
        "registered_model.created",
    }
)
KEEP_DELIVERIES = timedelta(days=7)
PRUNE_EVERY = timedelta(hours=1)
MAX_BACKOFF_S = 300


def utc_now() -> datetime:
    return datetime.now(UTC)


class EnforcementWorker:
    """Claims deliveries and hands each model to `compare(model, detected_by)`."""

    def __init__(
        self,
        deliveries: SqlMlflowDeliveries,
        compare: Callable[[str, Mapping[str, object]], None],
        refusals: RefusalLog | None = None,
        *,
        lease: timedelta = timedelta(seconds=120),
        max_attempts: int = 8,
        backoff_s: int = 5,
        clock: Callable[[], datetime] = utc_now,
        log: Callable[[str], None] = print,
    ) -> None:
        self.deliveries = deliveries
        self.compare = compare
        self.refusals = refusals
        self.lease = lease
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.clock = clock
        self.log = log
        self._pruned_at: datetime | None = None

    def run_once(self) -> int:
        """Compare every due delivery once; returns how many deliveries were handled."""
        claimed = self.deliveries.claim(self.clock(), self.lease)
        by_model: dict[str, list[StoredDelivery]] = {}
        ignored = []
        for item in claimed:
            if item.event in RELEVANT_EVENTS and item.model:
                by_model.setdefault(item.model, []).append(item)
            else:
                ignored.append(item.delivery_id)
        self.deliveries.finish(ignored, self.clock())
        for model, items in sorted(by_model.items()):
            detected_by = {
                "source": "mlflow_webhook",
                "events": sorted({i.event for i in items}),
                "delivery_ids": [i.delivery_id for i in items][:10],
            }
            try:
                self.compare(model, detected_by)
            except UnknownModel:
                # Deleted since (or never a registered model): nothing left to compare; the
                # next reconcile still weighs the ledger's record of it.
                self.log(f"receiver: {len(items)} delivery(ies) name a model MLflow does not have")
            except GovernanceError as exc:
                self._failed(items, f"{type(exc).__name__}: {exc}")
                continue
            self.deliveries.finish([i.delivery_id for i in items], self.clock())
        return len(claimed)

    def _failed(self, items: list[StoredDelivery], error: str) -> None:
        for item in items:
            gave_up = self.deliveries.retry(
                item.delivery_id,
                self.clock(),
                error,
                max_attempts=self.max_attempts,
                retry_after=lambda n: timedelta(seconds=min(self.backoff_s * 2**n, MAX_BACKOFF_S)),
            )
            verb = "given up; reconcile remains the backstop" if gave_up else "will retry"
            self.log(
                f"receiver: delivery {item.delivery_id} ({item.model}) failed ({error}); {verb}"
            )

    def housekeeping(self) -> None:
        """Write due refusal entries; prune old finished deliveries once an hour."""
        if self.refusals is not None:
            try:
                self.refusals.flush()
            except GovernanceError as exc:
                self.log(f"receiver: could not audit refused deliveries ({exc})")
        now = self.clock()
        if self._pruned_at is None or now - self._pruned_at >= PRUNE_EVERY:
            self._pruned_at = now
            self.deliveries.prune(now - KEEP_DELIVERIES)

    def run_forever(
        self, stop: threading.Event, wake: threading.Event, poll_s: float = 1.0
    ) -> None:
        """Work until `stop` is set; woken at once by `wake` (a delivery stored here)."""
        while not stop.is_set():
            wake.clear()
            try:
                busy = self.run_once()
                self.housekeeping()
            except GovernanceError as exc:
                self.log(f"receiver: pass failed ({exc}); retrying")
                busy = 0
            if not busy:
                wake.wait(poll_s)
        if self.refusals is not None:
            try:
                self.refusals.flush(final=True)
            except GovernanceError as exc:
                self.log(f"receiver: could not audit refused deliveries ({exc})")
