"""The import rules of the house, checked on every module so that they cannot rot.

Every import counts, including those inside functions.
"""

from __future__ import annotations

import ast
import fnmatch
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GOVERNANCE_PURE = (
    "governance/access.py",
    "governance/domain.py",
    "governance/errors.py",
    "governance/ports.py",
    "governance/store_ports.py",
    "governance/audit.py",
    "governance/policy.py",
    "governance/policy_schema.py",
    "governance/redaction.py",
    "governance/targets.py",
    "governance/monitoring_rules.py",
    "governance/monitoring_records.py",
    "governance/monitoring_ports.py",
    "governance/seals.py",
    "governance/row_seals.py",
)
GOVERNANCE_DB = (
    "governance/orm.py",
    "governance/repository.py",
    "governance/session_repository.py",
    "governance/unit_of_work.py",
    "governance/db.py",
    "governance/audit_store.py",
    "governance/metrics_queries.py",
    "governance/webhook_outbox.py",
    "governance/mlflow_deliveries.py",
    "governance/leased_rows.py",
    "governance/operational_rows.py",
    "governance/monitoring_rows.py",
    "governance/monitoring_store.py",
    "governance/seal_check.py",
    "governance/seal_existing.py",
    "governance/migrations/*",
    "governance/migrations/**/*",
)
# Pure pandas/numpy over our entities (no stores, no UI).
PURE_ANALYSIS = ("app/analysis.py", "app/run_tree.py")
ASGI_PACKAGES = ("app/receiver/", "app/web/")
UI_MAY_USE = ("app.deps", "app.ui", "app.entities", "app.errors")
# The entry point is also the ASGI app `streamlit run` serves: it adds the cookie endpoints.
MAIN_ALSO: dict[str, tuple[str, ...]] = {"app/main.py": ("app.web",)}
THIRD_PARTY_HEAVY = ("mlflow", "evidently", "sqlalchemy", "alembic")
SQL_LIBRARIES = ("sqlalchemy", "alembic")
# Use cases that see only the abstract unit of work (never SQL, the ORM or the engine).
SERVICE_MODULES = ("governance/service.py", "governance/monitoring_service.py")
# Storage of the governance tables; monitoring over time reaches it through the use cases.
GOVERNANCE_STORAGE = ("governance.orm", "governance.db", "governance.monitoring_store")
# The only SQL library imports allowed in app/ and pages/, each with the libraries it may use.
# The governance tables (requests, audit log, webhook outbox...) are read and written through
# governance/ alone; the Prometheus exporter, the webhook dispatcher, the bootstrap and the CLI
# commands get engines from governance.db and figures or rows as our own dataclasses.
SQL_OUTSIDE_GOVERNANCE: dict[str, tuple[str, ...]] = {
    # The runs table's fast path reads MLflow's *own* SQL tracking store (runs, params,
    # latest_metrics, tags) read-only with plain SELECTs, at MLflow schema revisions it has
    # verified; it never touches the governance database, so governance/ cannot serve it.
    # (app/mlflow_gateway/_support.py only recognises driver errors by their module name and
    # imports nothing of SQLAlchemy: it needs no entry.)
    "app/mlflow_gateway/_sql.py": ("sqlalchemy",),
    # Read-only connections to MLflow's own SQL store for what needs no MLflow client: the schema
    # revision check before any client opens a store (MLflow's client would migrate an older
    # one), the runs pages of such a store, and data set inputs whose record is gone.
    "app/mlflow_gateway/_sql_readonly.py": ("sqlalchemy",),
}


# The model worker (app/model_worker) is the only place a model file is ever deserialised, in a
# process of its own: its child may use mlflow and the app's pure importance code, nothing that
# knows settings, stores or governance; only app/monitoring.py starts it, through the launcher.
WORKER_CHILD = "app/model_worker/child.py"
WORKER_SANDBOX = "app/model_worker/sandbox.py"  # the worker's first code: standard library only
WORKER_CHILD_APP_IMPORTS = ("app.reports.importance", "app.entities", "app.errors")
WORKER_LAUNCHER_APP_IMPORTS = ("app.entities", "app.errors")
DESERIALISERS = (
    "pickle",
    "cloudpickle",
    "joblib",
    "skops",
    "dill",
    "mlflow.sklearn",
    "mlflow.pyfunc",
)
LOADING_CALLS = ("load_model", "load", "loads")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _product_files() -> list[Path]:
    files = []
    for top in ("app", "pages", "governance"):
        files.extend(sorted((ROOT / top).rglob("*.py")))
    return files


def _matches(rel: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatch(rel, pattern) for pattern in patterns)


def _top(name: str) -> str:
    return name.split(".")[0]


def _is(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def _pure_import_ok(rel: str, name: str) -> bool:
    top = _top(name)
    if top == "governance":
        pure = (
            "access",
            "domain",
            "errors",
            "ports",
            "store_ports",
            "audit",
            "policy_schema",
            "redaction",
            "monitoring_rules",
            "monitoring_records",
            "monitoring_ports",
            "seals",
            "row_seals",
        )
        return any(_is(name, f"governance.{m}") for m in pure)
    if top == "yaml":
        return rel == "governance/policy.py"
    return top in sys.stdlib_module_names or top == "__future__"


def _violations(rel: str, names: set[str]) -> list[str]:
    bad: list[str] = []
    ui = rel.startswith("pages/") or rel.startswith("app/ui/") or rel == "app/main.py"
    in_gateway = rel.startswith("app/mlflow_gateway")
    in_deps = rel.startswith("app/deps/")
    in_reports = rel.startswith("app/reports")
    in_worker = rel.startswith("app/model_worker/")
    for name in sorted(names):
        top = _top(name)
        if top == "mlflow" and not (in_gateway or rel == WORKER_CHILD):
            bad.append(f"{name}: only app/mlflow_gateway (and the model worker) may import mlflow")
        if any(_is(name, d) for d in DESERIALISERS) and rel != WORKER_CHILD:
            bad.append(f"{name}: only the model worker's child process deserialises models")
        if _is(name, "app.model_worker.child"):
            bad.append(f"{name}: the worker runs in its own process, never imported")
        if _is(name, "app.model_worker") and not (in_worker or rel == "app/monitoring.py"):
            bad.append(f"{name}: only app/monitoring.py starts the model worker")
        if in_worker and top in ("app", "governance", "streamlit", "sqlalchemy", "evidently"):
            allowed = (
                WORKER_CHILD_APP_IMPORTS if rel == WORKER_CHILD else WORKER_LAUNCHER_APP_IMPORTS
            )
            if not _is(name, "app.model_worker") and not any(_is(name, a) for a in allowed):
                bad.append(f"{name}: the model worker knows no settings, stores or governance")
        if rel == WORKER_SANDBOX and top not in sys.stdlib_module_names:
            bad.append(f"{name}: the sandbox runs before anything else is imported: stdlib only")
        if top == "evidently" and not in_reports:
            bad.append(f"{name}: only app/reports may import evidently")
        if top in ("starlette", "uvicorn", "fastapi") and not rel.startswith(ASGI_PACKAGES):
            bad.append(
                f"{name}: the ASGI stack belongs to app/receiver (the webhook receiver) and "
                "app/web (the session cookie endpoints)"
            )
        if top == "streamlit" and not (ui or in_deps):
            bad.append(f"{name}: streamlit belongs to pages, app/ui, app/main.py and app/deps")
        if ui:
            if top in THIRD_PARTY_HEAVY:
                bad.append(f"{name}: pages and UI pieces go through app.deps")
            if top == "app" and not any(
                _is(name, allowed) for allowed in (*UI_MAY_USE, *MAIN_ALSO.get(rel, ()))
            ):
                bad.append(
                    f"{name}: pages and UI may use app.deps, app.ui, app.entities, app.errors"
                )
            if top == "governance" and not any(
                _is(name, allowed) for allowed in ("governance.errors", "governance.domain")
            ):
                bad.append(f"{name}: pages and UI may use governance.errors and governance.domain")
        if rel.startswith(("app/", "pages/")):
            if top in SQL_LIBRARIES and top not in SQL_OUTSIDE_GOVERNANCE.get(rel, ()):
                bad.append(f"{name}: SQL goes through governance/ (see SQL_OUTSIDE_GOVERNANCE)")
            if _is(name, "governance.orm"):
                bad.append(f"{name}: ORM rows stay inside governance/; use its dataclasses")
        if rel.startswith("app/batch_monitoring/") and (
            _is(name, "app.mlflow_gateway") or any(_is(name, m) for m in GOVERNANCE_STORAGE)
        ):
            bad.append(f"{name}: batch monitoring goes through app.monitoring and the use cases")
        if in_deps and top in THIRD_PARTY_HEAVY:
            bad.append(f"{name}: app/deps only caches what bootstrap builds")
        if (in_reports or rel in PURE_ANALYSIS) and top in ("mlflow", "streamlit"):
            bad.append(f"{name}: reports and analysis take DataFrames, not stores or UI")
        if in_gateway and top in ("evidently", "streamlit"):
            bad.append(f"{name}: the MLflow gateway stays free of UI and reports")
        if rel.startswith("governance/"):
            if top in ("streamlit", "mlflow", "app", "pages", "evidently"):
                bad.append(f"{name}: governance/ imports neither UI, MLflow nor app/")
            if rel in GOVERNANCE_PURE and not _pure_import_ok(rel, name):
                bad.append(f"{name}: {rel} is standard library only")
            if rel in SERVICE_MODULES and (
                top in SQL_LIBRARIES or any(_is(name, m) for m in GOVERNANCE_STORAGE)
            ):
                bad.append(f"{name}: the service layer sees only the abstract unit of work")
            if (
                top in SQL_LIBRARIES
                and not _matches(rel, GOVERNANCE_DB)
                and rel not in SERVICE_MODULES
            ):
                bad.append(f"{name}: SQLAlchemy lives in orm, repository, unit_of_work, db")
    return bad


@pytest.mark.parametrize("path", _product_files(), ids=_rel)
def test_module_respects_the_import_rules(path: Path) -> None:
    rel = _rel(path)
    assert _violations(rel, _imports(path)) == []


def _loading_calls(path: Path) -> list[str]:
    """Calls named load_model, or load/loads on any object: how a model file is deserialised."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            name = owner.id if isinstance(owner, ast.Name) else ""
            if node.func.attr == "load_model" or (
                node.func.attr in LOADING_CALLS and name not in ("json", "yaml", "tomllib")
            ):
                found.append(f"line {node.lineno}: {ast.unparse(node.func)}")
    return found


@pytest.mark.parametrize("path", _product_files(), ids=_rel)
def test_no_module_but_the_worker_child_loads_a_model(path: Path) -> None:
    if _rel(path) == WORKER_CHILD:
        assert _loading_calls(path), "the worker child is where models load"
        return
    assert _loading_calls(path) == []


@pytest.mark.parametrize(
    ("rel", "imported"),
    [
        ("app/monitoring.py", "mlflow.sklearn"),
        ("app/mlflow_gateway/gateway.py", "mlflow.sklearn"),
        ("app/mlflow_gateway/gateway.py", "cloudpickle"),
        ("app/reports/importance.py", "skops.io"),
        ("app/model_worker/launcher.py", "mlflow"),
        ("app/model_worker/sandbox.py", "numpy"),
        ("app/model_worker/sandbox.py", "app.entities"),
        ("app/model_worker/child.py", "app.settings"),
        ("app/model_worker/child.py", "app.mlflow_gateway"),
        ("app/model_worker/child.py", "governance.db"),
        ("app/model_worker/launcher.py", "app.bootstrap"),
        ("app/deps/reports.py", "app.model_worker.launcher"),
        ("app/monitoring.py", "app.model_worker.child"),
        ("pages/models.py", "mlflow"),
        ("pages/models.py", "app.mlflow_gateway"),
        ("pages/models.py", "governance.service"),
        ("app/ui/tables.py", "sqlalchemy.orm"),
        ("app/analysis.py", "streamlit"),
        ("app/run_tree.py", "mlflow"),
        ("app/cli.py", "streamlit"),
        ("app/reports.py", "mlflow"),
        ("governance/domain.py", "sqlalchemy"),
        ("governance/domain.py", "yaml"),
        ("governance/audit.py", "governance.service"),
        ("governance/service.py", "sqlalchemy.orm"),
        ("governance/service.py", "app.settings"),
        ("governance/repository.py", "mlflow"),
        ("app/bootstrap.py", "evidently"),
        ("app/metrics.py", "sqlalchemy"),
        ("app/metrics.py", "governance.orm"),
        ("app/webhooks/outbox.py", "sqlalchemy.orm"),
        ("app/webhooks/dispatcher.py", "sqlalchemy"),
        ("app/webhooks/dispatcher.py", "alembic.command"),
        ("app/bootstrap.py", "sqlalchemy"),
        ("app/cli.py", "alembic"),
        ("app/commands/webhooks.py", "sqlalchemy"),
        ("app/commands/governance.py", "governance.orm.RequestRow"),
        ("app/export/store_source.py", "sqlalchemy"),
        ("app/facade.py", "sqlalchemy.exc"),
        ("app/mlflow_gateway/_support.py", "sqlalchemy"),
        ("app/mlflow_gateway/gateway.py", "sqlalchemy"),
        ("app/mlflow_gateway/_sql.py", "alembic"),
        ("pages/approvals.py", "alembic"),
        ("governance/execution.py", "sqlalchemy"),
        ("app/web/session_cookie.py", "streamlit"),
        ("app/main.py", "app.bootstrap"),
        ("governance/sessions.py", "sqlalchemy"),
        ("governance/enforcement.py", "sqlalchemy"),
        ("governance/history.py", "mlflow"),
        ("app/receiver/app.py", "mlflow"),
        ("app/receiver/worker.py", "sqlalchemy"),
        ("app/receiver/app.py", "governance.orm"),
        ("app/facade.py", "starlette"),
        ("pages/models.py", "uvicorn"),
        ("governance/mlflow_deliveries.py", "app.receiver"),
        ("governance/monitoring_service.py", "sqlalchemy"),
        ("governance/monitoring_service.py", "governance.monitoring_store"),
        ("governance/monitoring_rules.py", "governance.policy"),
        ("governance/monitoring_rules.py", "sqlalchemy"),
        ("governance/monitoring_ports.py", "governance.orm"),
        ("app/batch_monitoring/service.py", "sqlalchemy"),
        ("app/batch_monitoring/service.py", "governance.monitoring_store"),
        ("app/batch_monitoring/service.py", "app.mlflow_gateway"),
        ("app/batch_monitoring/scoring.py", "evidently"),
        ("app/batch_monitoring/timeline.py", "streamlit"),
        ("pages/monitoring.py", "app.batch_monitoring"),
        ("pages/monitoring.py", "governance.monitoring_rules"),
        ("app/ui/monitoring_views.py", "governance.monitoring_service"),
    ],
)
def test_the_rules_catch_a_forbidden_import(rel: str, imported: str) -> None:
    assert _violations(rel, {imported}) != []


@pytest.mark.parametrize(
    ("rel", "imported"),
    [
        ("app/mlflow_gateway/_sql.py", "sqlalchemy"),
        ("app/mlflow_gateway/_sql.py", "sqlalchemy.text"),
        ("governance/metrics_queries.py", "sqlalchemy"),
        ("governance/webhook_outbox.py", "governance.orm"),
        ("app/metrics.py", "governance.metrics_queries"),
        ("app/webhooks/outbox.py", "governance.webhook_outbox"),
        ("app/commands/webhooks.py", "governance.db"),
        ("app/main.py", "app.web"),
        ("governance/session_repository.py", "sqlalchemy"),
        ("app/web/session_cookie.py", "starlette.routing"),
        ("app/receiver/app.py", "starlette.applications"),
        ("app/receiver/serve.py", "uvicorn"),
        ("app/receiver/app.py", "governance.mlflow_deliveries"),
        ("governance/mlflow_deliveries.py", "sqlalchemy.dialects.postgresql"),
        ("app/model_worker/child.py", "mlflow.sklearn"),
        ("app/model_worker/child.py", "app.reports.importance"),
        ("app/monitoring.py", "app.model_worker.launcher"),
        ("governance/monitoring_store.py", "sqlalchemy"),
        ("governance/monitoring_rows.py", "governance.orm"),
        ("governance/policy_schema.py", "governance.monitoring_rules"),
        ("app/batch_monitoring/service.py", "governance.monitoring_service"),
        ("governance/metrics_queries.py", "governance.monitoring_rows"),
    ],
)
def test_the_rules_allow_the_listed_exceptions(rel: str, imported: str) -> None:
    assert _violations(rel, {imported}) == []


@pytest.mark.parametrize("rel", sorted(SQL_OUTSIDE_GOVERNANCE))
def test_every_sql_exception_outside_governance_is_still_used(rel: str) -> None:
    # A stale entry would quietly widen the exception: each listed file must still exist and
    # import every library it is allowed.
    path = ROOT / rel
    assert path.is_file()
    tops = {_top(name) for name in _imports(path)}
    assert set(SQL_OUTSIDE_GOVERNANCE[rel]) <= tops
