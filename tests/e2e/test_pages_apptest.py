"""Every read-side page through Streamlit's AppTest on the real demo store.

`demo_data_dir` comes from tests/fixtures_mlflow.py (registered in tests/conftest.py). Pages run
in this process, so the environment set here is what `Settings.from_env()` reads; the caches in
`app.deps` are cleared around each test so that no page sees another's store.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import app.deps as deps
from app.entities import SignedInUser
from app.ui.guard import SESSION_KEY
from tests.e2e.identity_env import build_governance_db
from tests.markdown_text import shown

ROOT = Path(__file__).resolve().parents[2]
PAGES = ("overview", "experiments", "compare_runs", "models", "compare_versions")
TIMEOUT = 60  # the first page of a session imports mlflow (about 5 s on a busy machine)
CLASSIFIER = "tumor-classifier"
REGRESSOR = "diabetes-progression"


VIEWER = ("vic", "viewer", "vic-pass-1234")


@pytest.fixture(scope="module")
def governance_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A migrated governance database with one viewer, for the activity panels behind the gate."""
    env = build_governance_db(tmp_path_factory.mktemp("governance"), accounts=[VIEWER])
    return env["COUNTERSIGN_DB_URL"]


@pytest.fixture(autouse=True)
def _governance(governance_db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COUNTERSIGN_DB_URL", governance_db)
    monkeypatch.setenv("COUNTERSIGN_AUTH", "local")


@pytest.fixture
def store(demo_data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("COUNTERSIGN_DATA_DIR", str(demo_data_dir))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{demo_data_dir / 'mlflow.db'}")
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    deps.clear_caches()
    yield demo_data_dir
    deps.clear_caches()


def signed_in(at: AppTest) -> AppTest:
    now = datetime.now(UTC)
    at.session_state[SESSION_KEY] = SignedInUser(VIEWER[0], (VIEWER[1],), "local", now, now)
    return at


def page(name: str, **query: str) -> AppTest:
    at = signed_in(AppTest.from_file(str(ROOT / "pages" / f"{name}.py"), default_timeout=TIMEOUT))
    at.query_params.update(query)
    return at.run(timeout=TIMEOUT)


def texts(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption]
    parts += (
        [t.value for t in at.title] + [h.value for h in at.header] + [s.value for s in at.subheader]
    )
    return "\n".join(str(p) for p in parts)


def frames(at: AppTest) -> list:
    return [d.value for d in at.dataframe]


def links(at: AppTest) -> list[str]:
    # Outside st.navigation a page link falls back to a markdown link with the same URL.
    return [m.value for m in at.markdown if "](" in str(m.value)]


def no_failure(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


@pytest.mark.parametrize("name", PAGES)
def test_every_page_renders_on_the_demo_store(store: Path, name: str) -> None:
    at = page(name)
    no_failure(at)
    assert at.title[0].value


def test_overview_counts_things_and_lists_models_with_aliases_and_stages(store: Path) -> None:
    at = page("overview")
    no_failure(at)
    labels = {m.label: m.value for m in at.metric}
    assert set(labels) == {"Experiments", "Runs", "Models", "Versions"}
    assert int(labels["Models"]) >= 2
    models = frames(at)[0]
    assert {CLASSIFIER, REGRESSOR} <= set(models["model"])
    row = models.set_index("model")
    assert "champion" in row.loc[CLASSIFIER, "aliases"]
    assert "Production" in row.loc[REGRESSOR, "stages"]
    captions = [c.value for c in at.caption]  # the store by kind and name, not its server path
    assert "Tracking store: `SQLite database mlflow.db`" in captions
    assert not [c for c in captions if str(store) in c]


def _experiment_id(at: AppTest, name: str) -> str:
    box = at.selectbox(key="qp_experiment")
    return next(o for o in box.options if o.startswith(name)).split("(id ")[1].rstrip(")")


def test_experiments_lists_runs_of_the_chosen_experiment(store: Path) -> None:
    at = page("experiments")
    exp_id = _experiment_id(at, REGRESSOR)
    at = page("experiments", experiment=exp_id)
    no_failure(at)
    runs = frames(at)[0]
    assert len(runs) >= 3
    assert any(c.startswith("metrics.") for c in runs.columns)
    assert at.query_params["experiment"] == exp_id


def test_an_invalid_filter_gives_a_clear_message_and_keeps_the_filter(store: Path) -> None:
    at = page("experiments")
    at.text_input(key="qp_filter").input("metrics.rmse <<< banana").run(timeout=TIMEOUT)
    assert not at.exception
    assert len(at.error) == 1
    assert at.text_input(key="qp_filter").value == "metrics.rmse <<< banana"


def test_a_filter_narrows_the_runs_and_lands_in_the_url(store: Path) -> None:
    at = page("experiments")
    exp_id = _experiment_id(at, REGRESSOR)
    at = page("experiments", experiment=exp_id)
    everything = len(frames(at)[0])
    user = frames(at)[0]["user"].iloc[0]
    at.text_input(key="qp_filter").input(f"tags.`mlflow.user` = '{user}'").run(timeout=TIMEOUT)
    no_failure(at)
    narrowed = frames(at)[0]
    assert 0 < len(narrowed) < everything
    assert set(narrowed["user"]) == {user}
    assert "mlflow.user" in at.query_params["filter"]


@pytest.fixture(scope="module")
def twelve_runs(tmp_path_factory: pytest.TempPathFactory, demo_data_dir: Path) -> Path:
    """A copy of the demo store plus an experiment of 12 runs: enough for two pages of 10."""
    import shutil

    import mlflow

    data_dir = tmp_path_factory.mktemp("paged")
    # Copying the migrated demo database is much cheaper than migrating a new one.
    shutil.copy(demo_data_dir / "mlflow.db", data_dir / "mlflow.db")
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{data_dir / 'mlflow.db'}")
    exp = client.create_experiment("paging", artifact_location=(data_dir / "art").as_uri())
    for i in range(12):
        run = client.create_run(exp, run_name=f"run-{i:02d}")
        client.log_metric(run.info.run_id, "rmse", float(i))
        client.set_terminated(run.info.run_id)
    return data_dir


def test_runs_are_paged_on_the_server(twelve_runs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COUNTERSIGN_DATA_DIR", str(twelve_runs))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{twelve_runs / 'mlflow.db'}")
    deps.clear_caches()
    at = page("experiments")
    exp_id = _experiment_id(at, "paging")
    at = page("experiments", experiment=exp_id)
    at.selectbox(key="runs_page_size").set_value(10).run(timeout=TIMEOUT)
    first = frames(at)[0]
    assert len(first) == 10
    previous, nxt = (
        next(b for b in at.button if b.label == x) for x in ("Previous page", "Next page")
    )
    assert previous.disabled
    nxt.click().run(timeout=TIMEOUT)
    second = frames(at)[0]
    assert len(second) == 2
    assert set(first["run_id"]).isdisjoint(second["run_id"])
    assert next(b for b in at.button if b.label == "Next page").disabled
    next(b for b in at.button if b.label == "Previous page").click().run(timeout=TIMEOUT)
    assert frames(at)[0]["run_id"].tolist() == first["run_id"].tolist()
    deps.clear_caches()


def test_sorting_by_a_metric_orders_the_page(store: Path) -> None:
    at = page("experiments")
    exp_id = _experiment_id(at, REGRESSOR)
    at = page("experiments", experiment=exp_id)
    metric = next(o for o in at.selectbox(key="runs_sort").options if o.startswith("metrics."))
    at.selectbox(key="runs_sort").set_value(metric)
    at.toggle(key="runs_descending").set_value(False).run(timeout=TIMEOUT)
    no_failure(at)
    at.multiselect(key="runs_columns").set_value([metric]).run(timeout=TIMEOUT)
    values = frames(at)[0][metric].dropna().tolist()
    assert values == sorted(values)


def test_every_run_of_the_experiment_can_be_charted(store: Path) -> None:
    at = page("experiments")
    exp_id = _experiment_id(at, CLASSIFIER.split("-")[0])
    at = page("experiments", experiment=exp_id)
    assert not at.get("plotly_chart")  # the whole table is read only when asked for
    at.toggle(key="whole_experiment").set_value(True).run(timeout=TIMEOUT)
    no_failure(at)
    assert at.get("plotly_chart")
    assert "runs (read through the" in texts(at)


def test_selecting_runs_offers_a_link_to_compare_them(store: Path) -> None:
    at = page("experiments")
    picker = at.multiselect(key="compare_pick")
    chosen = picker.options[:2]
    picker.set_value(chosen).run(timeout=TIMEOUT)
    no_failure(at)
    ids = at.multiselect(key="compare_pick").value
    assert len(ids) == 2
    assert any("compare_runs?runs=" in link and ids[0] in link for link in links(at))


def _two_runs(store: Path) -> list[str]:
    recent = deps.recent_runs(2)
    return [r.run_id for r in recent]


def test_compare_runs_shows_params_and_metrics_side_by_side(store: Path) -> None:
    ids = _two_runs(store)
    at = page("compare_runs", runs=",".join(ids))
    no_failure(at)
    table = frames(at)[0]
    assert {"section", "key"} <= set(table.columns)
    assert {"params", "metrics"} <= set(table["section"])
    everything = len(table)
    at.toggle(key="runs_differences").set_value(True).run(timeout=TIMEOUT)
    assert len(frames(at)[0]) < everything
    charts = at.get("plotly_chart")
    assert len(charts) >= 3  # parallel coordinates, scatter, history


def test_compare_runs_history_by_wall_time(store: Path) -> None:
    at = page("compare_runs", runs=",".join(_two_runs(store)))
    at.radio(key="history_by").set_value("wall time").run(timeout=TIMEOUT)
    no_failure(at)
    assert at.get("plotly_chart")


def test_compare_runs_ignores_unknown_ids_with_a_warning(store: Path) -> None:
    ids = _two_runs(store)
    at = page("compare_runs", runs=",".join([*ids, "0" * 32]))
    assert not at.exception
    assert "0" * 32 in at.warning[0].value
    assert at.multiselect(key="qp_runs").value == ids


def test_models_shows_versions_lineage_and_author(store: Path) -> None:
    at = page("models", model=CLASSIFIER)
    no_failure(at)
    versions = frames(at)[2]
    assert len(versions) >= 3
    assert versions["author"].nunique() >= 2
    assert "champion" in " ".join(versions["aliases"])
    at.selectbox(key="qp_version").set_value("1").run(timeout=TIMEOUT)
    no_failure(at)
    assert at.query_params["version"] == "1"
    datasets = next(f for f in frames(at) if "context" in f.columns)
    assert "training" in set(datasets["context"])
    assert any("experiments?" in link and "run_id" in link for link in links(at))


def test_compare_versions_puts_the_challenger_against_the_champion(store: Path) -> None:
    at = page("compare_versions", model=CLASSIFIER)
    no_failure(at)
    summary = frames(at)[0]
    assert "champion" in summary["aliases"].iloc[0]
    assert "challenger" in summary["aliases"].iloc[1]
    deltas = frames(at)[1]
    assert set(deltas["verdict"]) <= {"better", "worse", "same", "n/a"}
    assert "Compare versions" in texts(at)
    assert at.get("plotly_chart")
    # Only the open tab runs: the schema comparison appears once its tab is opened.
    assert not any("status" in f.columns and "section" in f.columns for f in frames(at))
    at.session_state["version_tab"] = "Schema"
    at.run(timeout=TIMEOUT)
    no_failure(at)
    assert not at.get("plotly_chart")
    schema = next(f for f in frames(at) if "status" in f.columns and "section" in f.columns)
    assert "inputs" in set(schema["section"])
    assert set(schema["status"]) <= {"same", "changed type", "added", "removed"}


def test_compare_versions_of_any_versions_from_the_url(store: Path) -> None:
    at = page("compare_versions", model=REGRESSOR, versions="1,2,3")
    no_failure(at)
    assert frames(at)[0]["version"].tolist() == ["1", "2", "3"]
    deltas = frames(at)[1]
    assert set(deltas["label"]) == {lbl for lbl in frames(at)[0]["label"][1:]}
    rmse = deltas[deltas["metric"].str.contains("rmse")]
    assert set(rmse["direction"]) == {"lower is better"}


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("name", PAGES)
def test_an_unreachable_tracking_store_is_one_clear_message(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COUNTERSIGN_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{_closed_port()}")
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    deps.clear_caches()
    try:
        at = page(name)
    finally:
        deps.clear_caches()
    assert not at.exception, [e.value for e in at.exception]
    assert len(at.error) == 1
    assert "127.0.0.1" in shown(at.error[0].value)


def test_a_bad_setting_is_one_clear_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COUNTERSIGN_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("COUNTERSIGN_CACHE_TTL_S", "soon")
    deps.clear_caches()
    try:
        at = page("overview")
    finally:
        deps.clear_caches()
    assert not at.exception
    assert "COUNTERSIGN_CACHE_TTL_S" in shown(at.error[0].value)


def test_the_entry_point_opens_the_overview_and_switches_pages(store: Path) -> None:
    at = signed_in(AppTest.from_file(str(ROOT / "app" / "main.py"), default_timeout=TIMEOUT))
    at.run(timeout=TIMEOUT)
    no_failure(at)
    assert at.title[0].value == "Overview"
    at.switch_page(str(ROOT / "pages" / "models.py")).run(timeout=TIMEOUT)
    no_failure(at)
    assert at.title[0].value == "Models"


def test_the_review_screen_reads_a_remote_mlflow_server(
    mlflow_server_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COUNTERSIGN_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server_uri)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    deps.clear_caches()
    try:
        at = page("compare_versions", model=CLASSIFIER)
    finally:
        deps.clear_caches()
    no_failure(at)
    assert "champion" in frames(at)[0]["aliases"].iloc[0]
    assert set(frames(at)[1]["verdict"]) & {"better", "worse"}
