"""The webhook outbox in SQL: a cursor per endpoint over the audit log, and delivery rows.

`enqueue` reads committed audit entries past the endpoint's cursor and writes one outbox row per
notifying entry in the same transaction that moves the cursor. Audit appends are serialised and
commit in seq order, so the cursor can never pass an entry that is still to commit: a
notification always follows its commit, and each (endpoint, seq) is queued exactly once (the
primary key says so). `claim` hands a due row to exactly one dispatcher (a conditional update),
with a lease after which a crashed dispatcher's row is retried under the same delivery id.

Which actions notify, how a delivery id is formed and how long to wait before a retry are the
caller's choices (`app.webhooks`), passed in; this module only keeps the rows. Every method is
its own short transaction, and only our frozen dataclasses leave it.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, and_, delete, func, insert, or_, select, update

from governance.audit import AuditRecord
from governance.audit_store import AUDIT_COLUMNS
from governance.db import READ_ONLY, translate_errors
from governance.leased_rows import record_failure, take_lease
from governance.operational_rows import WebhookCursorRow, WebhookOutboxRow
from governance.orm import AuditEventRow

PENDING, SENDING, DELIVERED, FAILED = "pending", "sending", "delivered", "failed"


@dataclass(frozen=True)
class ClaimedDelivery:
    """A delivery the caller now holds the lease on, with the audit entry it announces."""

    seq: int
    delivery_id: str
    attempts: int
    event: AuditRecord


class SqlWebhookOutbox:
    """Delivery state per (endpoint, seq) in the governance database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def enqueue(
        self,
        key: str,
        now: datetime,
        *,
        notified: Container[str],
        delivery_id: Callable[[str, int], str],
        batch: int = 500,
    ) -> int:
        """Queue the audit entries past the endpoint's cursor whose action is `notified`.

        A new endpoint starts at the current chain head: adding a receiver does not replay
        the whole history into a chat channel.

        Args:
            key: The endpoint's key (a hash of its URL, never the URL).
            now: When this happens (UTC).
            notified: The audit actions that are announced; the cursor moves past the others.
            delivery_id: The stable id of the delivery of (key, seq), kept across retries.
            batch: At most this many audit entries are read per call.

        Returns:
            How many deliveries were queued.
        """
        with translate_errors(), self.engine.begin() as conn:
            last = conn.execute(
                select(WebhookCursorRow.last_seq)
                .where(WebhookCursorRow.endpoint_key == key)
                .with_for_update()
            ).scalar()
            if last is None:
                head = conn.execute(select(func.max(AuditEventRow.seq))).scalar() or 0
                conn.execute(
                    insert(WebhookCursorRow).values(
                        endpoint_key=key, last_seq=int(head), updated_at=now
                    )
                )
                return 0
            events = conn.execute(
                select(AuditEventRow.seq, AuditEventRow.action)
                .where(AuditEventRow.seq > last)
                .order_by(AuditEventRow.seq)
                .limit(batch)
            ).all()
            if not events:
                return 0
            rows = [
                _new_row(key, int(seq), str(action), delivery_id(key, int(seq)), now)
                for seq, action in events
                if action in notified
            ]
            if rows:
                conn.execute(insert(WebhookOutboxRow), rows)
            conn.execute(
                update(WebhookCursorRow)
                .where(WebhookCursorRow.endpoint_key == key)
                .values(last_seq=int(events[-1].seq), updated_at=now)
            )
            return len(rows)

    def claim(
        self, key: str, now: datetime, lease: timedelta, limit: int = 50
    ) -> list[ClaimedDelivery]:
        """Take the lease on due deliveries (pending and due, or sending with an expired lease)."""
        due = or_(
            and_(WebhookOutboxRow.status == PENDING, WebhookOutboxRow.next_attempt_at <= now),
            and_(WebhookOutboxRow.status == SENDING, WebhookOutboxRow.claimed_until < now),
        )
        claimed: list[tuple[int, str, int]] = []
        with translate_errors(), self.engine.begin() as conn:
            candidates = conn.execute(
                select(
                    WebhookOutboxRow.seq,
                    WebhookOutboxRow.delivery_id,
                    WebhookOutboxRow.attempts,
                    WebhookOutboxRow.status,
                )
                .where(WebhookOutboxRow.endpoint_key == key, due)
                .order_by(WebhookOutboxRow.seq)
                .limit(limit)
            ).all()
            for seq, delivery, attempts, status in candidates:
                # Conditional update: a concurrent dispatcher that got there first leaves 0 rows.
                as_read = (
                    WebhookOutboxRow.endpoint_key == key,
                    WebhookOutboxRow.seq == seq,
                    WebhookOutboxRow.status == status,
                    WebhookOutboxRow.attempts == attempts,
                )
                if take_lease(conn, WebhookOutboxRow, as_read, status=SENDING, until=now + lease):
                    claimed.append((int(seq), str(delivery), int(attempts)))
            events = _events(conn, [seq for seq, _, _ in claimed])
        return [ClaimedDelivery(seq, d, a, events[seq]) for seq, d, a in claimed]

    def delivered(self, key: str, seq: int, now: datetime) -> None:
        """Record a 2xx answer."""
        with translate_errors(), self.engine.begin() as conn:
            conn.execute(
                update(WebhookOutboxRow)
                .where(WebhookOutboxRow.endpoint_key == key, WebhookOutboxRow.seq == seq)
                .values(
                    status=DELIVERED,
                    attempts=WebhookOutboxRow.attempts + 1,
                    delivered_at=now,
                    claimed_until=None,
                    last_error="",
                )
            )

    def failed(
        self,
        key: str,
        seq: int,
        now: datetime,
        error: str,
        *,
        max_attempts: int,
        retry_after: Callable[[int], timedelta],
    ) -> bool:
        """Record a failed attempt and schedule the retry; True when the delivery gave up.

        Args:
            retry_after: The wait after the n-th failed attempt (n counts this one).
        """
        with translate_errors(), self.engine.begin() as conn:
            return record_failure(
                conn,
                WebhookOutboxRow,
                (WebhookOutboxRow.endpoint_key == key, WebhookOutboxRow.seq == seq),
                now=now,
                error=error,
                max_attempts=max_attempts,
                retry_after=retry_after,
                pending=PENDING,
                failed=FAILED,
            )

    def prune(self, before: datetime) -> int:
        """Delete delivered and given-up rows created before `before`; returns how many.

        Safe at any time: the cursors have moved past these entries, so nothing is queued again,
        and the audit log (the source) is untouched.
        """
        with translate_errors(), self.engine.begin() as conn:
            result = conn.execute(
                delete(WebhookOutboxRow).where(
                    WebhookOutboxRow.status.in_((DELIVERED, FAILED)),
                    WebhookOutboxRow.created_at < before,
                )
            )
            return int(result.rowcount or 0)

    def counts(self) -> dict[str, int]:
        """Outbox rows by status."""
        with translate_errors(), self.engine.connect() as conn:
            conn = conn.execution_options(**{READ_ONLY: True})
            return status_counts(conn)


def status_counts(conn: Connection) -> dict[str, int]:
    """Outbox rows by status, in the order the database groups them, on an open connection."""
    rows = conn.execute(
        select(WebhookOutboxRow.status, func.count()).group_by(WebhookOutboxRow.status)
    ).all()
    return {str(status): int(n) for status, n in rows}


def _new_row(key: str, seq: int, action: str, delivery: str, now: datetime) -> dict[str, object]:
    return {
        "endpoint_key": key,
        "seq": seq,
        "delivery_id": delivery,
        "action": action,
        "status": PENDING,
        "attempts": 0,
        "next_attempt_at": now,
        "claimed_until": None,
        "delivered_at": None,
        "last_error": "",
        "created_at": now,
    }


def _events(conn: Connection, seqs: Sequence[int]) -> dict[int, AuditRecord]:
    if not seqs:
        return {}
    rows = conn.execute(select(*AUDIT_COLUMNS).where(AuditEventRow.seq.in_(seqs))).all()
    return {int(row.seq): AuditRecord(**row._mapping) for row in rows}
