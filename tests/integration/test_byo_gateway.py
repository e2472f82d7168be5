"""The gateway and the registry adapter on the stores teams really have (tests/byo_stores.py):
SQLite, PostgreSQL, a real `mlflow server` and a `file:` store; plus what Countersign refuses to
open (a store it would change) and how governance executes on a file store."""

from __future__ import annotations

import hashlib
import math
import shutil
from pathlib import Path

import pytest

from app.errors import StoreSchemaMismatch, StoreUnavailable
from app.mlflow_gateway import MlflowGateway, MlflowModelRegistry
from app.mlflow_gateway._sql_readonly import readonly_engine
from app.settings import Settings
from tests.byo_fixtures import ByoStore, copy_store
from tests.byo_stores import (
    EXPERIMENT,
    LOGGED,
    LONG_LIST,
    NO_META_FOLDER,
    PRODUCTION_HOLDERS,
    SHARED,
    SINGLE,
    SIXTY,
)


@pytest.fixture(autouse=True)
def _mlflow_process_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # With a file store the gateway sets MLflow's process defaults (MLFLOW_ALLOW_FILE_STORE, and
    # MLFLOW_TRACKING_URI when unset); start each test without them and undo what it set.
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLFLOW_ALLOW_FILE_STORE"):
        monkeypatch.setenv(name, "-")
        monkeypatch.delenv(name)


def settings(store: ByoStore) -> Settings:
    return Settings.from_env(env=store.env())


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_gateway_reads_every_shape(byo_store: ByoStore) -> None:
    shapes = byo_store.shapes
    assert shapes is not None
    gw = MlflowGateway(settings(byo_store))
    assert gw.health().ok, gw.health().message
    exp = next(e for e in gw.list_experiments() if e.name == EXPERIMENT)
    runs = {r.run_name: r for r in gw.search_runs_page([exp.experiment_id], page_size=100).runs}
    assert "deleted" not in runs
    assert {r.status for r in runs.values()} == {"FINISHED", "FAILED", "KILLED", "RUNNING"}
    assert gw.child_run_counts([exp.experiment_id]) == {shapes.runs["sweep"]: 2}
    odd = runs["odd-params"]
    unicode = "température ✓ 日本語 🚀"
    assert odd.params == {"long_list": LONG_LIST, "none": "None", "empty": "", "unicode": unicode}
    assert math.isnan(odd.metrics["loss"])
    lost = gw.missing_dataset_inputs(shapes.runs["orphan-input"])
    assert lost == (1 if shapes.orphan_input else 0)
    assert gw.store_notes() == [] or byo_store.backend == "file"

    single = gw.get_registered_model(SINGLE)
    assert single.aliases == {"champion": "1"}  # int on SQL stores, str on file stores
    assert [v.aliases for v in gw.list_versions(SINGLE)] == [("champion",)]
    sixty = gw.list_versions(SIXTY)
    assert len(sixty) == 60
    assert sorted(v.version for v in sixty if v.stage == "Production") == sorted(PRODUCTION_HOLDERS)
    assert {v.description for v in sixty} == {""}  # null descriptions

    outside, inside = sorted(gw.list_versions(LOGGED), key=lambda v: v.version)
    assert (outside.run_id, outside.model_id) == ("", shapes.logged_models["outside-run"])
    model = gw.logged_model(outside.model_id)
    assert model.source_run_id == ""
    assert model.params == {"learning_rate": "0.05", "layers": "3"}
    assert {(m.key, m.value, m.dataset_name) for m in model.metrics} == {
        ("accuracy", 0.91, "eval-set"),
        ("f1", 0.88, "eval-set"),
    }
    assert all(m.run_id for m in model.metrics)  # MLflow logged them from an evaluation run
    assert gw.logged_model(inside.model_id).source_run_id == shapes.runs["with-logged-model"]
    assert {v.run_id for v in gw.list_versions(SHARED)} == {shapes.runs["shared"]}


def test_the_registry_adapter_captures_logged_models_and_every_stage_holder(
    byo_store: ByoStore,
) -> None:
    shapes = byo_store.shapes
    assert shapes is not None
    registry = MlflowModelRegistry(settings(byo_store))
    outside = registry.get_version(LOGGED, "1")
    assert outside.run_id == ""
    assert outside.model_id == shapes.logged_models["outside-run"]
    assert outside.metrics == {"accuracy": 0.91, "f1": 0.88}
    assert outside.params == {"learning_rate": "0.05", "layers": "3"}
    lineage = outside.lineage["logged_model"]
    assert lineage["source_run_id"] == ""
    assert {m["dataset_name"] for m in lineage["metrics"]} == {"eval-set"}
    inside = registry.get_version(LOGGED, "2")
    assert inside.run_id == shapes.runs["with-logged-model"]
    # log_metrics(..., dataset=) also records the data set as an input of the run (no context)
    assert {(d["name"], d["context"]) for d in inside.lineage["datasets"]} == {
        ("train-set", "training"),
        ("eval-set", ""),
    }
    # Two models from one run: each keeps its own accuracy, not the run's last value.
    assert [registry.get_version(SHARED, v).metrics["accuracy"] for v in ("1", "2")] == [0.8, 0.83]
    assert registry.stage_holders(SIXTY, "Production") == PRODUCTION_HOLDERS
    assert registry.alias_holder(SINGLE, "champion") == "1"


@pytest.mark.parametrize("backend", ["sqlite", "file"])
def test_governance_executes_on_a_copy_and_archives_per_the_policy(
    backend: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    empty_db_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from app.bootstrap import build_governance, upgrade_governance_db
    from governance.domain import CLI_OPERATOR
    from tests.e2e.gov_env import PASSWORDS

    store = copy_store(request.getfixturevalue(f"byo_{backend}"), tmp_path / "store")
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")  # where MLflow would create its default ./mlflow.db
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "version: 1\ndefaults: {quorum: 1, gates: []}\n"
        "targets: {Production: {archive_existing_versions: false}}\n",
        encoding="utf-8",
    )
    conf = Settings.from_env(env=store.env(COUNTERSIGN_DB_URL=empty_db_url,
                                           COUNTERSIGN_POLICY=str(policy)))  # fmt: skip
    upgrade_governance_db(conf)
    facade = build_governance(conf)
    try:
        for name, roles in (("alice", ["requester"]), ("erin", ["approver"])):
            facade.create_user(CLI_OPERATOR, name, roles, PASSWORDS[name])
        for model, version, target in ((SIXTY, "60", "Production"), (LOGGED, "1", "challenger")):
            req = facade.request_promotion("alice", model, version, target, "reviewed")
            done = facade.sign_off(
                "erin", req.id, decision="approve", comment="ok",
                content_hash=req.content_hash, password=PASSWORDS["erin"],
            )  # fmt: skip
            assert done.request.state == "executed", done
    finally:
        facade.dispose()
    registry = MlflowModelRegistry(conf)
    assert registry.stage_holders(SIXTY, "Production") == (*PRODUCTION_HOLDERS, "60")
    assert registry.alias_holder(LOGGED, "challenger") == "1"
    assert registry.get_version(LOGGED, "1").tags["countersign.target"] == "alias:challenger"
    # MLflow's file registry reads logged models through the process's default tracking URI;
    # left unset, that default is a new ./mlflow.db.
    assert list((tmp_path / "cwd").iterdir()) == []


def test_a_store_at_a_newer_schema_is_read_only_and_left_as_it_is(
    byo_sqlite: ByoStore, tmp_path: Path
) -> None:
    import sqlite3

    store = copy_store(byo_sqlite, tmp_path / "newer")
    path = Path(store.uri[len("sqlite:///") :])
    with sqlite3.connect(path) as conn:  # as if a newer MLflow had migrated it
        conn.execute("UPDATE alembic_version SET version_num = 'f00dfeedbeef'")
    before = digest(path)
    gw = MlflowGateway(settings(store))
    notice = gw.schema_notice() or ""
    assert "schema revision f00dfeedbeef" in notice
    assert "a newer MLflow wrote the store" in notice
    assert EXPERIMENT in {e.name for e in gw.list_experiments()}
    with pytest.raises(StoreSchemaMismatch, match="f00dfeedbeef"):
        gw.list_registered_models()
    assert digest(path) == before


def test_an_empty_database_is_never_made_into_a_store(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    path.write_bytes(b"")
    env = {"COUNTERSIGN_DATA_DIR": str(tmp_path), "MLFLOW_TRACKING_URI": f"sqlite:///{path}"}
    gw = MlflowGateway(Settings.from_env(env=env))
    with pytest.raises(StoreSchemaMismatch, match="is not an MLflow store"):
        gw.list_experiments()
    assert not gw.health().ok
    assert path.read_bytes() == b""


@pytest.mark.postgres
def test_the_read_only_connections_refuse_to_write(
    byo_sqlite: ByoStore, byo_postgresql: ByoStore
) -> None:
    from sqlalchemy import text

    for store in (byo_sqlite, byo_postgresql):
        engine = readonly_engine(store.uri)
        try:
            with engine.connect() as conn:
                assert conn.execute(text("SELECT count(*) FROM runs")).scalar()
            with pytest.raises(Exception, match=r"(?i)read.?only"), engine.begin() as conn:
                conn.execute(text("DELETE FROM runs"))
        finally:
            engine.dispose()


def test_a_file_store_is_never_added_to(byo_file: ByoStore, tmp_path: Path) -> None:
    store = copy_store(byo_file, tmp_path / "copy")
    root = Path(store.uri[len("file://") :])
    gw = MlflowGateway(settings(store))
    (note,) = gw.store_notes()
    assert repr(NO_META_FOLDER) in note
    assert "without meta.yaml" in note
    assert EXPERIMENT in {e.name for e in gw.list_experiments()}  # and no crash on the folder

    shutil.rmtree(root / "models")  # a store nobody registered a model in
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    gw = MlflowGateway(settings(store))
    assert gw.list_registered_models() == ()
    assert (gw.counts().models, gw.counts().versions) == (0, 0)
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before  # no models/ made

    (root / ".trash").rmdir()  # e.g. an mlruns/ folder kept in git, which drops empty folders
    with pytest.raises(StoreUnavailable, match=r"has no \.trash folder.*mkdir"):
        MlflowGateway(settings(store)).list_experiments()
    assert not (root / ".trash").exists()
    missing = ByoStore("file", (tmp_path / "nowhere").as_uri(), tmp_path / "data")
    with pytest.raises(StoreUnavailable, match="does not exist"):
        MlflowGateway(settings(missing)).list_experiments()
    assert not (tmp_path / "nowhere").exists()
