"""The registry's SQL fast path gives the same entities as MLflow's client, and cannot write.

One store per database kind (SQLite and PostgreSQL), built through MLflow's own client with the
shapes real registries have: legacy stages (several holders of one, an archived one), aliases,
tags, null and unicode descriptions, a soft-deleted version, a version without a run, versions
from a deleted run and from a run whose author is only in the `mlflow.user` tag, several versions
from one run, and a model without versions.
"""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from app.errors import NotFound, UserFacingError
from app.mlflow_gateway import MlflowGateway
from tests.fixtures_mlflow import settings_for

MODELS = ("credit-risk", "ünïcode modèle", "no-versions", "from-one-run")


def _build(uri: str, art: Path) -> dict[str, str]:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    exp = client.create_experiment("registry-shapes", artifact_location=art.as_uri())
    runs = {}
    for user in ("alice", "bob", "carol", "tagged-only"):
        run = client.create_run(exp, tags={"mlflow.user": user})
        client.log_metric(run.info.run_id, "rmse", 1.0)
        client.log_metric(run.info.run_id, "rmse", 0.5, step=1)  # the latest value is shown
        client.log_param(run.info.run_id, "depth", "3" if user != "bob" else "")
        client.set_terminated(run.info.run_id)
        runs[user] = run.info.run_id
    credit, uni = MODELS[0], MODELS[1]
    client.create_registered_model(credit, tags={"team": "risk"}, description="Scores loans.")
    for i, user in enumerate(("alice", "bob", "carol", "alice", "bob"), start=1):
        description = None if i == 2 else f"v{i}"
        client.create_model_version(
            credit, f"{art.as_uri()}/m{i}", run_id=runs[user], description=description
        )
    client.set_model_version_tag(credit, "3", "validation", "passed")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        client.transition_model_version_stage(credit, "1", "Archived")
        client.transition_model_version_stage(credit, "2", "Production")
        client.transition_model_version_stage(credit, "3", "Production")  # two holders at once
        client.transition_model_version_stage(credit, "4", "Staging")
    client.set_registered_model_alias(credit, "champion", "2")
    client.set_registered_model_alias(credit, "challenger", "4")
    client.delete_model_version(credit, "5")  # soft-deleted: MLflow's API never shows it
    client.create_registered_model(uni, description="Ça marche — 模型")
    client.create_model_version(uni, f"{art.as_uri()}/u1", run_id=runs["tagged-only"])
    client.create_model_version(uni, f"{art.as_uri()}/u2")  # registered from a path, no run
    client.set_registered_model_alias(uni, "champion", "1")
    client.create_registered_model(MODELS[2])
    client.create_registered_model(MODELS[3])
    for i in (1, 2):
        client.create_model_version(MODELS[3], f"{art.as_uri()}/r{i}", run_id=runs["carol"])
    client.delete_run(runs["carol"])  # its versions remain, with their author
    signature = '[{"name": "income", "type": "double", "required": true}]'
    (art / "m1").mkdir(parents=True)
    (art / "m1" / "MLmodel").write_text(f"flavors: {{}}\nsignature:\n  inputs: '{signature}'\n")
    return runs


def _blank_user_id(uri: str, run_id: str) -> None:
    """A run whose author MLflow knows only from its `mlflow.user` tag (older clients)."""
    engine = sa.create_engine(uri)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE runs SET user_id = '' WHERE run_uuid = :r"), {"r": run_id})
    engine.dispose()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    folder = tmp_path_factory.mktemp("registry-shapes")
    if request.param == "sqlite":
        uri = f"sqlite:///{folder / 'mlflow.db'}"
        drop = None
    else:
        import psycopg

        base = str(request.getfixturevalue("pg_url"))
        name = f"cs_mlflow_{uuid.uuid4().hex[:10]}"
        admin = base.replace("postgresql+psycopg://", "postgresql://", 1)
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        uri = f"{base.rpartition('/')[0]}/{name}"

        def drop() -> None:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    runs = _build(uri, folder / "art")
    _blank_user_id(uri, runs["tagged-only"])
    settings = settings_for(folder, MLFLOW_TRACKING_URI=uri)
    try:
        yield settings, runs
    finally:
        if drop is not None:
            drop()


def _gateways(settings: Any) -> tuple[MlflowGateway, MlflowGateway]:
    fast, client = MlflowGateway(settings), MlflowGateway(settings)
    client._fast._registry._usable = False  # as on a store the fast path does not know
    client._fast._runs._usable = False
    return fast, client


def test_both_paths_give_the_same_models_versions_and_counts(store: Any) -> None:
    fast, client = _gateways(store[0])
    assert fast._fast._registry.usable()
    assert fast.list_registered_models() == client.list_registered_models()
    assert fast.counts() == client.counts()
    assert fast.list_experiments() == client.list_experiments()
    assert fast.recent_runs(3) == client.recent_runs(3)
    assert len(fast.recent_runs(10)) == 3  # the deleted run is not recent
    for name in MODELS:
        assert fast.get_registered_model(name) == client.get_registered_model(name)
        assert fast.list_versions(name) == client.list_versions(name)
    # What the pages rely on, spelled out.
    credit = {v.version: v for v in fast.list_versions(MODELS[0])}
    assert sorted(credit) == ["1", "2", "3", "4"]  # v5 was deleted
    assert (credit["2"].aliases, credit["4"].aliases) == (("champion",), ("challenger",))
    assert [credit[v].stage for v in "1234"] == ["Archived", "Production", "Production", "Staging"]
    assert credit["2"].description == ""
    assert credit["3"].tags == {"validation": "passed"}
    assert [credit[v].author for v in "1234"] == ["alice", "bob", "carol", "alice"]
    model = fast.get_registered_model(MODELS[0])
    assert {v.stage: v.version for v in model.latest_versions} == {
        "Archived": "1",
        "Production": "3",
        "Staging": "4",
    }
    uni = {v.version: v for v in fast.list_versions(MODELS[1])}
    assert (uni["1"].author, uni["2"].author, uni["2"].run_id) == ("tagged-only", "", "")
    assert fast.get_registered_model(MODELS[1]).description == "Ça marche — 模型"
    assert [v.author for v in fast.list_versions(MODELS[3])] == ["carol", "carol"]
    assert fast.list_versions(MODELS[2]) == ()
    assert fast.counts().versions == 8


def test_both_paths_give_the_same_runs_deleted_ones_included(store: Any) -> None:
    settings, runs = store
    fast, client = _gateways(settings)
    ids = [runs[u] for u in ("carol", "alice", "tagged-only", "bob", "alice")]
    found = fast.get_runs(ids)
    assert found == client.get_runs(ids)
    assert [r.run_id for r in found] == ids
    assert found[0].metrics == {"rmse": 0.5}
    assert (found[2].user_id, found[3].params) == ("tagged-only", {"depth": ""})
    with pytest.raises(NotFound) as fast_miss:
        fast.get_runs([runs["alice"], "0" * 32])
    with pytest.raises(NotFound) as client_miss:
        client.get_runs([runs["alice"], "0" * 32])
    assert str(fast_miss.value) == str(client_miss.value)


def test_both_paths_read_the_same_signature_and_say_the_same_when_it_is_missing(
    store: Any,
) -> None:
    fast, client = _gateways(store[0])
    found = fast.version_signature(MODELS[0], "1")
    assert found == client.version_signature(MODELS[0], "1")
    assert found["inputs"] == [{"name": "income", "type": "double", "required": True}]
    for version in ("2", "5", "99"):  # no files; soft-deleted; never registered
        errors = []
        for gateway in (fast, client):
            with pytest.raises(UserFacingError) as caught:
                gateway.version_signature(MODELS[0], version)
            errors.append((type(caught.value), str(caught.value)))
        assert errors[0] == errors[1], version


def test_an_unknown_model_is_the_same_not_found_on_both_paths(store: Any) -> None:
    fast, client = _gateways(store[0])
    messages = []
    for gateway in (fast, client):
        for read in (gateway.get_registered_model, gateway.list_versions):
            with pytest.raises(NotFound) as caught:
                read("no such model")
            messages.append(str(caught.value))
    assert len(set(messages)) == 1, messages
    assert "no such model" in messages[0]


def test_the_fast_path_connection_cannot_write(store: Any) -> None:
    fast, _ = _gateways(store[0])
    reader = fast._fast._registry
    assert reader.usable()
    before = reader.counts()
    with pytest.raises(sa.exc.DBAPIError):
        reader.rows("DELETE FROM model_version_tags")
    with pytest.raises(sa.exc.DBAPIError):
        reader.rows("UPDATE registered_models SET description = 'changed'")
    assert reader.counts() == before
    assert fast.get_registered_model(MODELS[0]).description == "Scores loans."
