"""The governance database: engine, SQLite discipline, schema check and driver-error mapping.

This is the one place that knows about driver quirks:

- SQLite runs in WAL mode with a busy timeout and foreign keys on. pysqlite's own BEGIN handling
  is switched off (the documented event-hook recipe) so that we emit BEGIN ourselves: write
  transactions use `BEGIN IMMEDIATE`, which takes the write lock up front. SQLAlchemy silently
  drops FOR UPDATE on SQLite, so this is what serialises writers (and audit appends) there.
- PostgreSQL (psycopg 3) serialises writers with a row lock on the audit chain head
  (`SELECT ... FOR UPDATE`), taken by the unit of work at the start of every write transaction.
  A pooled connection is pinged before use only after it sat idle for `PING_AFTER_IDLE_S`
  (see `_install_idle_ping`), and the pool hands out the most recently used connection first.
- Driver errors become domain errors in `translate_errors`, nowhere else.
- Production code never calls `create_all`: the schema comes from the Alembic migrations in
  `governance/migrations`, and `check_schema` refuses a database that is behind them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import (
    Connection,
    Engine as Engine,  # re-exported: app/ passes engines on without SQLAlchemy
    create_engine,
    event,
)
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import (
    DBAPIError,
    DisconnectionError,
    IntegrityError,
    OperationalError,
    SQLAlchemyError,
)

from governance.errors import Conflict, DuplicateVote, GovernanceError, SchemaOutOfDate
from governance.redaction import redact_secrets

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# Our own version table: the governance schema may share a PostgreSQL database with MLflow,
# whose Alembic history lives in the default `alembic_version`.
VERSION_TABLE = "countersign_alembic_version"
# An execution option: a read-only connection on SQLite begins DEFERRED instead of IMMEDIATE.
READ_ONLY = "countersign_read_only"
SQLITE_BUSY_TIMEOUT_MS = 30_000
# The ping catches a connection that died while parked in the pool (a server restart, an idle
# timeout on the way). One that was in use a moment ago has not: a sign-off takes a connection
# three times within milliseconds, and a ping each time would be a round trip each. HikariCP
# skips its alive check the same way (aliveBypassWindowMs). A server restart inside the window
# costs one "unavailable" answer, after which SQLAlchemy has discarded the pool's connections.
PING_AFTER_IDLE_S = 1.0
_LAST_USED = "countersign_last_used"

# Constraint names (set by the migration; PostgreSQL names them) and SQLite's column lists
# -> what the user is told. Duplicate votes get their own class: the service answers them with
# "already recorded".
_CONSTRAINT_MESSAGES = (
    (("pk_users", "users.name"), "a user with this name already exists"),
    (
        (
            "uq_promotion_requests_one_pending",
            "promotion_requests.model, promotion_requests.target_kind, promotion_requests.target",
        ),
        "an open request for this model and target already exists",
    ),
    (("pk_promotion_requests", "promotion_requests.id"), "a request with this id already exists"),
    (("pk_decisions", "decisions.request_id"), "this request has already been decided"),
    (
        ("uq_executions_request_attempt", "executions.request_id, executions.attempt"),
        "this execution attempt is already recorded",
    ),
    (
        ("uq_audit_events_prev_hash", "audit_events.prev_hash"),
        "the audit chain refused a fork (two entries after one hash)",
    ),
    (("pk_audit_events", "audit_events.seq"), "the audit chain refused a duplicate seq"),
)
_DUPLICATE_VOTE = ("uq_votes_request_approver", "votes.request_id, votes.approver")


class DatabaseUnavailable(GovernanceError):
    """The governance database cannot be reached or is busy beyond the timeout."""


def is_sqlite(engine: Engine | Connection) -> bool:
    """True when the engine or connection talks to SQLite."""
    return engine.dialect.name == "sqlite"


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Build the engine for a governance database URL (nothing connects yet).

    Args:
        url: `sqlite:///path` or `postgresql+psycopg://user@host/db`.
        **kwargs: Extra `create_engine` arguments (pool sizes in benchmarks and tests), and
            `ping_after_idle_s` (PostgreSQL; default `PING_AFTER_IDLE_S`).

    Raises:
        DatabaseUnavailable: The URL cannot be parsed or names an unsupported database.
    """
    try:
        parsed = make_url(url)
    except Exception as exc:  # sqlalchemy raises ArgumentError with a long text
        problem = redact_secrets(str(exc))
        raise DatabaseUnavailable(f"COUNTERSIGN_DB_URL is not a database URL: {problem}") from exc
    backend = parsed.get_backend_name()
    ping_after_idle_s = float(kwargs.pop("ping_after_idle_s", PING_AFTER_IDLE_S))
    if backend == "sqlite":
        path = _sqlite_file(parsed)
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                _create_private(path)
            except OSError as exc:
                raise DatabaseUnavailable(
                    f"the governance database {path} cannot be created: {exc.strerror or exc}"
                ) from exc
        kwargs.setdefault("connect_args", {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        if "poolclass" not in kwargs:
            kwargs.setdefault("pool_size", 20)
            kwargs.setdefault("max_overflow", 40)
        engine = create_engine(parsed, **kwargs)
        _install_sqlite_hooks(engine)
        return engine
    if backend == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        if "poolclass" not in kwargs:
            kwargs.setdefault("pool_size", 10)
            kwargs.setdefault("max_overflow", 20)
            kwargs.setdefault("pool_use_lifo", True)  # the warm connection first
        kwargs.setdefault("connect_args", {"connect_timeout": 10})
        engine = create_engine(parsed, **kwargs)
        if not kwargs.get("pool_pre_ping"):
            _install_idle_ping(engine, ping_after_idle_s)
        return engine
    raise DatabaseUnavailable(
        f"COUNTERSIGN_DB_URL names {backend!r}; supported are sqlite and postgresql+psycopg"
    )


def sqlite_file(url: str) -> Path | None:
    """The file a `sqlite:///path` governance URL names; None for another database, an
    in-memory one or a URL that is not one."""
    try:
        parsed = make_url(url)
    except Exception:  # sqlalchemy raises ArgumentError; make_engine reports it
        return None
    return _sqlite_file(parsed) if parsed.get_backend_name() == "sqlite" else None


def _sqlite_file(parsed: URL) -> Path | None:
    if not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database).expanduser()


def _create_private(path: Path) -> None:
    """Create an empty SQLite file readable by its owner only (SQLite gives its -wal and -shm
    files the database file's mode). The umask would otherwise make password hashes, votes and
    the audit chain readable to every account on the host. An existing file is left as it is."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    os.close(fd)


def _install_sqlite_hooks(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Hand BEGIN to us: pysqlite would otherwise emit a plain (deferred) BEGIN lazily,
        # and a deferred reader that later writes fails with SQLITE_BUSY instead of waiting.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        read_only = conn.get_execution_options().get(READ_ONLY, False)
        conn.exec_driver_sql("BEGIN DEFERRED" if read_only else "BEGIN IMMEDIATE")


def _install_idle_ping(engine: Engine, idle_s: float) -> None:
    """Ping a pooled connection on checkout when it has been idle for `idle_s` or longer.

    A dead one is replaced: raising DisconnectionError in a checkout hook makes the pool discard
    the connection and hand out a fresh one (the documented pessimistic recipe).
    """

    def _used(_dbapi_connection: Any, record: Any) -> None:
        record.info[_LAST_USED] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        if time.monotonic() - record.info.get(_LAST_USED, 0.0) < idle_s:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as exc:
            raise DisconnectionError(f"a pooled connection was dead: {exc}") from exc

    event.listen(engine, "connect", _used)
    event.listen(engine, "checkin", _used)


def _message(exc: DBAPIError) -> str:
    return str(exc.orig) if exc.orig is not None else str(exc)


def translate(exc: SQLAlchemyError) -> GovernanceError:
    """The domain error for a driver error (the one mapping in the product)."""
    if isinstance(exc, IntegrityError):
        text = _message(exc)
        if any(name in text for name in _DUPLICATE_VOTE):
            return DuplicateVote("already recorded: this approver has already signed this request")
        for names, message in _CONSTRAINT_MESSAGES:
            if any(name in text for name in names):
                return Conflict(message)
        if "append-only" in text:
            return Conflict("the audit log is append-only: entries cannot be changed or deleted")
        lowered = text.lower()
        if "unique" in lowered or "duplicate key" in lowered:
            return Conflict("this record already exists")
        return Conflict("the change breaks a database rule and was not saved")
    if isinstance(exc, OperationalError):
        lowered = _message(exc).lower()
        if "locked" in lowered or "busy" in lowered:
            return DatabaseUnavailable("the governance database is busy; try again")
        if "no such table" in lowered or "does not exist" in lowered:
            return SchemaOutOfDate()
        first = _message(exc).strip().splitlines()[0] if _message(exc).strip() else ""
        first = redact_secrets(first)  # a driver may echo the connection string
        return DatabaseUnavailable(f"the governance database is unavailable: {first}")
    if isinstance(exc, DBAPIError) and "append-only" in _message(exc):
        return Conflict("the audit log is append-only: entries cannot be changed or deleted")
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return DatabaseUnavailable(f"the governance database failed: {redact_secrets(first)}")


@contextmanager
def translate_errors() -> Iterator[None]:
    """Re-raise SQLAlchemy and driver errors as GovernanceError children."""
    try:
        yield
    except SQLAlchemyError as exc:
        raise translate(exc) from exc


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic configuration built in code (no alembic.ini), optionally bound to a connection."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    config.attributes["version_table"] = VERSION_TABLE
    return config


@lru_cache(maxsize=1)
def head_revision() -> str:
    """The newest migration revision shipped with the code (read once per process)."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the package always ships migrations
        raise SchemaOutOfDate("the governance migrations are missing from the installation")
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None for an empty database."""
    with translate_errors(), engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
        return context.get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> str:
    """Bring the schema up to `revision` (idempotent) and return the revision reached."""
    with translate_errors(), engine.begin() as conn:
        command.upgrade(alembic_config(conn), revision)
    return current_revision(engine) or ""


def check_schema(engine: Engine) -> None:
    """Refuse a database that is not at the head revision.

    Raises:
        SchemaOutOfDate: The schema is missing or behind; the message says to run `db upgrade`.
        DatabaseUnavailable: The database cannot be reached.
    """
    current = current_revision(engine)
    if current != head_revision():
        raise SchemaOutOfDate()
