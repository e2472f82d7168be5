"""SQLAlchemy implementations of the workflow repositories (see governance.store_ports).

Each takes the session owned by the unit of work and returns domain objects, converted before
the session closes. Nothing here commits. Writes are executed at once (not left to a later
flush), so that statements reach the database in the order the service issued them, and
uniqueness violations surface as domain errors at the call that caused them.

Votes, decisions and executions are inserted with `ON CONFLICT (key) DO NOTHING` (SQLite and
PostgreSQL both have it): a duplicate inserts no row, is reported as the domain error, and
leaves the transaction usable, without the two extra round trips of a savepoint per insert.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from governance.db import translate_errors
from governance.domain import Decision, Execution, PromotionRequest, State, User, Vote
from governance.errors import Conflict, DuplicateVote, NotFound
from governance.orm import (
    Base,
    DecisionRow,
    ExecutionRow,
    RequestRow,
    UserRow,
    VoteRow,
    table_of,
)

# Reads refresh rows already in the identity map: a conditional UPDATE may have changed them.
_FRESH = {"populate_existing": True}

# The statements of the sign-off path are built once, with bound parameters: building a
# statement with its values inside, and computing its cache key, costs more CPU than the
# database takes to run it.
_REQUEST = select(RequestRow).where(RequestRow.id == bindparam("id")).execution_options(**_FRESH)
_REQUEST_FOR_UPDATE = _REQUEST.with_for_update()
_REQUESTS = table_of(RequestRow)
_UPDATE_REQUEST = (
    update(_REQUESTS)
    .where(_REQUESTS.c.id == bindparam("old_id"))
    .where(_REQUESTS.c.row_version == bindparam("old_row_version"))
)
_VOTES = (
    select(VoteRow)
    .where(VoteRow.request_id == bindparam("request_id"))
    .order_by(VoteRow.signed_at, VoteRow.id)
)
_EXECUTIONS = (
    select(ExecutionRow)
    .where(ExecutionRow.request_id == bindparam("request_id"))
    .order_by(ExecutionRow.attempt)
)


@cache
def _insert_new_statement(dialect: str, table: Table, key: tuple[str, ...]) -> Any:
    flavour = postgresql if dialect == "postgresql" else sqlite
    return (
        flavour.insert(table)
        .on_conflict_do_nothing(index_elements=key)
        .returning(*(table.c[name] for name in key))
    )


def _insert_new(
    session: Session, row: type[Base], values: dict[str, Any], key: tuple[str, ...]
) -> bool:
    """Insert one row unless a row with the same `key` exists; True when it was inserted.

    Other integrity errors (a foreign key) still raise, as Conflict.
    """
    statement = _insert_new_statement(session.get_bind().dialect.name, table_of(row), key)
    with translate_errors():
        # RETURNING names the inserted row (the driver's rowcount is not reliable for this).
        return session.execute(statement, values).first() is not None


class SqlUserRepository:
    """Users; never deleted, disabled instead."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, user: User) -> None:
        """Insert a user; a taken name raises Conflict (the primary key decides)."""
        with translate_errors(), self._session.begin_nested():
            self._session.add(UserRow().fill(user))
            self._session.flush()

    def find(self, name: str) -> User | None:
        """The user with this exact name, or None."""
        row = self._session.get(UserRow, name, populate_existing=True)
        return row.to_domain() if row is not None else None

    def update(self, user: User) -> None:
        """Store every field of an existing user."""
        row = self._session.get(UserRow, user.name, populate_existing=True)
        if row is None:
            raise NotFound(f"no user named {user.name!r}")
        with translate_errors():
            row.fill(user)
            self._session.flush()

    def list(self) -> tuple[User, ...]:
        """Every user, by name."""
        rows = self._session.scalars(
            select(UserRow).order_by(UserRow.name).execution_options(**_FRESH)
        )
        return tuple(row.to_domain() for row in rows)


class SqlRequestRepository:
    """Promotion requests with optimistic concurrency on `row_version`."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, request: PromotionRequest) -> None:
        """Insert a request; the pending-per-target index refuses a second open one."""
        with translate_errors(), self._session.begin_nested():
            self._session.execute(insert(RequestRow), [RequestRow.values_of(request)])

    def _row(self, request_id: str, *, for_update: bool = False) -> RequestRow:
        query = _REQUEST_FOR_UPDATE if for_update else _REQUEST
        row = self._session.scalars(query, {"id": str(request_id)}).first()
        if row is None:
            raise NotFound(f"no promotion request {request_id}")
        return row

    def get(self, request_id: str) -> PromotionRequest:
        """One request (unlocked). Raises NotFound."""
        return self._row(request_id).to_domain()

    def get_for_update(self, request_id: str) -> PromotionRequest:
        """One request with its row locked to the end of the transaction (PostgreSQL)."""
        return self._row(request_id, for_update=True).to_domain()

    def update(self, request: PromotionRequest) -> None:
        """Conditional UPDATE on the previous row_version; a lost race raises Conflict."""
        values = RequestRow.values_of(request)
        values.update(old_id=request.id, old_row_version=request.row_version - 1)
        with translate_errors():
            result = self._session.execute(_UPDATE_REQUEST, values)
        if getattr(result, "rowcount", 0) != 1:
            current = self._session.scalars(
                select(RequestRow.row_version).where(RequestRow.id == request.id)
            ).first()
            if current is None:
                raise NotFound(f"no promotion request {request.id}")
            raise Conflict(
                f"request {request.id} was changed by someone else meanwhile: reload and retry"
            )

    def pending_for_target(
        self, model: str, target_kind: str, target: str
    ) -> PromotionRequest | None:
        """The pending request (kind other than follow_up) for this target, if any."""
        row = self._session.scalars(
            select(RequestRow)
            .where(RequestRow.model == model)
            .where(RequestRow.target_kind == str(target_kind))
            .where(RequestRow.target == target)
            .where(RequestRow.state == State.PENDING.value)
            .where(RequestRow.kind != "follow_up")
            .execution_options(**_FRESH)
        ).first()
        return row.to_domain() if row is not None else None

    def find(
        self, *, state: str | None = None, model: str | None = None, limit: int | None = None
    ) -> tuple[PromotionRequest, ...]:
        """Requests filtered by state and/or model, newest first (ties: id)."""
        query = select(RequestRow).order_by(RequestRow.created_at.desc(), RequestRow.id.desc())
        if state is not None:
            query = query.where(RequestRow.state == str(state))
        if model is not None:
            query = query.where(RequestRow.model == model)
        if limit is not None:
            query = query.limit(limit)
        rows = self._session.scalars(query.execution_options(**_FRESH))
        return tuple(row.to_domain() for row in rows)

    def due_for_expiry(self, now: datetime) -> tuple[PromotionRequest, ...]:
        """Pending requests whose expiry has passed, oldest first."""
        rows = self._session.scalars(
            select(RequestRow)
            .where(RequestRow.state == State.PENDING.value)
            .where(RequestRow.expires_at <= now)
            .order_by(RequestRow.expires_at, RequestRow.id)
            .execution_options(**_FRESH)
        )
        return tuple(row.to_domain() for row in rows)


class SqlVoteRepository:
    """Votes; unique on (request_id, approver), a repeat raises DuplicateVote."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, vote: Vote) -> None:
        """Insert a vote; a duplicate raises DuplicateVote and leaves the transaction usable."""
        values = VoteRow.values_of(vote)
        if not _insert_new(self._session, VoteRow, values, ("request_id", "approver")):
            raise DuplicateVote("already recorded: this approver has already signed this request")

    def get(self, request_id: str, approver: str) -> Vote | None:
        """This approver's vote on this request, if any."""
        row = self._session.scalars(
            select(VoteRow)
            .where(VoteRow.request_id == str(request_id))
            .where(VoteRow.approver == approver)
        ).first()
        return row.to_domain() if row is not None else None

    def for_request(self, request_id: str) -> tuple[Vote, ...]:
        """Every vote on the request in signing order."""
        rows = self._session.scalars(_VOTES, {"request_id": str(request_id)})
        return tuple(row.to_domain() for row in rows)


class SqlDecisionRepository:
    """At most one decision per request (the primary key decides)."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, decision: Decision) -> None:
        """Insert the decision of a request; a second one raises Conflict."""
        values = DecisionRow.values_of(decision)
        if not _insert_new(self._session, DecisionRow, values, ("request_id",)):
            raise Conflict("this request has already been decided")

    def get(self, request_id: str) -> Decision | None:
        """The decision of the request, if any."""
        row = self._session.get(DecisionRow, str(request_id))
        return row.to_domain() if row is not None else None


class SqlExecutionRepository:
    """Execution attempts; unique on (request_id, attempt)."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, execution: Execution) -> None:
        """Insert one attempt; a repeated attempt number raises Conflict."""
        values = ExecutionRow.values_of(execution)
        if not _insert_new(self._session, ExecutionRow, values, ("request_id", "attempt")):
            raise Conflict("this execution attempt is already recorded")

    def for_request(self, request_id: str) -> tuple[Execution, ...]:
        """The attempts of one request by attempt number."""
        rows = self._session.scalars(_EXECUTIONS, {"request_id": str(request_id)})
        return tuple(row.to_domain() for row in rows)

    def successes(self, model: str | None = None) -> tuple[Execution, ...]:
        """Every successful attempt (of one model, or all), oldest first."""
        query = (
            select(ExecutionRow)
            .where(ExecutionRow.outcome == "succeeded")
            .order_by(ExecutionRow.at, ExecutionRow.id)
        )
        if model is not None:
            query = query.where(ExecutionRow.model == model)
        return tuple(row.to_domain() for row in self._session.scalars(query))
