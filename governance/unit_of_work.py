"""The SQL unit of work: one context manager owns one transaction over every repository.

Rollback is the default; commit is explicit. Write transactions are serialised: on SQLite the
first statement runs under `BEGIN IMMEDIATE` (see governance.db); on PostgreSQL the chain-head
row is locked (`SELECT ... FOR UPDATE`) before the first write, `lock_request` or audit append.
Because every path takes the chain head before any row lock, two transactions can never wait on
each other in a cycle, and reads before that point (the actor, the password check) run without
holding it. `uow.reading()` is for the look-ups before a slow step: no write lock (SQLite begins
DEFERRED), no transaction block on PostgreSQL, and no writes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import TYPE_CHECKING, Self

from sqlalchemy import Engine, event
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import ORMExecuteState, Session, sessionmaker

from governance.audit import VerifyResult
from governance.audit_store import SqlAuditLog, entry_hashes, verify_audit_log
from governance.db import READ_ONLY, check_schema, is_sqlite, translate, translate_errors
from governance.domain import PromotionRequest
from governance.monitoring_ports import MonitoringUnitOfWork
from governance.monitoring_store import SqlMonitoringRepository
from governance.repository import (
    SqlDecisionRepository,
    SqlExecutionRepository,
    SqlRequestRepository,
    SqlUserRepository,
    SqlVoteRepository,
)
from governance.session_repository import SqlSessionRepository
from governance.store_ports import UnitOfWork


class SqlUnitOfWork:
    """Implements governance.store_ports.UnitOfWork over a SQLAlchemy session factory."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        sqlite: bool,
        reads: sessionmaker[Session] | None = None,
    ) -> None:
        self._sessions = sessions
        self._reads = reads or sessions
        self._sqlite = sqlite
        self._session: Session | None = None
        self._audit: SqlAuditLog | None = None
        self._requests: SqlRequestRepository | None = None
        self._reading = False

    # -- the transaction ------------------------------------------------------------------------

    def _start(self, sessions: sessionmaker[Session]) -> Session:
        if self._session is not None:
            raise RuntimeError("a unit of work cannot be nested; finish the open one first")
        self._session = sessions()
        self._audit = SqlAuditLog(self._session)
        self._requests = SqlRequestRepository(self._session)
        return self._session

    def __enter__(self) -> Self:
        self._start(self._sessions)
        if not self._sqlite:
            # Lock order on PostgreSQL: the chain head before any row. Taking it before the
            # first write (not only in lock_request and append) rules out a deadlock between a
            # transaction that updated a row first and one that locked the chain first.
            event.listen(self._session, "do_orm_execute", self._lock_before_write)
            event.listen(self._session, "before_flush", self._lock_before_flush)
        return self

    @contextmanager
    def reading(self) -> Iterator[Self]:
        """Reads without a lock or a write transaction (see the UnitOfWork port)."""
        session = self._start(self._reads)
        event.listen(session, "do_orm_execute", _refuse_write)
        event.listen(session, "before_flush", _refuse_flush)
        self._reading = True
        failure: BaseException | None = None
        try:
            yield self
        except BaseException as exc:
            failure = exc
            raise
        finally:
            self._reading = False
            self.__exit__(type(failure) if failure else None, failure, None)

    def _lock_before_write(self, state: ORMExecuteState) -> None:
        if (state.is_insert or state.is_update or state.is_delete) and self._audit is not None:
            self._audit.ensure_locked()

    def _lock_before_flush(self, session: Session, context: object, instances: object) -> None:
        if (session.new or session.dirty or session.deleted) and self._audit is not None:
            self._audit.ensure_locked()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        session, self._session = self._session, None
        if session is None:
            return
        try:
            session.rollback()  # a no-op after commit; otherwise the default outcome
        except SQLAlchemyError:
            if exc is None:
                raise
        finally:
            session.close()
        if isinstance(exc, SQLAlchemyError):
            raise translate(exc) from exc

    def commit(self) -> None:
        """Make this transaction durable (moving the chain head with it) and release the locks."""
        session = self._open()
        if self._reading:
            raise RuntimeError("nothing is committed in uow.reading(): write in `with uow:`")
        with translate_errors():
            self.audit.before_commit()
            session.commit()

    def rollback(self) -> None:
        """Discard this transaction's changes and release the locks."""
        self.audit.forget()
        with translate_errors():
            self._open().rollback()

    def lock_users(self) -> None:
        """Hold the write lock from now on (see governance.store_ports.UnitOfWork.lock_users)."""
        if not self._sqlite:
            self.audit.ensure_locked()

    def lock_request(self, request_id: str) -> PromotionRequest:
        """The request's fresh state, locked until the end of the transaction.

        The chain head is locked first on PostgreSQL, so every writer takes the locks in the
        same order; on SQLite the transaction already holds the write lock.
        """
        if self._reading:
            raise RuntimeError("uow.reading() takes no lock: lock the request in `with uow:`")
        if not self._sqlite:
            self.audit.ensure_locked()
            return self.requests.get_for_update(request_id)
        return self.requests.get(request_id)

    # -- repositories ---------------------------------------------------------------------------

    def _open(self) -> Session:
        if self._session is None:
            raise RuntimeError("use the unit of work inside `with uow:`")
        return self._session

    @property
    def session(self) -> Session:
        """The open session (for store-level tests and tools; the service never uses it)."""
        return self._open()

    @property
    def requests(self) -> SqlRequestRepository:
        self._open()
        assert self._requests is not None
        return self._requests

    @property
    def votes(self) -> SqlVoteRepository:
        return SqlVoteRepository(self._open())

    @property
    def users(self) -> SqlUserRepository:
        return SqlUserRepository(self._open())

    @property
    def decisions(self) -> SqlDecisionRepository:
        return SqlDecisionRepository(self._open())

    @property
    def executions(self) -> SqlExecutionRepository:
        return SqlExecutionRepository(self._open())

    @property
    def sessions(self) -> SqlSessionRepository:
        return SqlSessionRepository(self._open())

    @property
    def monitoring(self) -> SqlMonitoringRepository:
        """Monitoring batches and findings in this transaction (governance.monitoring_ports)."""
        return SqlMonitoringRepository(self._open())

    @property
    def audit(self) -> SqlAuditLog:
        self._open()
        assert self._audit is not None
        return self._audit


def _refuse_write(state: ORMExecuteState) -> None:
    if state.is_insert or state.is_update or state.is_delete:
        raise RuntimeError("nothing is written in uow.reading(): write in `with uow:`")


def _refuse_flush(session: Session, context: object, instances: object) -> None:
    if session.new or session.dirty or session.deleted:
        raise RuntimeError("nothing is written in uow.reading(): write in `with uow:`")


class SqlStore:
    """The governance database as the composition root sees it: units of work and verification."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sqlite = is_sqlite(engine)
        self._write = sessionmaker(engine, expire_on_commit=False, autoflush=False)
        self._read = sessionmaker(
            engine.execution_options(**{READ_ONLY: True}), expire_on_commit=False, autoflush=False
        )
        # `uow.reading()`: on PostgreSQL without a transaction block (no BEGIN and ROLLBACK
        # round trips); a read-only unit of work may still record a refusal, so it keeps one.
        self._reads = self._read
        if not self._sqlite:
            self._reads = sessionmaker(
                engine.execution_options(isolation_level="AUTOCOMMIT"),
                expire_on_commit=False,
                autoflush=False,
            )

    def unit_of_work(self, *, read_only: bool = False) -> SqlUnitOfWork:
        """A fresh unit of work; `read_only` avoids taking SQLite's write lock for queries."""
        sessions = self._read if read_only else self._write
        return SqlUnitOfWork(sessions, sqlite=self._sqlite, reads=self._reads)

    def check_schema(self) -> None:
        """Raise SchemaOutOfDate unless the database is at the shipped migration head."""
        check_schema(self.engine)

    def verify(self, *, workers: int | None = None) -> VerifyResult:
        """Recompute the whole audit chain (see governance.audit_store.verify_audit_log)."""
        return verify_audit_log(self.engine, workers=workers)

    def entry_hashes(self, seqs: Iterable[int]) -> dict[int, str]:
        """The stored entry hash at each of `seqs` the log holds (to compare signed checkpoints)."""
        return entry_hashes(self.engine, seqs)

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


if TYPE_CHECKING:  # mypy proves the SQL unit of work satisfies the port the service uses

    def _conforms(uow: SqlUnitOfWork) -> UnitOfWork:
        return uow

    def _monitors(uow: SqlUnitOfWork) -> MonitoringUnitOfWork:
        return uow
