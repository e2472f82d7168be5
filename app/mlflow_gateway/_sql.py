"""Read-only SQL over MLflow's own tables: the fast path for the all-runs table.

MLflow's REST and client APIs fetch runs in pages of full Run objects (about 18 s for 10,000
runs here); three plain SELECTs over runs, params, latest_metrics and tags take well under a
second. We only read, and only when the store's Alembic revision is one whose tables we checked
(`VERIFIED_REVISIONS`); any other revision, or any error, sends the caller back to the API path.
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
    from sqlalchemy import create_engine

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
    return create_engine(uri, pool_pre_ping=True)


class SqlRunsReader:
    """Reads the all-runs table straight from an MLflow SQL tracking store."""

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
            log.info("runs table: SQL fast path off for %s: %s", self.uri, exc)
            return False
        if revision not in VERIFIED_REVISIONS:
            self.reason = f"unverified MLflow schema revision {revision}"
            log.info("runs table: SQL fast path off: %s", self.reason)
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
