"""The all-runs table: the SQL fast path, the API path and the incremental HTTP path agree."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest

from app.mlflow_gateway import MlflowGateway, _sql
from app.settings import Settings
from tests.fixtures_mlflow import settings_for

BASE = ["run_id", "run_name", "status", "user", "start_time", "end_time", "experiment_id"]
DAY_MS = 86_400_000


def _ids(gw: MlflowGateway) -> list[str]:
    return [e.experiment_id for e in gw.list_experiments()]


def _assert_well_formed(table: pd.DataFrame) -> None:
    assert list(table.columns[:7]) == BASE
    rest = list(table.columns[7:])
    kinds = [c.split(".", 1)[0] for c in rest]
    assert kinds == sorted(kinds, key=["params", "metrics", "tags"].index)
    assert str(table["start_time"].dt.tz) == "UTC"


def test_sql_and_api_paths_give_the_same_table(demo_store_copy: Callable[[], Settings]) -> None:
    settings = demo_store_copy()
    gw = MlflowGateway(settings)
    victim = gw.search_runs_page(_ids(gw), page_size=1).runs[0].run_id
    gw._client.delete_run(victim)  # deleted runs are left out by both paths

    sql_table, sql_path = gw.runs_table(_ids(gw))
    api_table, api_path = MlflowGateway(settings)._runs_table.table(_ids(gw), force_api=True)

    assert (sql_path, api_path) == ("sql", "api")
    assert victim not in set(sql_table["run_id"])
    assert len(sql_table) == 5
    _assert_well_formed(sql_table)
    pd.testing.assert_frame_equal(sql_table, api_table)
    assert {"params.max_depth", "metrics.roc_auc", "metrics.rmse", "tags.mlflow.user"} <= set(
        sql_table.columns
    )


def test_a_repeated_call_is_served_from_memory_until_a_run_changes(
    demo_store_copy: Callable[[], Settings],
) -> None:
    settings = demo_store_copy()
    gw = MlflowGateway(settings)
    first, _ = gw.runs_table(_ids(gw))
    again, path = gw.runs_table(_ids(gw))
    assert path == "memory"
    pd.testing.assert_frame_equal(first, again)
    exp = _ids(gw)[-1]
    run = gw._client.create_run(exp, tags={"mlflow.user": "dana"})
    gw._client.log_metric(run.info.run_id, "rmse", 1.5)
    gw._client.log_param(run.info.run_id, "brand_new_param", "7")
    refreshed, path = gw.runs_table(_ids(gw))
    assert path == "sql-incremental"
    assert len(refreshed) == len(first) + 1
    row = refreshed.set_index("run_id").loc[run.info.run_id]
    assert (row["user"], row["status"], row["metrics.rmse"]) == ("dana", "RUNNING", 1.5)
    # The running run is asked for again; a deleted run disappears.
    gw._client.log_metric(run.info.run_id, "rmse", 1.25)
    gw._client.set_terminated(run.info.run_id)
    gw._client.delete_run(first["run_id"].iloc[-1])
    updated, path = gw.runs_table(_ids(gw))
    assert path == "sql-incremental"
    full, full_path = MlflowGateway(settings).runs_table(_ids(gw))
    assert full_path == "sql"
    pd.testing.assert_frame_equal(updated, full)
    assert updated.set_index("run_id").loc[run.info.run_id, "metrics.rmse"] == 1.25


def test_an_unverified_schema_revision_falls_back_to_the_api(
    demo_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    uri = demo_settings.tracking_uri
    verified, _ = MlflowGateway(settings_for(tmp_path / "a", MLFLOW_TRACKING_URI=uri)).runs_table(
        [e.experiment_id for e in MlflowGateway(demo_settings).list_experiments()]
    )
    monkeypatch.setattr(_sql, "VERIFIED_REVISIONS", frozenset({"0123456789ab"}))
    gw = MlflowGateway(settings_for(tmp_path / "b", MLFLOW_TRACKING_URI=uri))
    table, path = gw.runs_table(_ids(gw))
    assert path == "api"
    assert "unverified" in gw._runs_table._sql.reason
    pd.testing.assert_frame_equal(table, verified)


def test_an_http_store_gives_the_same_table_as_sql(
    mlflow_server_uri: str, demo_settings: Settings, tmp_path: Path
) -> None:
    local = MlflowGateway(demo_settings)
    ids = [e.experiment_id for e in local.list_experiments() if e.name != "Default"]
    expected, _ = local.runs_table(ids)
    http = MlflowGateway(settings_for(tmp_path, MLFLOW_TRACKING_URI=mlflow_server_uri))
    table, path = http.runs_table(ids)
    assert path == "api"
    pd.testing.assert_frame_equal(table, expected)


def test_an_http_refresh_asks_only_for_new_and_unfinished_runs(
    mlflow_server_uri: str, tmp_path: Path
) -> None:
    http = MlflowGateway(settings_for(tmp_path / "cache-a", MLFLOW_TRACKING_URI=mlflow_server_uri))
    client = http._client
    exp = client.create_experiment(f"incremental-{uuid.uuid4().hex[:8]}")
    now = int(time.time() * 1000)
    old_runs = []
    for i, user in enumerate(("alice", "bob")):
        run = client.create_run(exp, start_time=now - 3 * DAY_MS + i, tags={"mlflow.user": user})
        client.log_param(run.info.run_id, "depth", str(i + 2))
        client.log_metric(run.info.run_id, "rmse", 2.0 - i)
        client.set_terminated(run.info.run_id, end_time=now - 3 * DAY_MS + 1000)
        old_runs.append(run.info.run_id)
    running = client.create_run(exp, start_time=now - DAY_MS, tags={"mlflow.user": "carol"})

    first, path = http.runs_table([exp])
    assert (path, len(first)) == ("api", 3)
    assert http.runs_table([exp])[1] == "memory"

    client.log_metric(running.info.run_id, "rmse", 0.9)
    client.set_terminated(running.info.run_id)
    new = client.create_run(exp, tags={"mlflow.user": "dana"})
    client.set_terminated(new.info.run_id)
    refreshed, path = http.runs_table([exp])
    assert path == "api-incremental"
    assert http._runs_table.last_fetched == 2  # the unfinished run and the new one, not all 4
    assert len(refreshed) == 4
    status = dict(zip(refreshed["run_id"], refreshed["status"], strict=True))
    assert status[running.info.run_id] == "FINISHED"

    full, full_path = MlflowGateway(
        settings_for(tmp_path / "cache-b", MLFLOW_TRACKING_URI=mlflow_server_uri)
    ).runs_table([exp])
    assert full_path == "api"
    pd.testing.assert_frame_equal(refreshed, full)

    # A new process finds the finished runs in the local cache and asks only for recent ones.
    reopened = MlflowGateway(
        settings_for(tmp_path / "cache-a", MLFLOW_TRACKING_URI=mlflow_server_uri)
    )
    table, path = reopened.runs_table([exp])
    assert path == "api-incremental"
    pd.testing.assert_frame_equal(table, full)


@pytest.fixture
def mlflow_pg_uri(pg_url: str) -> Iterator[str]:
    """A fresh PostgreSQL database for an MLflow tracking store (MLflow creates its schema)."""
    import psycopg

    admin = pg_url.replace("postgresql+psycopg://", "postgresql://", 1)
    head, _, _ = pg_url.rpartition("/")
    name = f"cs_mlflow_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{head}/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.postgres
def test_the_sql_fast_path_reads_a_postgresql_store_like_the_api(
    mlflow_pg_uri: str, tmp_path: Path
) -> None:
    from mlflow import MlflowClient

    settings = settings_for(tmp_path, MLFLOW_TRACKING_URI=mlflow_pg_uri)
    # MLflow creates its schema in the empty database; Countersign never would.
    client = MlflowClient(tracking_uri=mlflow_pg_uri)
    client.search_experiments()
    gw = MlflowGateway(settings)
    exp = client.create_experiment("pg-store", artifact_location=(tmp_path / "art").as_uri())
    for i, user in enumerate(("alice", "bob", "carol")):
        run = client.create_run(exp, tags={"mlflow.user": user, "team": f"t{i}"})
        client.log_param(run.info.run_id, "depth", str(i + 2))
        client.log_metric(run.info.run_id, "rmse", 1.0 / (i + 1))
        if user != "carol":
            client.set_terminated(run.info.run_id)
    table, path = gw.runs_table([exp])
    assert path == "sql"
    api, api_path = MlflowGateway(settings)._runs_table.table([exp], force_api=True)
    assert api_path == "api"
    pd.testing.assert_frame_equal(table, api)
    client.log_metric(run.info.run_id, "rmse", 0.1)
    client.set_terminated(run.info.run_id)
    updated, path = gw.runs_table([exp])
    assert path == "sql-incremental"
    pd.testing.assert_frame_equal(updated, MlflowGateway(settings).runs_table([exp])[0])
