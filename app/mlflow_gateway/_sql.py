"""Read-only SQL over MLflow's own tables: the fast path for the runs table and the registry.

MLflow's REST and client APIs fetch runs in pages of full Run objects (about 18 s for 10,000
runs here); three plain SELECTs over runs, params, latest_metrics and tags take well under a
second. The registry is the same story: MLflow's registered models come without their versions'
authors, which cost one `get_run` per version (13 s for the Models page at 200 models), where
one SELECT per table answers. We only read, over read-only connections (SQLite `mode=ro`,
PostgreSQL `default_transaction_read_only`, MySQL `SET SESSION TRANSACTION READ ONLY`), and only
when the store's Alembic revision is one whose tables we checked (`VERIFIED_REVISIONS`); any
other revision, or any error, sends the caller back to MLflow's client.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

import pandas as pd

from app.mlflow_gateway._frames import long_frame, runs_frame

LONG_KINDS = ("params", "metrics", "tags")

log = logging.getLogger(__name__)

# MLflow schema revisions whose runs/params/latest_metrics/tags/experiments columns the queries
# below were verified against (MLflow 3.17.x creates dc11669786a5).
VERIFIED_REVISIONS = frozenset({"dc11669786a5"})
SQL_SCHEMES = ("sqlite", "postgresql", "mysql")

# {ids} is a list of integers and {runs} a list of quoted run ids, both validated by `_in_list`
# before formatting; the driver's own parameter style is not used so that one raw cursor (no
# SQLAlchemy row objects: 250,000 rows at 10,000 runs) serves SQLite, PostgreSQL and MySQL.
_QUERIES = {
    "runs": "SELECT r.run_uuid, r.name, r.status, r.user_id, r.start_time, r.end_time, "
    "r.experiment_id FROM runs r "
    "WHERE r.lifecycle_stage = 'active' AND r.experiment_id IN ({ids})",
    "params": "SELECT p.run_uuid, p.key, p.value FROM params p "
    "JOIN runs r ON r.run_uuid = p.run_uuid "
    "WHERE r.lifecycle_stage = 'active' AND r.experiment_id IN ({ids})",
    "metrics": "SELECT m.run_uuid, m.key, m.value, m.is_nan FROM latest_metrics m "
    "JOIN runs r ON r.run_uuid = m.run_uuid "
    "WHERE r.lifecycle_stage = 'active' AND r.experiment_id IN ({ids})",
    "tags": "SELECT t.run_uuid, t.key, t.value FROM tags t "
    "JOIN runs r ON r.run_uuid = t.run_uuid "
    "WHERE r.lifecycle_stage = 'active' AND r.experiment_id IN ({ids})",
    # What changes whenever a run is created, finishes, or is deleted or restored.
    "marker": "SELECT count(*), max(r.start_time), max(r.end_time), "
    "sum(CASE WHEN r.lifecycle_stage = 'active' THEN 1 ELSE 0 END) FROM runs r "
    "WHERE r.experiment_id IN ({ids})",
    "states": "SELECT r.run_uuid, r.status, r.end_time FROM runs r "
    "WHERE r.lifecycle_stage = 'active' AND r.experiment_id IN ({ids})",
    "count": "SELECT count(*) FROM runs r "
    "WHERE r.lifecycle_stage = 'active' AND r.experiment_id IN ({ids})",
}
# MLflow's soft-deleted versions keep their row with this stage; its API never returns them.
DELETED_STAGE = "Deleted_Internal"
WORKSPACE = "default"  # MLflow's single-tenant workspace; the client reads no other
_CHUNK = 500  # bound parameters per IN list (SQLite allows 999 in older builds)
# Registry queries, each for the whole store and for one model (":name"); values are bound.
_REGISTRY = {
    "models": "SELECT name, description, creation_time, last_updated_time "
    "FROM registered_models WHERE workspace = :ws",
    "model_tags": "SELECT name, key, value FROM registered_model_tags WHERE workspace = :ws",
    "aliases": "SELECT name, alias, version FROM registered_model_aliases WHERE workspace = :ws",
    "latest": "SELECT mv.name, mv.version, mv.creation_time, mv.last_updated_time, "
    "mv.description, mv.current_stage, mv.source, mv.run_id, mv.status "
    "FROM model_versions mv JOIN (SELECT name, current_stage, max(version) AS version "
    "FROM model_versions WHERE workspace = :ws AND current_stage != :deleted "
    "GROUP BY name, current_stage) latest ON latest.name = mv.name "
    "AND latest.version = mv.version AND latest.current_stage = mv.current_stage "
    "WHERE mv.workspace = :ws",
    "versions": "SELECT mv.name, mv.version, mv.creation_time, mv.last_updated_time, "
    "mv.description, mv.current_stage, mv.source, mv.run_id, mv.status "
    "FROM model_versions mv WHERE mv.workspace = :ws AND mv.current_stage != :deleted",
}
_BY_ID = {
    "runs": "SELECT run_uuid, name, status, user_id, start_time, end_time, experiment_id "
    "FROM runs WHERE run_uuid IN :ids",
    "params": "SELECT run_uuid, key, value FROM params WHERE run_uuid IN :ids",
    "metrics": "SELECT run_uuid, key, value, is_nan FROM latest_metrics WHERE run_uuid IN :ids",
    "tags": "SELECT run_uuid, key, value FROM tags WHERE run_uuid IN :ids",
}
_ONE_MODEL = {
    "models": " AND name = :name",
    "model_tags": " AND name = :name",
    "aliases": " AND name = :name",
    "latest": " AND mv.name = :name",
    "versions": " AND mv.name = :name",
}
_ONLY_RUNS = " AND r.run_uuid IN ({runs})"
_RUN_ID = re.compile(r"[0-9A-Za-z_-]{1,64}")  # fullmatch: `$` would accept a trailing "\n"


def _in_list(experiment_ids: Sequence[str], run_ids: Sequence[str] = ()) -> dict[str, str]:
    for run_id in run_ids:
        if not _RUN_ID.fullmatch(run_id):
            raise ValueError(f"unexpected run id {run_id!r}")
    return {
        "ids": ",".join(str(int(e)) for e in experiment_ids),
        "runs": ",".join(f"'{r}'" for r in run_ids),
    }


def is_sql_uri(uri: str) -> bool:
    return uri.split(":", 1)[0].split("+", 1)[0].lower() in SQL_SCHEMES


def _engine(uri: str) -> Any:
    from sqlalchemy import create_engine, event

    if uri.startswith("sqlite:///") and "?" not in uri:
        import sqlite3
        from pathlib import Path

        path = Path(uri[len("sqlite:///") :])
        if not path.is_file():
            raise FileNotFoundError(path)
        # Read-only: this path can never write to, lock for writing, or create a store.
        ro = f"{path.resolve().as_uri()}?mode=ro"
        return create_engine(
            "sqlite://", creator=lambda: sqlite3.connect(ro, uri=True, check_same_thread=False)
        )
    scheme = uri.split(":", 1)[0].split("+", 1)[0].lower()
    if scheme == "postgresql":
        # Every transaction of these connections is read-only: a write is refused by the server.
        options = {"options": "-c default_transaction_read_only=on"}
        return create_engine(uri, pool_pre_ping=True, connect_args=options)
    engine = create_engine(uri, pool_pre_ping=True)
    if scheme == "mysql":

        @event.listens_for(engine, "connect")
        def _read_only(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("SET SESSION TRANSACTION READ ONLY")
            cursor.close()

    return engine


class SqlReader:
    """A read-only connection to an MLflow SQL store whose schema revision we verified."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self._engine: Any = None
        self._usable: bool | None = None
        self.reason = ""

    def usable(self) -> bool:
        """True when the store is a SQL database at a verified MLflow schema revision."""
        if self._usable is None:
            self._usable = self._check()
        return self._usable

    def _check(self) -> bool:
        if not is_sql_uri(self.uri):
            self.reason = "not a SQL store"
            return False
        try:
            from sqlalchemy import text

            self._engine = _engine(self.uri)
            with self._engine.connect() as conn:
                revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        except Exception as exc:  # any driver or schema problem means: use the API path
            self.reason = f"cannot read the schema revision ({type(exc).__name__})"
            log.info("SQL fast path off for %s: %s", self.uri, exc)
            return False
        if revision not in VERIFIED_REVISIONS:
            self.reason = f"unverified MLflow schema revision {revision}"
            log.info("SQL fast path off: %s", self.reason)
            return False
        return True

    def _fetch(self, conn: Any, name: str, values: dict[str, str], only: bool) -> list[Any]:
        sql = (_QUERIES[name] + (_ONLY_RUNS if only else "")).format(**values)
        cursor = conn.connection.dbapi_connection.cursor()
        try:
            cursor.execute(sql)
            return list(cursor.fetchall())
        finally:
            cursor.close()

    def rows(self, sql: str, **params: Any) -> list[tuple[Any, ...]]:
        """One SELECT with bound parameters (lists expand to IN lists); plain tuples."""
        from sqlalchemy import bindparam, text

        statement = text(sql)
        expanding = [bindparam(k, expanding=True) for k, v in params.items() if isinstance(v, list)]
        if expanding:
            statement = statement.bindparams(*expanding)
        with self._engine.connect() as conn:
            return [tuple(row) for row in conn.execute(statement, params)]


class SqlRunsReader(SqlReader):
    """Reads the all-runs table (and runs' authors) straight from an MLflow SQL tracking store."""

    def marker(self, experiment_ids: Sequence[str]) -> tuple[Any, ...]:
        """A cheap fingerprint of the runs of the experiments."""
        with self._engine.connect() as conn:
            return tuple(self._fetch(conn, "marker", _in_list(experiment_ids), False)[0])

    def count(self, experiment_ids: Sequence[str]) -> int:
        with self._engine.connect() as conn:
            return int(self._fetch(conn, "count", _in_list(experiment_ids), False)[0][0])

    def run_states(self, experiment_ids: Sequence[str]) -> set[tuple[Any, ...]]:
        """(run id, status, end time) of every active run: what an incremental refresh diffs."""
        with self._engine.connect() as conn:
            rows = self._fetch(conn, "states", _in_list(experiment_ids), False)
        return {(r, s, None if e is None else int(e)) for r, s, e in rows}

    def read(
        self, experiment_ids: Sequence[str], run_ids: Sequence[str] | None = None
    ) -> dict[str, pd.DataFrame]:
        """The runs and their params, latest metrics and tags as long frames.

        Args:
            experiment_ids: The experiments.
            run_ids: Only these runs (an incremental refresh); all active runs when None.
        """
        values = _in_list(experiment_ids, run_ids or ())
        only = run_ids is not None
        if only and not run_ids:
            return {"runs": runs_frame([]), **{k: long_frame([]) for k in LONG_KINDS}}
        with self._engine.connect() as conn:
            runs = self._fetch(conn, "runs", values, only)
            params = self._fetch(conn, "params", values, only)
            metrics = self._fetch(conn, "metrics", values, only)
            tags = self._fetch(conn, "tags", values, only)
        return {
            "runs": runs_frame(runs),
            "params": long_frame(params),
            "metrics": long_frame(metrics),  # (run, key, value, is_nan)
            "tags": long_frame(tags),
        }

    def authors(self, run_ids: Sequence[str]) -> dict[str, str]:
        """Each run's author as MLflow's UI shows it: the user id, else the `mlflow.user` tag.

        Runs that do not exist are left out (deleted ones are not: MLflow still returns them).
        """
        found: dict[str, str] = {}
        unique = sorted(set(run_ids) - {""})
        for first in range(0, len(unique), _CHUNK):
            for run_id, user_id, tag in self.rows(
                "SELECT r.run_uuid, r.user_id, t.value FROM runs r "
                "LEFT JOIN tags t ON t.run_uuid = r.run_uuid AND t.key = 'mlflow.user' "
                "WHERE r.run_uuid IN :ids",
                ids=unique[first : first + _CHUNK],
            ):
                found[run_id] = user_id or tag or ""
        return found

    def by_ids(self, run_ids: Sequence[str]) -> dict[str, list[tuple[Any, ...]]]:
        """The runs (deleted ones too, as `get_run` returns them) with their params, latest
        metrics and tags: {"runs": [(id, name, status, user, start, end, experiment)],
        "params": [(id, key, value)], "metrics": [(id, key, value, is_nan)], "tags": [...]}."""
        out: dict[str, list[tuple[Any, ...]]] = {k: [] for k in ("runs", *LONG_KINDS)}
        unique = sorted(set(run_ids))
        for first in range(0, len(unique), _CHUNK):
            ids = unique[first : first + _CHUNK]
            for kind, sql in _BY_ID.items():
                out[kind] += self.rows(sql, ids=ids)
        return out

    def recent(self, experiment_ids: Sequence[str], n: int) -> list[str]:
        """Ids of the n most recently started active runs, in MLflow's order for
        `attributes.start_time DESC` (runs without a start time last, then by run id)."""
        return [
            str(row[0])
            for row in self.rows(
                "SELECT run_uuid FROM runs WHERE lifecycle_stage = 'active' "
                "AND experiment_id IN :ids ORDER BY CASE WHEN start_time IS NULL THEN 1 ELSE 0 "
                "END, start_time DESC, run_uuid LIMIT :n",
                ids=[int(e) for e in experiment_ids],
                n=int(n),
            )
        ]

    def experiments(self) -> list[tuple[Any, ...]]:
        """(id, name, lifecycle stage, artifact location, created, updated, tags) of the
        active experiments; tags as (key, value) pairs."""
        rows = self.rows(
            "SELECT experiment_id, name, lifecycle_stage, artifact_location, creation_time, "
            "last_update_time FROM experiments WHERE lifecycle_stage = 'active' "
            "AND workspace = :ws",
            ws=WORKSPACE,
        )
        tags: dict[int, list[tuple[str, str]]] = {}
        for exp_id, key, value in self.rows(
            "SELECT t.experiment_id, t.key, t.value FROM experiment_tags t "
            "JOIN experiments e ON e.experiment_id = t.experiment_id "
            "WHERE e.lifecycle_stage = 'active' AND e.workspace = :ws",
            ws=WORKSPACE,
        ):
            tags.setdefault(int(exp_id), []).append((key, value))
        return [(*row, tuple(tags.get(int(row[0]), ()))) for row in rows]


class SqlRegistryReader(SqlReader):
    """Reads registered models and versions straight from an MLflow SQL registry store."""

    def _registry(self, query: str, name: str | None) -> list[tuple[Any, ...]]:
        sql = _REGISTRY[query] + (_ONE_MODEL[query] if name is not None else "")
        params = {"ws": WORKSPACE, "deleted": DELETED_STAGE}
        if ":deleted" not in sql:
            del params["deleted"]
        return self.rows(sql, **params, **({"name": name} if name is not None else {}))

    def models(self, name: str | None = None) -> list[tuple[Any, ...]]:
        """(name, description, created, updated) of every model, or of the one named."""
        return self._registry("models", name)

    def model_tags(self, name: str | None = None) -> list[tuple[Any, ...]]:
        """(model, key, value)."""
        return self._registry("model_tags", name)

    def aliases(self, name: str | None = None) -> list[tuple[Any, ...]]:
        """(model, alias, version)."""
        return self._registry("aliases", name)

    def versions(self, name: str) -> list[tuple[Any, ...]]:
        """Every version of the model that MLflow's API would return (not soft-deleted):
        (name, version, created, updated, description, stage, source, run id, status)."""
        return self._registry("versions", name)

    def version(self, name: str, version: str) -> list[tuple[Any, ...]]:
        """The one version (as `versions` gives them), or nothing."""
        return self.rows(
            _REGISTRY["versions"] + " AND mv.name = :name AND mv.version = :version",
            ws=WORKSPACE,
            deleted=DELETED_STAGE,
            name=name,
            version=int(version),
        )

    def latest_versions(self, name: str | None = None) -> list[tuple[Any, ...]]:
        """Per model, the newest version in each stage: MLflow's `latest_versions`."""
        return self._registry("latest", name)

    def version_tags(self, keys: Sequence[tuple[str, int]]) -> list[tuple[Any, ...]]:
        """(model, version, key, value) of the given (model, version) pairs."""
        names = sorted({name for name, _ in keys})
        wanted = {(name, int(version)) for name, version in keys}
        found: list[tuple[Any, ...]] = []
        for first in range(0, len(names), _CHUNK):
            found += [
                row
                for row in self.rows(
                    "SELECT name, version, key, value FROM model_version_tags "
                    "WHERE workspace = :ws AND name IN :names",
                    ws=WORKSPACE,
                    names=names[first : first + _CHUNK],
                )
                if (row[0], int(row[1])) in wanted
            ]
        return found

    def counts(self) -> tuple[int, int]:
        """(registered models, versions MLflow's API would return)."""
        models = self.rows(
            "SELECT count(*) FROM registered_models WHERE workspace = :ws", ws=WORKSPACE
        )
        versions = self.rows(
            "SELECT count(*) FROM model_versions WHERE workspace = :ws "
            "AND current_stage != :deleted",
            ws=WORKSPACE,
            deleted=DELETED_STAGE,
        )
        return int(models[0][0]), int(versions[0][0])
