"""The check that runs before any MLflow client opens a store, and what it tells the user.

Opening a SQL store through MLflow's client upgrades an older schema in place (MLflow creates
the tables it misses and runs its migrations), so that the team's own MLflow server, still on the
old version, stops working. Countersign reads the store's Alembic revision first, over a
read-only connection, and opens it through MLflow only when it is exactly the revision the
installed MLflow expects. The expected revision is read from the installed MLflow's migration
scripts (parsed, not imported: `import mlflow` costs seconds on pages that need no MLflow).
"""

from __future__ import annotations

import ast
import functools
import importlib.metadata
import importlib.util
from dataclasses import dataclass
from pathlib import Path

from app.errors import StoreUnavailable
from app.mlflow_gateway._sql_readonly import schema_facts, sqlite_path

SQL_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")
OK, OLDER, UNKNOWN, EMPTY = "ok", "older", "unknown", "empty"


def scheme(uri: str) -> str:
    """`sqlite`, `postgresql`, `http`, `file`...; a plain path is a `file` store to MLflow
    (except `databricks`, MLflow's one scheme-less URI)."""
    head, sep, _ = uri.strip().partition(":")
    if uri.strip().lower() == "databricks":
        return "databricks"
    if not sep or len(head) == 1:  # no scheme, or a Windows drive letter
        return "file"
    return head.split("+", 1)[0].lower()


def is_sql(uri: str) -> bool:
    return scheme(uri) in SQL_SCHEMES


@functools.cache
def mlflow_migrations() -> tuple[str, ...]:
    """The installed MLflow's schema revisions, newest (its head) first."""
    spec = importlib.util.find_spec("mlflow")
    if spec is None or not spec.submodule_search_locations:
        raise StoreUnavailable("MLflow is not installed")
    folder = Path(next(iter(spec.submodule_search_locations))) / "store/db_migrations/versions"
    parent: dict[str, str | None] = {}
    for script in folder.glob("*.py"):
        values: dict[str, str | None] = {}
        for node in ast.parse(script.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
                for target in node.targets:
                    if isinstance(target, ast.Name) and target.id in ("revision", "down_revision"):
                        values[target.id] = node.value.value
        if values.get("revision"):
            parent[str(values["revision"])] = values.get("down_revision")
    heads = set(parent) - {p for p in parent.values() if p}
    if len(heads) != 1:
        raise StoreUnavailable(f"MLflow's migrations have {len(heads)} heads; expected one")
    chain: list[str] = []
    node: str | None = heads.pop()
    while node:
        chain.append(node)
        node = parent.get(node)
    return tuple(chain)


def mlflow_version() -> str:
    try:
        return importlib.metadata.version("mlflow")
    except importlib.metadata.PackageNotFoundError:
        return "?"


@dataclass(frozen=True)
class StoreCheck:
    """The schema state of one SQL store (tracking or registry)."""

    uri: str  # without password
    revision: str | None
    expected: str
    state: str  # ok, older, unknown (newer than this MLflow), empty (no MLflow schema)
    runs_readable: bool = False
    variable: str = "MLFLOW_TRACKING_URI"  # the setting that names the store

    @property
    def mismatch(self) -> bool:
        return self.state != OK

    def message(self, *, on_page: bool = False) -> str:
        """One paragraph for the CLI (the store by its URI, without password) or, `on_page`, for
        the top of every page (the store by its setting: pages show no server path)."""
        version = mlflow_version()
        store = f"named by {self.variable}" if on_page else f"at {self.uri}"
        uri = f"${self.variable}" if on_page else self.uri
        if self.state == EMPTY:
            return (
                f"The database {store} is not an MLflow store (it has no MLflow schema "
                "revision). Countersign reads an existing MLflow store and never creates one: "
                f"point {self.variable} at your team's store or at your team's `mlflow server`."
            )
        if self.state == UNKNOWN:
            return (
                f"The MLflow store {store} has schema revision {self.revision}, which this "
                f"Countersign's MLflow {version} does not know (it expects {self.expected}; a "
                "newer MLflow wrote the store). Countersign does not open it through MLflow. "
                f"Point {self.variable} at your team's `mlflow server` (http://...), or run "
                "Countersign with the MLflow version that wrote the store." + self._read_only()
            )
        return (
            f"The MLflow store {store} has schema revision {self.revision}, but this "
            f"Countersign's MLflow {version} expects {self.expected}. Opening it through MLflow "
            "would upgrade it in place and could stop your team's own MLflow from reading it, "
            "so Countersign leaves it as it is. Two ways forward: take a backup, then run "
            f"`mlflow db upgrade {uri}` (every MLflow that uses the store must then be "
            f"{version} or newer); or point {self.variable} at your team's `mlflow server` "
            "(http://...)." + self._read_only()
        )

    def _read_only(self) -> str:
        if self.runs_readable:
            return (
                " Until then Experiments and Compare runs read this store read-only; models, "
                "versions and promotions are unavailable."
            )
        return " Until then no page can read this store."


def check_sql_store(uri: str, shown_uri: str, variable: str) -> StoreCheck:
    """Read the store's revision read-only and compare it with the installed MLflow's.

    Raises:
        StoreUnavailable: The store cannot be reached or its revision cannot be read (it is then
            never opened through MLflow either).
    """
    path = sqlite_path(uri)
    if uri.startswith("sqlite:") and (path is None or not path.is_file()):
        raise StoreUnavailable(
            f"the MLflow store at {shown_uri} does not exist (no such file); check "
            "MLFLOW_TRACKING_URI / MLFLOW_REGISTRY_URI or run `python -m app.cli seed-demo`"
        )
    chain = mlflow_migrations()
    try:
        facts = schema_facts(uri)
    except Exception as exc:  # any driver error: we cannot vouch for the store
        detail = " ".join(str(exc).split())[:200]
        raise StoreUnavailable(
            f"the MLflow store at {shown_uri} cannot be reached or read ({detail})"
        ) from None
    if facts.revision == chain[0]:
        state = OK
    elif facts.revision is None:
        state = EMPTY
    else:
        state = OLDER if facts.revision in chain else UNKNOWN
    return StoreCheck(
        shown_uri, facts.revision, chain[0], state, facts.runs_tables_readable, variable
    )


def require_expected_schema(uri: str, variable: str, *, allow_new: bool = False) -> None:
    """For code that opens a store through MLflow's client outside the gateway (seeding,
    registering a webhook): refuse a SQL store at another schema revision.

    Args:
        allow_new: A missing SQLite file or an empty database is fine (seeding creates one).

    Raises:
        StoreSchemaMismatch: The store is at another revision (the message says what to do).
        StoreUnavailable: The store cannot be reached.
    """
    from app.errors import StoreSchemaMismatch
    from app.mlflow_gateway._support import redact

    if not is_sql(uri):
        return
    path = sqlite_path(uri)
    if allow_new and uri.startswith("sqlite:") and (path is None or not path.is_file()):
        return
    check = check_sql_store(uri, redact(uri), variable)
    if check.mismatch and not (allow_new and check.state == EMPTY):
        raise StoreSchemaMismatch(check.message())
