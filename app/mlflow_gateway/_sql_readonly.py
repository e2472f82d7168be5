"""Read-only connections to MLflow's own SQL stores, for what needs no MLflow client.

A connection made here cannot write: SQLite files open as `file:PATH?mode=ro` (uri=True),
PostgreSQL transactions start with `SET TRANSACTION READ ONLY`, MySQL sessions are READ ONLY.
Three readers use it: the schema check that runs before any MLflow client opens a store
(`schema_facts`), the runs pages on a store at another schema revision (`LegacyRunsReader`), and
the count of data set inputs whose data set record is gone (`missing_dataset_inputs`).

Every query binds its values; none is built from user text.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Columns the runs pages read, per table: a store that has them can be browsed read-only
# whatever its schema revision (MLflow has had them since 2020).
RUNS_COLUMNS: dict[str, frozenset[str]] = {
    "experiments": frozenset({"experiment_id", "name", "artifact_location", "lifecycle_stage"}),
    "runs": frozenset(
        {"run_uuid", "name", "status", "user_id", "start_time", "end_time", "lifecycle_stage"}
        | {"artifact_uri", "experiment_id"}
    ),
    "params": frozenset({"run_uuid", "key", "value"}),
    "latest_metrics": frozenset({"run_uuid", "key", "value", "timestamp", "step", "is_nan"}),
    "metrics": frozenset({"run_uuid", "key", "value", "timestamp", "step", "is_nan"}),
    "tags": frozenset({"run_uuid", "key", "value"}),
}


def sqlite_path(uri: str) -> Path | None:
    """The file of a `sqlite:///PATH` URI (None for in-memory or URI-style databases)."""
    if not uri.startswith("sqlite:///") or "?" in uri:
        return None
    path = uri[len("sqlite:///") :]
    return Path(path) if path and path != ":memory:" else None


def readonly_engine(uri: str) -> Any:
    """A SQLAlchemy engine over the store that refuses every write.

    Raises:
        FileNotFoundError: A SQLite file that does not exist (it is never created).
    """
    from sqlalchemy import create_engine, event
    from sqlalchemy.pool import NullPool

    if uri.startswith("sqlite:"):
        path = sqlite_path(uri)
        if path is None:
            raise ValueError(f"not a SQLite file URI: {uri}")
        if not path.is_file():
            raise FileNotFoundError(path)
        ro = f"{path.resolve().as_uri()}?mode=ro"
        return create_engine(
            "sqlite://",
            creator=lambda: sqlite3.connect(ro, uri=True, check_same_thread=False),
            poolclass=NullPool,
        )
    engine = create_engine(uri, pool_pre_ping=True, poolclass=NullPool)
    dialect = engine.dialect.name
    if dialect == "postgresql":

        @event.listens_for(engine, "begin")
        def _read_only(conn: Any) -> None:
            conn.exec_driver_sql("SET TRANSACTION READ ONLY")

    elif dialect == "mysql":

        @event.listens_for(engine, "connect")
        def _read_only_session(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            cursor.execute("SET SESSION TRANSACTION READ ONLY")
            cursor.close()

    return engine


@dataclass(frozen=True)
class SchemaFacts:
    """What the schema check reads: the Alembic revision and the columns of the runs tables."""

    revision: str | None
    tables: frozenset[str]
    runs_tables_readable: bool


def schema_facts(uri: str) -> SchemaFacts:
    """Read MLflow's `alembic_version` and the runs tables' columns, read-only.

    Raises:
        Any driver error: the caller reports the store as unreachable.
    """
    from sqlalchemy import inspect, text

    engine = readonly_engine(uri)
    try:
        with engine.connect() as conn:
            inspector = inspect(conn)
            tables = frozenset(inspector.get_table_names())
            revision = None
            if "alembic_version" in tables:
                revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
            readable = all(
                table in tables and needed <= {c["name"] for c in inspector.get_columns(table)}
                for table, needed in RUNS_COLUMNS.items()
            )
        return SchemaFacts(None if revision is None else str(revision), tables, readable)
    finally:
        engine.dispose()


def missing_dataset_inputs(uri: str, run_id: str) -> int:
    """How many data set inputs of the run point at a data set record the store no longer has.

    MLflow's own reads skip such inputs silently; the pages say that they exist.
    """
    from sqlalchemy import text

    engine = readonly_engine(uri)
    try:
        with engine.connect() as conn:
            return int(
                conn.execute(
                    text(
                        "SELECT count(*) FROM inputs i WHERE i.destination_type = 'RUN' "
                        "AND i.destination_id = :run AND i.source_type = 'DATASET' AND NOT "
                        "EXISTS (SELECT 1 FROM datasets d WHERE d.dataset_uuid = i.source_id)"
                    ),
                    {"run": run_id},
                ).scalar()
                or 0
            )
    finally:
        engine.dispose()


# {where} is one of the two constants below; every value is a bound parameter.
_BY_RUN = "r.run_uuid IN :ids"
_BY_EXPERIMENT = "r.experiment_id IN :ids"
_RUN_QUERIES = {
    "runs": "SELECT r.run_uuid, r.name, r.status, r.user_id, r.start_time, r.end_time, "
    "r.lifecycle_stage, r.artifact_uri, r.experiment_id FROM runs r WHERE {where}",
    "params": "SELECT x.run_uuid, x.key, x.value FROM params x "
    "JOIN runs r ON r.run_uuid = x.run_uuid WHERE {where}",
    "metrics": "SELECT x.run_uuid, x.key, x.value, x.timestamp, x.step, x.is_nan "
    "FROM latest_metrics x JOIN runs r ON r.run_uuid = x.run_uuid WHERE {where}",
    "tags": "SELECT x.run_uuid, x.key, x.value FROM tags x "
    "JOIN runs r ON r.run_uuid = x.run_uuid WHERE {where}",
}


class LegacyRunsReader:
    """Experiments, runs and metric histories as plain rows, from a store at any revision that
    has the `RUNS_COLUMNS` (the read-only runs pages of a store MLflow's client would migrate)."""

    def __init__(self, uri: str) -> None:
        self._engine = readonly_engine(uri)

    def _rows(self, sql: str, **values: Any) -> list[tuple[Any, ...]]:
        from sqlalchemy import bindparam, text

        statement = text(sql)
        for name, value in values.items():
            if isinstance(value, (list, tuple)):
                statement = statement.bindparams(bindparam(name, expanding=True))
        with self._engine.connect() as conn:
            return [tuple(r) for r in conn.execute(statement, values)]

    def experiments(self) -> list[tuple[Any, ...]]:
        """(id, name, artifact location, lifecycle stage) of every experiment."""
        return self._rows(
            "SELECT experiment_id, name, artifact_location, lifecycle_stage FROM experiments"
        )

    def experiment_tags(self) -> list[tuple[Any, ...]]:
        try:
            return self._rows("SELECT experiment_id, key, value FROM experiment_tags")
        except Exception:  # tables from before experiment tags existed
            return []

    def runs(
        self, experiment_ids: Sequence[str] = (), run_ids: Sequence[str] = ()
    ) -> dict[str, list[tuple[Any, ...]]]:
        """Runs (of the experiments, or the given ids) with their params, latest metrics, tags."""
        if run_ids:
            where, values = _BY_RUN, {"ids": list(run_ids)}
        else:
            where, values = _BY_EXPERIMENT, {"ids": [int(e) for e in experiment_ids]}
        if not values["ids"]:
            return {kind: [] for kind in _RUN_QUERIES}
        return {
            kind: self._rows(template.format(where=where), **values)
            for kind, template in _RUN_QUERIES.items()
        }

    def metric_history(self, run_id: str, key: str) -> list[tuple[Any, ...]]:
        """(value, timestamp, step, is_nan) of every logged value of one metric."""
        return self._rows(
            "SELECT value, timestamp, step, is_nan FROM metrics WHERE run_uuid = :run "
            "AND key = :key ORDER BY step, timestamp",
            run=run_id,
            key=key,
        )

    def dispose(self) -> None:
        self._engine.dispose()
