"""The webhook outbox as the dispatcher sees it: which entries notify, delivery ids, backoff.

The rows live in the governance database and only `governance.webhook_outbox` touches them
(cursor per endpoint, one row per delivery, leases; see there for why a notification always
follows its commit and is queued once). This module binds the delivery rules of `app.webhooks`
to that store: the notifying actions, the stable delivery id per (endpoint, seq), and the
exponential backoff between attempts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from app.webhooks.signing import NOTIFIED_ACTIONS, delivery_id
from governance.db import Engine
from governance.webhook_outbox import SqlWebhookOutbox

MAX_BACKOFF = timedelta(hours=1)


@dataclass(frozen=True)
class Claimed:
    """A delivery this dispatcher holds the lease on, with the audit entry it announces."""

    seq: int
    delivery_id: str
    attempts: int
    event: dict[str, object]


def backoff_delay(attempts: int, base_s: int) -> timedelta:
    """Exponential backoff after the n-th failed attempt: base, 2 x base, 4 x base ... <= 1 h."""
    return min(timedelta(seconds=base_s * 2 ** max(attempts - 1, 0)), MAX_BACKOFF)


class Outbox:
    """Delivery state per (endpoint, seq) in the governance database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._store = SqlWebhookOutbox(engine)

    def enqueue(self, key: str, now: datetime, batch: int = 500) -> int:
        """Queue the notifying audit entries past the endpoint's cursor; returns how many.

        A new endpoint starts at the current chain head: adding a receiver does not replay
        the whole history into a chat channel.
        """
        return self._store.enqueue(
            key, now, notified=NOTIFIED_ACTIONS, delivery_id=delivery_id, batch=batch
        )

    def claim(self, key: str, now: datetime, lease: timedelta, limit: int = 50) -> list[Claimed]:
        """Take the lease on due deliveries (pending and due, or sending with an expired lease)."""
        return [
            Claimed(item.seq, item.delivery_id, item.attempts, asdict(item.event))
            for item in self._store.claim(key, now, lease, limit)
        ]

    def delivered(self, key: str, seq: int, now: datetime) -> None:
        """Record a 2xx answer."""
        self._store.delivered(key, seq, now)

    def failed(
        self, key: str, seq: int, now: datetime, error: str, *, max_attempts: int, backoff_s: int
    ) -> bool:
        """Record a failed attempt and schedule the retry; True when the delivery gave up."""
        return self._store.failed(
            key,
            seq,
            now,
            error,
            max_attempts=max_attempts,
            retry_after=lambda attempts: backoff_delay(attempts, backoff_s),
        )

    def prune(self, before: datetime) -> int:
        """Delete delivered and given-up rows created before `before`; returns how many.

        Safe at any time: the cursors have moved past these entries, so nothing is queued again,
        and the audit log (the source) is untouched.
        """
        return self._store.prune(before)

    def counts(self) -> dict[str, int]:
        """Outbox rows by status (for monitoring)."""
        return self._store.counts()
