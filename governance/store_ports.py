"""The abstract unit of work and its repositories: the persistence the workflow sees.

Implemented with SQLAlchemy in governance/{orm,repository,unit_of_work}.py and in memory by
tests/unit/fakes.py. Repositories take and return the frozen dataclasses of governance.domain,
never ORM rows. Nothing is visible to other transactions before `UnitOfWork.commit()`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager
from datetime import datetime
from types import TracebackType
from typing import Any, Protocol, Self

from governance.audit import AuditRecord
from governance.domain import BrowserSession, Decision, Execution, PromotionRequest, User, Vote


class RequestRepository(Protocol):
    """Promotion requests.

    Invariant (a partial unique index in SQL, e.g. `WHERE state = 'pending' AND kind <>
    'follow_up'`): at most ONE pending request per (model, target_kind, target) among the kinds
    normal, break_glass and rollback. Follow-up reviews of a break-glass change are excluded: they
    move nothing, so any number may be pending.
    """

    def add(self, request: PromotionRequest) -> None:
        """Insert a new request.

        Earlier `update` calls in the same transaction must reach the database first (the service
        supersedes the old pending request, then adds the new one).

        Raises:
            Conflict: The id exists, or another non-follow-up request is pending for the same
                (model, target_kind, target).
        """
        ...

    def get(self, request_id: str) -> PromotionRequest:
        """One request, without locking it (use `UnitOfWork.lock_request` before changing it).

        Raises:
            NotFound: No request has this id.
        """
        ...

    def update(self, request: PromotionRequest) -> None:
        """Store a changed request (optimistic concurrency).

        The stored row must carry `row_version == request.row_version - 1`: the domain functions
        (`transition`, `with_evidence`) already add one. Implementations write it with
        `UPDATE ... WHERE id = :id AND row_version = :row_version - 1` and check the row count.

        Raises:
            NotFound: No request has this id.
            Conflict: The stored row_version differs (someone else changed it first), or the
                pending-per-target invariant would break.
        """
        ...

    def pending_for_target(
        self, model: str, target_kind: str, target: str
    ) -> PromotionRequest | None:
        """The pending request (kind other than follow_up) for this target, if any."""
        ...

    def find(
        self, *, state: str | None = None, model: str | None = None, limit: int | None = None
    ) -> tuple[PromotionRequest, ...]:
        """Requests filtered by state and/or model, newest `created_at` first (ties: id)."""
        ...

    def due_for_expiry(self, now: datetime) -> tuple[PromotionRequest, ...]:
        """Pending requests with `expires_at <= now`, oldest first."""
        ...


class VoteRepository(Protocol):
    """Votes. Unique on (request_id, approver): the database is the last guard."""

    def add(self, vote: Vote) -> None:
        """Insert a vote, flushing at once so that a duplicate is detected HERE, not at commit.

        Raises:
            DuplicateVote: This approver already voted on this request (a subclass of
                Conflict; map the unique-constraint violation to it). The service turns it into
                "already recorded".
        """
        ...

    def get(self, request_id: str, approver: str) -> Vote | None:
        """This approver's vote on this request, if any."""
        ...

    def for_request(self, request_id: str) -> tuple[Vote, ...]:
        """Every vote on the request in signing order (`signed_at`, then insertion order)."""
        ...


class UserRepository(Protocol):
    """Users. Never deleted: `disabled` instead, because the audit log refers to them."""

    def add(self, user: User) -> None:
        """Insert a user.

        Raises:
            Conflict: The name is taken (case-sensitive, unique constraint).
        """
        ...

    def find(self, name: str) -> User | None:
        """The user with this exact name, or None."""
        ...

    def update(self, user: User) -> None:
        """Store every field of an existing user (last write wins; the service holds the lock).

        Raises:
            NotFound: No such user.
        """
        ...

    def list(self) -> tuple[User, ...]:
        """Every user, by name."""
        ...


class SessionRepository(Protocol):
    """Signed-in browsers. Lookups by secret and by grant go through their SHA-256 (unique)."""

    def add(self, session: BrowserSession) -> None:
        """Insert a new session.

        Raises:
            Conflict: The id, secret hash or grant hash exists already.
        """
        ...

    def get(self, session_id: str) -> BrowserSession | None:
        """The session with this id, or None."""
        ...

    def find_by_secret(self, secret_hash: str) -> BrowserSession | None:
        """The session whose cookie secret hashes to this, or None."""
        ...

    def find_by_grant(self, grant_hash: str) -> BrowserSession | None:
        """The session whose unused one-time grant hashes to this, or None."""
        ...

    def update(self, session: BrowserSession) -> None:
        """Store every field of an existing session (last write wins).

        Raises:
            NotFound: No such session.
        """
        ...

    def active(self, now: datetime, user: str | None = None) -> tuple[BrowserSession, ...]:
        """Sessions neither revoked nor expired at `now` (of one user, or all), newest first."""
        ...

    def prune(self, expired_before: datetime) -> int:
        """Delete the sessions that ended (absolutely or by idling) before `expired_before`.

        Returns:
            How many were deleted.
        """
        ...


class DecisionRepository(Protocol):
    """Decisions: at most one per request (unique on request_id)."""

    def add(self, decision: Decision) -> None:
        """Insert the decision of a request.

        Raises:
            Conflict: The request already has a decision.
        """
        ...

    def get(self, request_id: str) -> Decision | None:
        """The decision of the request, if any."""
        ...


class ExecutionRepository(Protocol):
    """Execution attempts: unique on (request_id, attempt)."""

    def add(self, execution: Execution) -> None:
        """Insert one attempt.

        Raises:
            Conflict: This (request_id, attempt) exists already.
        """
        ...

    def for_request(self, request_id: str) -> tuple[Execution, ...]:
        """The attempts of one request by attempt number."""
        ...

    def successes(self, model: str | None = None) -> tuple[Execution, ...]:
        """Every successful attempt (of one model, or all), oldest first (`at`, then insertion).

        The ledger's view of the registry is the last success per (model, target_kind, target).
        """
        ...


class AuditLog(Protocol):
    """The append-only, hash-chained audit log (see governance.audit for the hashing)."""

    def append(
        self,
        *,
        actor: str,
        action: str,
        object_type: str,
        object_id: str,
        payload: Mapping[str, Any],
        at: datetime,
    ) -> AuditRecord:
        """Seal and insert the next entry in the current transaction.

        Serialised: the implementation takes the chain lock first (PostgreSQL: a transaction-level
        advisory lock or `SELECT ... FOR UPDATE` on a chain-head row; SQLite: the transaction is
        already `BEGIN IMMEDIATE`), reads the head, and calls `governance.audit.seal` with
        seq = head.seq + 1 (1 and GENESIS_HASH on an empty log). The lock is held to the end of the
        transaction, so two writers never claim the same prev_hash; `prev_hash` is also unique.

        Raises:
            ValueError: The payload holds NaN/infinity or is not JSON-serialisable.
        """
        ...

    def iterate(self, from_seq: int = 1) -> Iterator[AuditRecord]:
        """Entries with seq >= from_seq in ascending order, streamed (bounded memory)."""
        ...

    def head(self) -> AuditRecord | None:
        """The entry with the highest seq, or None when the log is empty."""
        ...

    def for_object(self, object_type: str, object_id: str) -> tuple[AuditRecord, ...]:
        """Every entry about one object, in ascending seq (indexed on object_type, object_id)."""
        ...

    def search(
        self,
        *,
        model: str = "",
        actor: str = "",
        actions: tuple[str, ...] = (),
        object_types: tuple[str, ...] = (),
        since: str = "",
        until: str = "",
        before_seq: int | None = None,
        limit: int | None = 100,
    ) -> tuple[AuditRecord, ...]:
        """Entries matching every filter, newest first, at most `limit` (None: all), indexed.

        `model` matches request events by the request's model and target events by the
        `<model>/<kind>/<target>` id; `since`/`until` compare with the hashed `ts` text
        (inclusive); `before_seq` pages backwards.
        """
        ...


class UnitOfWork(Protocol):
    """One transaction over every repository.

    Usage: `with uow: ...; uow.commit()`. Leaving the block without `commit()` (or by an
    exception) rolls back. The same object may be entered again afterwards (sequentially, not
    nested); each `with` opens a fresh transaction. On SQLite the transaction starts with
    `BEGIN IMMEDIATE`, so writers are serialised from the first statement; on PostgreSQL
    `lock_request`, `lock_users` and `AuditLog.append` take the row and chain locks. The
    store maps driver errors to GovernanceError subclasses (unique violations to Conflict /
    DuplicateVote); the service never sees driver exceptions.
    """

    @property
    def requests(self) -> RequestRepository: ...

    @property
    def votes(self) -> VoteRepository: ...

    @property
    def users(self) -> UserRepository: ...

    @property
    def decisions(self) -> DecisionRepository: ...

    @property
    def executions(self) -> ExecutionRepository: ...

    @property
    def audit(self) -> AuditLog: ...

    @property
    def sessions(self) -> SessionRepository: ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Roll back unless `commit()` ran; never swallows the exception."""
        ...

    def reading(self) -> AbstractContextManager[Self]:
        """`with uow.reading(): ...` reads without taking any lock or write transaction.

        For the look-ups before a slow step (a password check, a registry read) whose results
        are checked again under the lock afterwards. SQLite begins DEFERRED; PostgreSQL runs
        each statement on its own, as fresh as READ COMMITTED. Nothing may be written (a write
        raises RuntimeError, `commit()` too): record a refusal found here in a `with uow:`
        block afterwards.
        """
        ...

    def commit(self) -> None:
        """Make every change of this transaction durable and visible; releases the locks.

        After commit the block may continue with a NEW transaction (the service commits a
        refusal's audit event and then raises).
        """
        ...

    def rollback(self) -> None:
        """Discard every change of this transaction; releases the locks."""
        ...

    def lock_users(self) -> None:
        """Hold the write lock until the end of the transaction, so that the users read after
        this call cannot change before commit. Rules over several users (one active admin
        must remain) and read-modify-write of a user row are decided under it.

        PostgreSQL: the audit chain-head row lock that every writer takes first. SQLite:
        `BEGIN IMMEDIATE` already holds it.
        """
        ...

    def lock_request(self, request_id: str) -> PromotionRequest:
        """Lock the request's row until the end of the transaction and return its fresh state.

        PostgreSQL: `SELECT ... FOR UPDATE`. SQLite: `BEGIN IMMEDIATE` already serialises
        writers; just read the row. Everything the service decides about a request (quorum,
        state) is decided under this lock.

        Raises:
            NotFound: No request has this id.
        """
        ...
