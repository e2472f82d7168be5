"""The SQL implementation of the browser sessions repository (see governance.store_ports).

Lookups by cookie secret and by grant go through their SHA-256, each unique in the table, so a
lookup is one indexed read. Nothing here commits.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.orm import Session

from governance.db import translate_errors
from governance.domain import BrowserSession
from governance.errors import NotFound
from governance.operational_rows import BrowserSessionRow
from governance.orm import table_of

_TABLE = table_of(BrowserSessionRow)
_FRESH = {"populate_existing": True}


class SqlSessionRepository:
    """Signed-in browsers in the governance database."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, session: BrowserSession) -> None:
        """Insert a session; a taken id, secret or grant raises Conflict."""
        with translate_errors():
            self._session.execute(insert(_TABLE), [BrowserSessionRow.values_of(session)])

    def _one(self, *where: object) -> BrowserSession | None:
        query = select(BrowserSessionRow).where(*where).execution_options(**_FRESH)  # type: ignore[arg-type]
        row = self._session.scalars(query).first()
        return row.to_domain() if row is not None else None

    def get(self, session_id: str) -> BrowserSession | None:
        """The session with this id, or None."""
        return self._one(BrowserSessionRow.id == session_id)

    def find_by_secret(self, secret_hash: str) -> BrowserSession | None:
        """The session whose cookie secret hashes to `secret_hash`, or None."""
        return self._one(BrowserSessionRow.secret_hash == secret_hash) if secret_hash else None

    def find_by_grant(self, grant_hash: str) -> BrowserSession | None:
        """The session whose unused grant hashes to `grant_hash`, or None."""
        return self._one(BrowserSessionRow.grant_hash == grant_hash) if grant_hash else None

    def update(self, session: BrowserSession) -> None:
        """Store every field of an existing session."""
        values = BrowserSessionRow.values_of(session)
        with translate_errors():
            result = self._session.execute(
                update(_TABLE).where(_TABLE.c.id == session.id).values(values)
            )
        if getattr(result, "rowcount", 0) != 1:
            raise NotFound(f"no session {session.id}")

    def active(self, now: datetime, user: str | None = None) -> tuple[BrowserSession, ...]:
        """Sessions neither revoked nor expired at `now`, newest first."""
        query = (
            select(BrowserSessionRow)
            .where(BrowserSessionRow.revoked_at.is_(None))
            .where(BrowserSessionRow.expires_at > now)
            .where(BrowserSessionRow.idle_expires_at > now)
            .order_by(BrowserSessionRow.created_at.desc(), BrowserSessionRow.id)
        )
        if user is not None:
            query = query.where(BrowserSessionRow.user_name == user)
        rows = self._session.scalars(query.execution_options(**_FRESH))
        return tuple(row.to_domain() for row in rows)

    def prune(self, expired_before: datetime) -> int:
        """Delete sessions that ended (absolutely, or by idling) before `expired_before`."""
        ended = or_(_TABLE.c.expires_at < expired_before, _TABLE.c.idle_expires_at < expired_before)
        with translate_errors():
            result = self._session.execute(delete(_TABLE).where(ended))
        return int(getattr(result, "rowcount", 0) or 0)
