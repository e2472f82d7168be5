"""MlflowGateway on the real demo store (SQLite) and through a real `mlflow server` (HTTP)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from app.errors import InvalidQuery, NotFound, StoreUnavailable
from app.mlflow_gateway import MlflowGateway
from app.settings import Settings
from tests.fixtures_mlflow import free_port, settings_for

TUMOR = "tumor-classifier"
DIABETES = "diabetes-progression"


@pytest.fixture(scope="module")
def gateway(demo_settings: Settings) -> MlflowGateway:
    return MlflowGateway(demo_settings)


@pytest.fixture(scope="module")
def http_gateway(mlflow_server_uri: str, tmp_path_factory: pytest.TempPathFactory) -> MlflowGateway:
    return MlflowGateway(
        settings_for(tmp_path_factory.mktemp("http"), MLFLOW_TRACKING_URI=mlflow_server_uri)
    )


def _experiment_id(gw: MlflowGateway, name: str) -> str:
    return next(e.experiment_id for e in gw.list_experiments() if e.name == name)


def test_the_demo_store_is_healthy_and_counted(gateway: MlflowGateway) -> None:
    health = gateway.health()
    assert health.ok, health.message
    assert health.backend == "sql"
    counts = gateway.counts()
    assert (counts.models, counts.versions) == (2, 6)
    assert counts.runs >= 6
    assert {"tumor-classification", DIABETES} <= {e.name for e in gateway.list_experiments()}


def test_runs_are_paged_on_the_server(gateway: MlflowGateway) -> None:
    exp = _experiment_id(gateway, "tumor-classification")
    first = gateway.search_runs_page([exp], page_size=2)
    assert len(first.runs) == 2
    assert first.next_token
    second = gateway.search_runs_page([exp], page_size=2, page_token=first.next_token)
    assert second.next_token is None
    ids = [r.run_id for r in first.runs + second.runs]
    assert len(set(ids)) == 3
    assert {r.user_id for r in first.runs + second.runs} == {"alice", "bob", "carol"}


def test_filter_and_order_are_applied_by_the_store(gateway: MlflowGateway) -> None:
    exp = _experiment_id(gateway, "tumor-classification")
    page = gateway.search_runs_page([exp], filter_string="params.max_depth = '3'")
    assert {r.user_id for r in page.runs} == {"bob", "carol"}
    ordered = gateway.search_runs_page([exp], order_by=["metrics.log_loss ASC"]).runs
    losses = [r.metrics["log_loss"] for r in ordered]
    assert losses == sorted(losses)
    assert all(r.params and r.metrics and r.tags for r in ordered)


@pytest.mark.parametrize("bad", ["metrics.rmse <<< 3", "params.x = unquoted", "nonsense"])
def test_an_invalid_filter_is_one_clear_line(gateway: MlflowGateway, bad: str) -> None:
    exp = _experiment_id(gateway, "tumor-classification")
    with pytest.raises(InvalidQuery) as info:
        gateway.search_runs_page([exp], filter_string=bad)
    message = str(info.value)
    assert message
    assert "\n" not in message
    assert "Traceback" not in message


def test_runs_histories_datasets_and_artifacts(gateway: MlflowGateway, tmp_path: Path) -> None:
    champion = gateway.version_by_alias(TUMOR, "champion")
    (run,) = gateway.get_runs([champion.run_id])
    assert run.user_id == "bob" == champion.author
    history = gateway.metric_history([run.run_id], ["eval_log_loss", "train_log_loss"])
    assert list(history.columns) == ["run_id", "key", "value", "step", "timestamp"]
    steps = history[history["key"] == "eval_log_loss"]["step"].tolist()
    assert steps == list(range(int(run.params["n_estimators"])))
    assert str(history["timestamp"].dt.tz) == "UTC"
    contexts = {d.context for d in gateway.run_datasets(run.run_id)}
    assert contexts == {"training", "evaluation"}
    paths = {a.path for a in gateway.list_artifacts(run.run_id, "data")}
    assert paths == {f"data/{n}.parquet" for n in ("reference", "evaluation", "current")}
    assert "feature_importance.json" in {a.path for a in gateway.list_artifacts(run.run_id)}
    reference = pd.read_parquet(
        gateway.download_artifact(run.run_id, "data/reference.parquet", tmp_path)
    )
    current = pd.read_parquet(
        gateway.download_artifact(run.run_id, "data/current.parquet", tmp_path)
    )
    # The production-like batch drifted: larger tumours, more malignant cases (target 0).
    assert current["mean_radius"].mean() > reference["mean_radius"].mean() * 1.1
    assert (current["target"] == 0).mean() > (reference["target"] == 0).mean() + 0.1


def test_unknown_runs_and_models_are_not_found(gateway: MlflowGateway) -> None:
    with pytest.raises(NotFound):
        gateway.get_runs(["0" * 32])
    with pytest.raises(NotFound):
        gateway.get_registered_model("no-such-model")
    with pytest.raises(NotFound):
        gateway.get_version(TUMOR, "99")
    with pytest.raises(NotFound):
        gateway.version_by_alias(TUMOR, "no-such-alias")


def test_registered_models_versions_aliases_and_stages(gateway: MlflowGateway) -> None:
    models = {m.name: m for m in gateway.list_registered_models()}
    assert models[TUMOR].aliases == {"champion": "2", "challenger": "3"}
    assert models[TUMOR].description
    tumor = gateway.list_versions(TUMOR)
    assert [v.version for v in tumor] == ["3", "2", "1"]
    assert [v.author for v in tumor] == ["carol", "bob", "alice"]
    assert tumor[0].aliases == ("challenger",)
    assert all(v.description and v.run_id for v in tumor)
    stages = {v.version: v.stage for v in gateway.list_versions(DIABETES)}
    assert stages == {"1": "Archived", "2": "Production", "3": "Staging"}
    signature = gateway.version_signature(TUMOR, "2")
    assert "mean_radius" in {c["name"] for c in signature["inputs"]}
    assert signature["outputs"]


def test_seeding_again_changes_nothing(demo_settings: Settings, gateway: MlflowGateway) -> None:
    from app.mlflow_gateway.demo_seed import seed_demo

    before = gateway.counts()
    lines: list[str] = []
    assert seed_demo(demo_settings, echo=lines.append) == 0
    assert "nothing changed" in lines[-1]
    assert gateway.counts() == before


def test_an_unreachable_server_fails_fast_with_a_clear_message(tmp_path: Path) -> None:
    uri = f"http://127.0.0.1:{free_port()}"
    gw = MlflowGateway(settings_for(tmp_path, MLFLOW_TRACKING_URI=uri))
    health = gw.health()
    assert not health.ok
    assert uri in health.message
    assert "\n" not in health.message
    with pytest.raises(StoreUnavailable, match="cannot be reached"):
        gw.list_experiments()


def test_a_database_that_cannot_be_opened_is_unavailable(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path}/missing/dir/mlflow.db"
    health = MlflowGateway(settings_for(tmp_path, MLFLOW_TRACKING_URI=uri)).health()
    assert not health.ok
    assert "mlflow.db" in health.message


def test_the_http_store_serves_the_same_read_side(
    http_gateway: MlflowGateway, gateway: MlflowGateway
) -> None:
    assert http_gateway.health().ok
    assert http_gateway.health().backend == "http"
    assert {e.name for e in http_gateway.list_experiments()} >= {"tumor-classification", DIABETES}
    exp = _experiment_id(http_gateway, "tumor-classification")
    page = http_gateway.search_runs_page([exp], page_size=2)
    assert len(page.runs) == 2
    assert page.next_token
    with pytest.raises(InvalidQuery):
        http_gateway.search_runs_page([exp], filter_string="metrics.rmse <<< 3")
    assert [v.author for v in http_gateway.list_versions(TUMOR)] == ["carol", "bob", "alice"]
    assert http_gateway.version_by_alias(TUMOR, "champion").version == "2"
    assert http_gateway.version_signature(TUMOR, "3") == gateway.version_signature(TUMOR, "3")
    champion = http_gateway.version_by_alias(TUMOR, "champion")
    assert {d.context for d in http_gateway.run_datasets(champion.run_id)} == {
        "training",
        "evaluation",
    }
