"""Driver errors become one-line domain errors in one place (governance.db.translate).

The messages are the real texts SQLite and PostgreSQL give; the integration tests provoke them
on the real databases as well.
"""

from __future__ import annotations

import pytest
from sqlalchemy.exc import IntegrityError, InternalError, OperationalError

from governance.db import DatabaseUnavailable, translate
from governance.errors import Conflict, DuplicateVote, SchemaOutOfDate


@pytest.mark.parametrize(
    ("error", "expected", "words"),
    [
        (
            IntegrityError(
                "x", {}, Exception("UNIQUE constraint failed: votes.request_id, votes.approver")
            ),
            DuplicateVote,
            "already",
        ),
        (
            IntegrityError(
                "x",
                {},
                Exception(
                    'duplicate key value violates unique constraint "uq_votes_request_approver"'
                ),
            ),
            DuplicateVote,
            "already",
        ),
        (
            IntegrityError("x", {}, Exception("UNIQUE constraint failed: users.name")),
            Conflict,
            "user with this name",
        ),
        (
            IntegrityError(
                "x",
                {},
                Exception(
                    "duplicate key value violates unique constraint "
                    '"uq_promotion_requests_one_pending"'
                ),
            ),
            Conflict,
            "open request",
        ),
        (
            IntegrityError("x", {}, Exception("UNIQUE constraint failed: audit_events.prev_hash")),
            Conflict,
            "fork",
        ),
        (
            IntegrityError("x", {}, Exception("audit_events is append-only: UPDATE refused")),
            Conflict,
            "append-only",
        ),
        (
            InternalError("x", {}, Exception("audit_events is append-only: DELETE refused")),
            Conflict,
            "append-only",
        ),
        (OperationalError("x", {}, Exception("database is locked")), DatabaseUnavailable, "busy"),
        (
            OperationalError("x", {}, Exception("no such table: users")),
            SchemaOutOfDate,
            "db upgrade",
        ),
        (
            OperationalError(
                "x",
                {},
                Exception("connection failed: Connection refused\n\tIs the server running?"),
            ),
            DatabaseUnavailable,
            "unavailable",
        ),
    ],
)
def test_a_driver_error_becomes_a_one_line_domain_error(
    error: Exception, expected: type[Exception], words: str
) -> None:
    translated = translate(error)  # type: ignore[arg-type]
    assert type(translated) is expected
    assert words in str(translated)
    assert "\n" not in str(translated)
