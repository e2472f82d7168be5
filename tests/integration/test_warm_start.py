"""What a fresh server process loads before and after its warm-up.

Each check runs in a new interpreter: imports are per process, and this process's own imports
(pytest plugins, other tests) would hide what the product pulls in.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# (Streamlit itself imports the small `plotly` package; plotly.express is the heavy part.)
HEAVY = ("mlflow", "evidently", "scipy", "plotly.express", "sklearn")


def _run(code: str, tmp_path: Path, **extra: str) -> dict[str, object]:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "COUNTERSIGN_DATA_DIR": str(tmp_path)}
    env.update(extra)
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


SIGN_IN = """
import json, sys
from app.settings import Settings
from app import bootstrap
import app.deps, app.ui.login, app.ui.navigation, app.ui.errors
settings = Settings.from_env()
bootstrap.upgrade_governance_db(settings)
from app.identity import build_identity
identity = build_identity(settings, bootstrap.build_governance(settings))
heavy = sorted(h for h in %r if any(m == h or m.startswith(h + ".") for m in sys.modules))
print(json.dumps({"heavy": heavy, "mode": identity.mode}))
"""


def test_the_sign_in_page_loads_neither_mlflow_nor_the_report_libraries(tmp_path: Path) -> None:
    # The governance facade and the identity layer are what the sign-in page builds; MLflow,
    # scipy, plotly and Evidently are for the pages behind it (and the background warm-up).
    found = _run(SIGN_IN % (HEAVY,), tmp_path)
    assert found == {"heavy": [], "mode": "local"}


WARM = """
import gc, json, sys
from app.settings import Settings
from app import warmup
settings = Settings.from_env()
took = warmup.warm(settings)
print(json.dumps({
    "took": sorted(took),
    "client": "mlflow.tracking.client" in sys.modules,
    "sql_store": "mlflow.store.tracking.sqlalchemy_store" in sys.modules,
    "registry_store": "mlflow.store.model_registry.sqlalchemy_store" in sys.modules,
    "verdict": "scipy.stats" in sys.modules and "app.reports.cache" in sys.modules,
    "charts": "plotly.express" in sys.modules,
    "frozen": gc.get_freeze_count(),
}))
"""


def test_the_warm_up_imports_what_pages_need_and_opens_no_store(tmp_path: Path) -> None:
    found = _run(WARM, tmp_path)
    assert found["took"] == ["charts", "drift", "mlflow"]
    assert found["client"]
    assert found["sql_store"]
    assert found["registry_store"]
    assert found["verdict"]
    assert found["charts"]
    assert int(str(found["frozen"])) > 50_000  # the imports' objects left the collector's walk
    # It imported the store's code, it did not open (and so create) the demo store.
    assert not (tmp_path / "mlflow.db").exists()


def test_streamlit_runs_no_full_collection_after_every_script_run() -> None:
    # With MLflow and pandas loaded, Streamlit's default `gc.collect(2)` after each run held the
    # interpreter lock for 0.15-0.55 s per page switch (the page's "empty" cost). The image
    # ships this file (Dockerfile), so the setting holds in every deployment.
    import tomllib

    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    assert config["runner"]["postScriptGC"] is False


OVERVIEW = """
import json, sys
from app.settings import Settings
from app import bootstrap
settings = Settings.from_env()
bootstrap.upgrade_governance_db(settings)
facade = bootstrap.build_governance(settings)
gateway = bootstrap.build_gateway(settings)
monitoring = bootstrap.build_batch_monitoring(
    settings, facade, bootstrap.build_monitoring(settings, gateway)
)
monitoring.findings("system:cli", "")
counts = gateway.counts()
models = gateway.list_registered_models()
recent = gateway.recent_runs(10)
gateway.list_versions(models[0].name)
gateway.get_runs([r.run_id for r in recent[:3]])
heavy = sorted(h for h in %r if any(m == h or m.startswith(h + ".") for m in sys.modules))
print(json.dumps({"heavy": heavy, "runs": counts.runs, "recent": len(recent)}))
"""


def test_the_overview_of_a_sql_store_loads_neither_mlflow_nor_scipy(
    demo_data_dir: Path, tmp_path: Path
) -> None:
    # The Overview's reads go through the read-only SQL fast path: its first visit after a
    # restart does not wait for `import mlflow`, scipy or Evidently (the warm-up loads them).
    found = _run(
        OVERVIEW % (("mlflow", "evidently", "scipy", "sklearn"),),
        tmp_path,
        MLFLOW_TRACKING_URI=f"sqlite:///{demo_data_dir / 'mlflow.db'}",
    )
    assert found["heavy"] == []
    assert found["recent"] == min(10, int(str(found["runs"])))
