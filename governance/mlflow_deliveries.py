"""MLflow's webhook deliveries in SQL: accepted once per delivery id, then claimed by a worker.

The receiver's request handler only calls `accept` (one short INSERT) and answers; the worker
loop, in the same process and in every replica, calls `claim`, which hands each due delivery to
exactly one worker (a conditional update, like the webhook outbox) with a lease after which a
crashed worker's delivery is taken up again. The delivery id is the primary key: a replay of an
id is refused by the database, whichever replica it reaches. Every method is its own short
transaction and only our frozen dataclasses leave the module.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, and_, delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from governance.db import READ_ONLY, translate_errors
from governance.leased_rows import record_failure, take_lease
from governance.operational_rows import MlflowDeliveryRow
from governance.orm import table_of

PENDING, WORKING, DONE, FAILED = "pending", "working", "done", "failed"


@dataclass(frozen=True)
class StoredDelivery:
    """A delivery a worker now holds the lease on."""

    delivery_id: str
    event: str
    model: str
    body: str
    attempts: int
    received_at: datetime


class SqlMlflowDeliveries:
    """The deliveries table of the governance database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
        # RETURNING tells whether the row went in (rowcount is not reliable for ON CONFLICT on
        # every driver): no row back means the id was there already.
        self._insert: Any = (
            dialect.insert(table_of(MlflowDeliveryRow))
            .on_conflict_do_nothing(index_elements=["delivery_id"])
            .returning(table_of(MlflowDeliveryRow).c.delivery_id)
        )

    def accept(
        self, *, delivery_id: str, sent_at: int, event: str, model: str, body: str, now: datetime
    ) -> bool:
        """Store a verified delivery; False when its id was stored before (a replay)."""
        row = {
            "delivery_id": delivery_id,
            "received_at": now,
            "sent_at": sent_at,
            "event": event,
            "model": model,
            "body": body,
            "status": PENDING,
            "attempts": 0,
            "next_attempt_at": now,
            "claimed_until": None,
            "processed_at": None,
            "last_error": "",
        }
        with translate_errors(), self.engine.begin() as conn:
            return conn.execute(self._insert, row).first() is not None

    def claim(self, now: datetime, lease: timedelta, limit: int = 100) -> list[StoredDelivery]:
        """Take the lease on due deliveries, oldest first (pending, or working past its lease)."""
        due = or_(
            and_(MlflowDeliveryRow.status == PENDING, MlflowDeliveryRow.next_attempt_at <= now),
            and_(MlflowDeliveryRow.status == WORKING, MlflowDeliveryRow.claimed_until < now),
        )
        claimed: list[StoredDelivery] = []
        # Read first without the write lock: an idle worker polls, and on SQLite a write
        # transaction would take the database's write lock every second for nothing.
        with translate_errors(), self.engine.connect() as reader:
            reader = reader.execution_options(**{READ_ONLY: True})
            candidates = reader.execute(
                select(
                    MlflowDeliveryRow.delivery_id,
                    MlflowDeliveryRow.event,
                    MlflowDeliveryRow.model,
                    MlflowDeliveryRow.body,
                    MlflowDeliveryRow.attempts,
                    MlflowDeliveryRow.received_at,
                    MlflowDeliveryRow.status,
                    MlflowDeliveryRow.claimed_until,
                )
                .where(due)
                .order_by(MlflowDeliveryRow.received_at)
                .limit(limit)
            ).all()
        if not candidates:
            return claimed
        with translate_errors(), self.engine.begin() as conn:
            for row in candidates:
                # Conditional update: a worker in another replica that got there first (to a new
                # delivery, or to one whose lease ran out) leaves 0 rows here.
                lease_was = (
                    MlflowDeliveryRow.claimed_until.is_(None)
                    if row.claimed_until is None
                    else MlflowDeliveryRow.claimed_until == row.claimed_until
                )
                as_read = (
                    MlflowDeliveryRow.delivery_id == row.delivery_id,
                    MlflowDeliveryRow.status == row.status,
                    MlflowDeliveryRow.attempts == row.attempts,
                    lease_was,
                )
                if take_lease(conn, MlflowDeliveryRow, as_read, status=WORKING, until=now + lease):
                    claimed.append(
                        StoredDelivery(
                            delivery_id=str(row.delivery_id),
                            event=str(row.event),
                            model=str(row.model),
                            body=str(row.body),
                            attempts=int(row.attempts),
                            received_at=row.received_at,
                        )
                    )
        return claimed

    def finish(self, delivery_ids: Sequence[str], now: datetime) -> None:
        """Mark deliveries as compared with the ledger."""
        if not delivery_ids:
            return
        with translate_errors(), self.engine.begin() as conn:
            conn.execute(
                update(MlflowDeliveryRow)
                .where(MlflowDeliveryRow.delivery_id.in_(list(delivery_ids)))
                .values(
                    status=DONE,
                    attempts=MlflowDeliveryRow.attempts + 1,
                    processed_at=now,
                    claimed_until=None,
                    last_error="",
                )
            )

    def retry(
        self,
        delivery_id: str,
        now: datetime,
        error: str,
        *,
        max_attempts: int,
        retry_after: Callable[[int], timedelta],
    ) -> bool:
        """Record a failed comparison and schedule the next; True when it gave up."""
        with translate_errors(), self.engine.begin() as conn:
            return record_failure(
                conn,
                MlflowDeliveryRow,
                (MlflowDeliveryRow.delivery_id == delivery_id,),
                now=now,
                error=error,
                max_attempts=max_attempts,
                retry_after=retry_after,
                pending=PENDING,
                failed=FAILED,
            )

    def prune(self, before: datetime) -> int:
        """Delete finished and given-up deliveries received before `before`; returns how many.

        Their ids may then be sent again, but MLflow's timestamp on such a replay is older than
        the receiver's window, so it is refused all the same.
        """
        with translate_errors(), self.engine.begin() as conn:
            result = conn.execute(
                delete(MlflowDeliveryRow).where(
                    MlflowDeliveryRow.status.in_((DONE, FAILED)),
                    MlflowDeliveryRow.received_at < before,
                )
            )
            return int(result.rowcount or 0)

    def counts(self) -> dict[str, int]:
        """Deliveries by status."""
        with translate_errors(), self.engine.connect() as conn:
            conn = conn.execution_options(**{READ_ONLY: True})
            rows = conn.execute(
                select(MlflowDeliveryRow.status, func.count()).group_by(MlflowDeliveryRow.status)
            ).all()
            return {str(status): int(n) for status, n in rows}
