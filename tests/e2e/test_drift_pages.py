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

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 120  # the first run imports mlflow and reads artifacts on a busy machine
NOW = datetime(2026, 11, 29, tzinfo=UTC)


@pytest.fixture
def store(demo_data_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    # The demo store is shared and read-only; this test's reports are cached in its own dir.
    monkeypatch.setenv("COUNTERSIGN_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{demo_data_dir / 'mlflow.db'}")
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    deps.clear_caches()
    yield demo_data_dir
    deps.clear_caches()


def page(name: str, tab: tuple[str, str] | None = None, **query: str) -> AppTest:
    """The page as `dana` would open it; `tab` = (key, label) opens that tab (only the open tab
    of the page's tabs runs)."""
    at = AppTest.from_file(str(ROOT / "pages" / f"{name}.py"), default_timeout=TIMEOUT)
    at.session_state[SESSION_KEY] = SignedInUser("dana", ("viewer",), "local", NOW, NOW)
    if tab is not None:
        at.session_state[tab[0]] = tab[1]
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
    at = page("drift", model="diabetes-progression", version="3")
    no_failure(at)
    # Evidently's report is built only for someone who opens its tab.
    assert not deps.get_monitoring().jobs._jobs
    assert not at.status
    at.session_state["drift_tab"] = "Evidently report"
    at.run(timeout=TIMEOUT)
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


def test_importance_compares_versions_from_their_logged_artifacts(store: Path) -> None:
    # Every demo version logs feature_importance.json: the page never loads a model for it.
    at = page(
        "feature_importance",
        ("importance_tab", "Compare versions"),
        model="tumor-classifier",
        versions="1,3",
    )
    no_failure(at)
    caption = " ".join(c.value for c in at.caption)
    assert "v1: artifact (impurity)" in caption
    assert "v3: artifact (impurity)" in caption
    labels = [m.label for m in at.metric]
    assert "Top-5 overlap, v1 to v3" in labels
    table = next(d.value for d in at.dataframe if "rank shift" in d.value.columns)
    assert {"v1", "v3", "rank v1", "rank v3"} <= set(table.columns)


def test_importance_answers_which_important_features_drifted(store: Path) -> None:
    at = page(
        "feature_importance",
        ("importance_tab", "Drift by importance"),
        model="diabetes-progression",
        versions="3",
    )
    no_failure(at)
    frame = next(d.value for d in at.dataframe if "important" in d.value.columns)
    assert {"feature", "importance", "rank", "drifted", "drift score"} <= set(frame.columns)
    drifted_top = set(frame.loc[frame["important"] & frame["drifted"], "feature"])
    shown = " ".join(w.value for w in at.warning) + " ".join(s.value for s in at.success)
    for feature in drifted_top:
        assert feature in shown


def test_the_evidence_source_summarises_a_version_s_drift_and_importance(store: Path) -> None:
    import json

    from app.bootstrap import build_gateway, build_monitoring
    from app.settings import Settings

    settings = Settings.from_env()
    monitoring = build_monitoring(settings, build_gateway(settings))
    drift = monitoring.drift_summary("diabetes-progression", "3")
    assert drift is not None
    assert 0 < drift["share_drifted"] <= 1
    assert {"age", "bmi", "sex"} <= set(drift["drifted_columns"])
    assert set(drift["drifted_important_features"]) <= set(drift["drifted_columns"])
    again = monitoring.drift_summary("diabetes-progression", "3")
    assert json.dumps(again, sort_keys=True) == json.dumps(drift, sort_keys=True)
    importance = monitoring.importance_summary("diabetes-progression", "3")
    assert importance is not None
    assert importance["compared_with_version"] == "2"
    assert monitoring.drift_summary("diabetes-progression", "99") is None
