"""What the webhook outbox and MLflow's deliveries share: rows leased to one worker at a time.

A due row is taken with a conditional update (the caller names the state it read, so a worker in
another replica that got there first leaves 0 rows), and a failed attempt puts it back to wait,
or gives it up after the last attempt.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, select, update

MAX_ERROR_CHARS = 500


def take_lease(
    conn: Connection, row: Any, as_read: tuple[Any, ...], *, status: str, until: datetime
) -> bool:
    """Lease the row matching `as_read` (its key and the state it was read in); False if taken."""
    result = conn.execute(update(row).where(*as_read).values(status=status, claimed_until=until))
    return result.rowcount == 1


def record_failure(
    conn: Connection,
    row: Any,
    key: tuple[Any, ...],
    *,
    now: datetime,
    error: str,
    max_attempts: int,
    retry_after: Callable[[int], timedelta],
    pending: str,
    failed: str,
) -> bool:
    """Count a failed attempt on the row at `key` and schedule the next; True when it gave up.

    Args:
        retry_after: The wait after the n-th failed attempt (n counts this one).
    """
    attempts = 1 + int(conn.execute(select(row.attempts).where(*key)).scalar_one())
    gave_up = attempts >= max_attempts
    conn.execute(
        update(row)
        .where(*key)
        .values(
            status=failed if gave_up else pending,
            attempts=attempts,
            next_attempt_at=now + retry_after(attempts),
            claimed_until=None,
            last_error=error[:MAX_ERROR_CHARS],
        )
    )
    return gave_up
