"""SQLAlchemy implementations of the workflow repositories (see governance.store_ports).

Each takes the session owned by the unit of work and returns domain objects, converted before
the session closes. Nothing here commits. Writes are executed at once (not left to a later
flush), so that statements reach the database in the order the service issued them, and
uniqueness violations surface as domain errors at the call that caused them.

Votes, decisions and executions are inserted with `ON CONFLICT (key) DO NOTHING` (SQLite and
PostgreSQL both have it): a duplicate inserts no row, is reported as the domain error, and
leaves the transaction usable, without the two extra round trips of a savepoint per insert.

Sealed records (governance.row_seals): every write of a user, request, vote, decision or
execution stores the seal of its content under the key the database never sees, and every read
checks it and reports the result as the domain object's `seal_problem` ("" when it verifies).
A changed object whose source failed its seal is never written back: that would launder a row
somebody changed with SQL into a sealed one.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from functools import cache
from typing import Any, TypeVar

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
from governance.row_seals import (
    DECISIONS,
    EXECUTIONS,
    REQUESTS,
    USERS,
    VOTES,
    decision_content,
    execution_content,
    request_content,
    tampered,
    user_content,
    vote_content,
)
from governance.seals import Sealer

_Sealed = TypeVar("_Sealed", User, PromotionRequest, Vote, Decision, Execution)


def _checked(obj: _Sealed, problem: str) -> _Sealed:
    return replace(obj, seal_problem=problem) if problem else obj


def _refuse_laundering(obj: User | PromotionRequest, what: str) -> None:
    if obj.seal_problem:
        raise tampered(what, obj.seal_problem)


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
    """Users; never deleted, disabled instead. Sealed: name, roles, password hash, disabled."""

    def __init__(self, session: Session, sealer: Sealer) -> None:
        self._session = session
        self._sealer = sealer

    def _domain(self, row: UserRow) -> User:
        user = row.to_domain()
        return _checked(user, self._sealer.check_row(USERS, user_content(user), row.seal))

    def _fill(self, row: UserRow, user: User) -> UserRow:
        row.fill(user)
        row.seal = self._sealer.row(USERS, user_content(user))
        return row

    def add(self, user: User) -> None:
        """Insert a user; a taken name raises Conflict (the primary key decides)."""
        with translate_errors(), self._session.begin_nested():
            self._session.add(self._fill(UserRow(), user))
            self._session.flush()

    def find(self, name: str) -> User | None:
        """The user with this exact name, or None."""
        row = self._session.get(UserRow, name, populate_existing=True)
        return self._domain(row) if row is not None else None

    def update(self, user: User) -> None:
        """Store every field of an existing user.

        Raises:
            Tampered: `user` was read from a row whose seal fails.
        """
        _refuse_laundering(user, f"the record of user {user.name!r}")
        row = self._session.get(UserRow, user.name, populate_existing=True)
        if row is None:
            raise NotFound(f"no user named {user.name!r}")
        with translate_errors():
            self._fill(row, user)
            self._session.flush()

    def list(self) -> tuple[User, ...]:
        """Every user, by name."""
        rows = self._session.scalars(
            select(UserRow).order_by(UserRow.name).execution_options(**_FRESH)
        )
        return tuple(self._domain(row) for row in rows)


class SqlRequestRepository:
    """Promotion requests with optimistic concurrency on `row_version`."""

    def __init__(self, session: Session, sealer: Sealer) -> None:
        self._session = session
        self._sealer = sealer

    def _domain(self, row: RequestRow) -> PromotionRequest:
        request = row.to_domain()
        problem = self._sealer.check_row(REQUESTS, request_content(request), row.seal)
        return _checked(request, problem)

    def _values(self, request: PromotionRequest) -> dict[str, Any]:
        values = RequestRow.values_of(request)
        values["seal"] = self._sealer.row(REQUESTS, request_content(request))
        return values

    def add(self, request: PromotionRequest) -> None:
        """Insert a request; the pending-per-target index refuses a second open one."""
        with translate_errors(), self._session.begin_nested():
            self._session.execute(insert(RequestRow), [self._values(request)])

    def _row(self, request_id: str, *, for_update: bool = False) -> RequestRow:
        query = _REQUEST_FOR_UPDATE if for_update else _REQUEST
        row = self._session.scalars(query, {"id": str(request_id)}).first()
        if row is None:
            raise NotFound(f"no promotion request {request_id}")
        return row

    def get(self, request_id: str) -> PromotionRequest:
        """One request (unlocked). Raises NotFound."""
        return self._domain(self._row(request_id))

    def get_for_update(self, request_id: str) -> PromotionRequest:
        """One request with its row locked to the end of the transaction (PostgreSQL)."""
        return self._domain(self._row(request_id, for_update=True))

    def update(self, request: PromotionRequest) -> None:
        """Conditional UPDATE on the previous row_version; a lost race raises Conflict.

        Raises:
            Tampered: `request` was read from a row whose seal fails.
        """
        _refuse_laundering(request, f"request {request.id}")
        values = self._values(request)
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
        return self._domain(row) if row is not None else None

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
        return tuple(self._domain(row) for row in rows)

    def due_for_expiry(self, now: datetime) -> tuple[PromotionRequest, ...]:
        """Pending requests whose expiry has passed, oldest first."""
        rows = self._session.scalars(
            select(RequestRow)
            .where(RequestRow.state == State.PENDING.value)
            .where(RequestRow.expires_at <= now)
            .order_by(RequestRow.expires_at, RequestRow.id)
            .execution_options(**_FRESH)
        )
        return tuple(self._domain(row) for row in rows)


class SqlVoteRepository:
    """Votes; unique on (request_id, approver), a repeat raises DuplicateVote."""

    def __init__(self, session: Session, sealer: Sealer) -> None:
        self._session = session
        self._sealer = sealer

    def _domain(self, row: VoteRow) -> Vote:
        vote = row.to_domain()
        content = vote_content(vote, row.audit_seq)
        return _checked(vote, self._sealer.check_row(VOTES, content, row.seal))

    def add(self, vote: Vote, *, audit_seq: int) -> None:
        """Insert a vote; a duplicate raises DuplicateVote and leaves the transaction usable."""
        values = VoteRow.values_of(vote)
        values["audit_seq"] = audit_seq
        values["seal"] = self._sealer.row(VOTES, vote_content(vote, audit_seq))
        if not _insert_new(self._session, VoteRow, values, ("request_id", "approver")):
            raise DuplicateVote("already recorded: this approver has already signed this request")

    def get(self, request_id: str, approver: str) -> Vote | None:
        """This approver's vote on this request, if any."""
        row = self._session.scalars(
            select(VoteRow)
            .where(VoteRow.request_id == str(request_id))
            .where(VoteRow.approver == approver)
        ).first()
        return self._domain(row) if row is not None else None

    def for_request(self, request_id: str) -> tuple[Vote, ...]:
        """Every vote on the request in signing order."""
        rows = self._session.scalars(_VOTES, {"request_id": str(request_id)})
        return tuple(self._domain(row) for row in rows)


class SqlDecisionRepository:
    """At most one decision per request (the primary key decides)."""

    def __init__(self, session: Session, sealer: Sealer) -> None:
        self._session = session
        self._sealer = sealer

    def add(self, decision: Decision, *, audit_seq: int) -> None:
        """Insert the decision of a request; a second one raises Conflict."""
        values = DecisionRow.values_of(decision)
        values["audit_seq"] = audit_seq
        values["seal"] = self._sealer.row(DECISIONS, decision_content(decision, audit_seq))
        if not _insert_new(self._session, DecisionRow, values, ("request_id",)):
            raise Conflict("this request has already been decided")

    def get(self, request_id: str) -> Decision | None:
        """The decision of the request, if any."""
        row = self._session.get(DecisionRow, str(request_id), populate_existing=True)
        if row is None:
            return None
        decision = row.to_domain()
        content = decision_content(decision, row.audit_seq)
        return _checked(decision, self._sealer.check_row(DECISIONS, content, row.seal))


class SqlExecutionRepository:
    """Execution attempts; unique on (request_id, attempt)."""

    def __init__(self, session: Session, sealer: Sealer) -> None:
        self._session = session
        self._sealer = sealer

    def _domain(self, row: ExecutionRow) -> Execution:
        execution = row.to_domain()
        content = execution_content(execution, row.audit_seq)
        return _checked(execution, self._sealer.check_row(EXECUTIONS, content, row.seal))

    def add(self, execution: Execution, *, audit_seq: int) -> None:
        """Insert one attempt; a repeated attempt number raises Conflict."""
        values = ExecutionRow.values_of(execution)
        values["audit_seq"] = audit_seq
        values["seal"] = self._sealer.row(EXECUTIONS, execution_content(execution, audit_seq))
        if not _insert_new(self._session, ExecutionRow, values, ("request_id", "attempt")):
            raise Conflict("this execution attempt is already recorded")

    def for_request(self, request_id: str) -> tuple[Execution, ...]:
        """The attempts of one request by attempt number."""
        rows = self._session.scalars(_EXECUTIONS, {"request_id": str(request_id)})
        return tuple(self._domain(row) for row in rows)

    def successes(self, model: str | None = None) -> tuple[Execution, ...]:
        """Every successful attempt (of one model, or all), oldest first."""
        query = (
            select(ExecutionRow)
            .where(ExecutionRow.outcome == "succeeded")
            .order_by(ExecutionRow.at, ExecutionRow.id)
        )
        if model is not None:
            query = query.where(ExecutionRow.model == model)
        return tuple(self._domain(row) for row in self._session.scalars(query))
