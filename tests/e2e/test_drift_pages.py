"""The drift and feature-importance pages through Streamlit's AppTest on the real demo store."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import app.deps as deps
from app.entities import SignedInUser
from app.ui.guard import SESSION_KEY

try:  # the shared demo store fixture, when the gateway's fixtures are present
    from tests.fixtures_mlflow import demo_data_dir
except ImportError:

    @pytest.fixture(scope="session")
    def demo_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
        from app.mlflow_gateway.demo_seed import seed_demo
        from app.settings import Settings

        root = tmp_path_factory.mktemp("demo")
        env = {
            "COUNTERSIGN_DATA_DIR": str(root),
            "MLFLOW_TRACKING_URI": f"sqlite:///{root}/mlflow.db",
        }
        seed_demo(Settings.from_env(env, secrets_path=root / "none.toml"), echo=lambda _: None)
        return root


pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 120  # the first run imports mlflow and reads artifacts on a busy machine
NOW = datetime(2026, 11, 29, tzinfo=UTC)


@pytest.fixture
def store(demo_data_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    monkeypatch.setenv("COUNTERSIGN_DATA_DIR", str(demo_data_dir))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{demo_data_dir / 'mlflow.db'}")
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    deps.clear_caches()
    yield demo_data_dir
    deps.clear_caches()


def page(name: str, **query: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "pages" / f"{name}.py"), default_timeout=TIMEOUT)
    at.session_state[SESSION_KEY] = SignedInUser("dana", ("viewer",), "local", NOW, NOW)
    at.query_params.update(query)
    return at.run(timeout=TIMEOUT)


def verdict_table(at: AppTest):
    return next(d.value for d in at.dataframe if "drifted" in d.value.columns)


def no_failure(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def test_drift_shows_the_verdict_of_the_logged_current_data(store: Path) -> None:
    at = page("drift", model="diabetes-progression", version="2")
    no_failure(at)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Data set drift"] in ("Detected", "Not detected")
    table = verdict_table(at)
    assert {"column", "type", "method", "score", "threshold", "drifted"} <= set(table.columns)
    drifted = set(table.loc[table["drifted"], "column"])
    assert {"age", "bmi", "sex"} <= drifted  # the demo's current batch shifts these
    assert "prediction" not in set(table["column"])
    assert table.set_index("column").loc["sex", "method"] == "Z-test p_value"


def test_drift_builds_evidently_s_report_in_the_background(store: Path) -> None:
    at = page("drift", model="tumor-classifier", version="3")
    no_failure(at)
    assert any("Building Evidently" in s.label for s in at.status)
    monitoring = deps.get_monitoring()
    keys = list(monitoring.jobs._jobs)
    assert keys
    final = monitoring.jobs.wait(keys[-1])
    assert final is not None
    assert final.status == "done", final.error
    assert final.path.read_text(encoding="utf-8").lstrip().lower().startswith("<")
    at.run(timeout=TIMEOUT)
    no_failure(at)
    assert any(s.value == "Evidently report" for s in at.subheader)


def test_a_per_column_method_changes_the_verdict_for_that_column(store: Path) -> None:
    at = page("drift", model="diabetes-progression", version="2")
    at.slider(key="drift_share").set_value(0.2).run(timeout=TIMEOUT)
    no_failure(at)
    assert at.metric[3].value == "20%"


def test_an_upload_that_does_not_fit_the_reference_is_one_clear_error(store: Path) -> None:
    at = page("drift", model="diabetes-progression", version="2")
    at.radio[0].set_value("Upload").run(timeout=TIMEOUT)
    assert not at.exception
    assert any("Upload the current data" in i.value for i in at.info)


def test_a_model_without_logged_data_says_so(store: Path) -> None:
    at = page("drift", model="no-such-model")
    assert not at.exception
