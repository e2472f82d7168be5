"""Logged artifacts written to hurt the reader: a `feature_importance.json` nested a hundred
thousand levels deep, one of 17 MB, one whose number overflows to infinity. Each is refused
with one line (the page and the evidence say so), never a traceback, and the large one is not
downloaded. A run that logged hundreds of data sets in hundreds of folders is walked within
bounds. Real MLflow store (SQLite), real artifact files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.errors import InvalidInput, LimitExceeded
from app.settings import Settings

pytestmark = pytest.mark.slow

HOSTILE = {
    "deep": "[" * 100_000 + "]" * 100_000,
    "huge": json.dumps({f"f{i}": 0.5 for i in range(1_100_000)}),  # about 17 MB
    "infinite": '{"a": 1e999999, "b": 0.5}',
}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    from mlflow import MlflowClient

    root = tmp_path_factory.mktemp("hostile-artifacts")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    exp = client.create_experiment("hostile", artifact_location=(root / "artifacts").as_uri())
    for name, text in HOSTILE.items():
        run = client.create_run(exp).info.run_id
        staged = root / "staged" / name
        staged.mkdir(parents=True)
        (staged / "feature_importance.json").write_text(text, encoding="utf-8")
        client.log_artifacts(run, str(staged))
        client.create_registered_model(name)
        client.create_model_version(name, source=f"runs:/{run}/model", run_id=run)
    crowded = root / "staged" / "crowded"
    for i in range(150):  # 150 folders of two data sets each, and 150 loose ones
        (crowded / f"batch-{i:03d}").mkdir(parents=True)
        for j in range(2):
            (crowded / f"batch-{i:03d}" / f"part-{j}.csv").write_text("a\n1\n", encoding="utf-8")
        (crowded / f"loose-{i:03d}.csv").write_text("a\n1\n", encoding="utf-8")
    run = client.create_run(exp, tags={"purpose": "crowded"}).info.run_id
    client.log_artifacts(run, str(crowded))
    return Settings.from_env(env={"COUNTERSIGN_DATA_DIR": str(root), "MLFLOW_TRACKING_URI": uri})


@pytest.mark.parametrize(
    ("name", "error", "message"),
    [
        ("deep", InvalidInput, "feature_importance.json of deep v1 is nested too deeply"),
        ("huge", LimitExceeded, r"of huge v1 is 1\d\.\d MB; an importance file is read up to 16"),
        ("infinite", InvalidInput, "non-finite value"),
    ],
)
def test_a_hostile_importance_file_is_refused_in_one_line(
    store: Settings, name: str, error: type[Exception], message: str
) -> None:
    from app.bootstrap import build_gateway, build_monitoring

    monitoring = build_monitoring(store, build_gateway(store))
    with pytest.raises(error, match=message):
        monitoring.feature_importance(name, "1")
    assert monitoring.importance_summary(name, "1") is None  # the evidence goes on without it
    downloaded = Path(store.cache_dir).rglob("feature_importance.json")
    assert all(p.stat().st_size < 2**20 for p in downloaded)  # the large one never arrived


def test_a_run_with_hundreds_of_data_sets_is_walked_within_bounds(store: Settings) -> None:
    from mlflow import MlflowClient

    from app.bootstrap import build_gateway, build_monitoring
    from app.monitoring import MAX_DATA_SETS, MAX_FOLDERS

    client = MlflowClient(tracking_uri=store.tracking_uri)
    (run,) = client.search_runs(
        [e.experiment_id for e in client.search_experiments()], "tags.purpose = 'crowded'"
    )
    monitoring = build_monitoring(store, build_gateway(store))
    found = monitoring.data_artifacts(run.info.run_id)
    assert len(found) == MAX_DATA_SETS == 200  # 450 were logged
    folders = {path.rpartition("/")[0] for path in found}
    assert len(folders - {""}) < MAX_FOLDERS  # the root is a folder walked too


@pytest.mark.parametrize(
    ("run_id", "path"),
    [("r1", "../../../outside.csv"), ("r1", "{root}/outside.csv"), ("../..", "outside.csv")],
)
def test_an_artifact_path_or_run_id_leading_out_of_the_cache_is_refused_unread(
    store: Settings, run_id: str, path: str
) -> None:
    from app.bootstrap import build_gateway, build_monitoring

    # A data set outside the cache folder, where the path leads (as a hostile artifact store's
    # listing could name it): refused, not read.
    outside = Path(store.cache_dir).parent / "outside.csv"
    outside.write_text("secret\n42\n", encoding="utf-8")
    (Path(store.cache_dir) / "artifacts" / "r1").mkdir(parents=True, exist_ok=True)
    monitoring = build_monitoring(store, build_gateway(store))
    with pytest.raises(InvalidInput, match="is not a plain path"):
        monitoring.load_data(run_id, path.format(root=outside.parent))


def test_a_version_that_is_a_path_reads_no_cached_importance(store: Settings) -> None:
    from app.bootstrap import build_gateway, build_monitoring
    from app.errors import NotFound

    # Where "../../planted" leads from the importance cache: a file in the cache's format.
    planted = Path(store.cache_dir) / "planted.logged.json"
    planted.parent.mkdir(parents=True, exist_ok=True)
    doc = {"model_name": "deep", "version": "1", "source": "artifact", "method": "planted"}
    planted.write_text(json.dumps(doc | {"importances": {"a": 1.0}}), encoding="utf-8")
    monitoring = build_monitoring(store, build_gateway(store))
    # The model's folder in the importance cache exists once any version of it was cached.
    monitoring._importance_path("deep", "1").parent.mkdir(parents=True, exist_ok=True)
    with pytest.raises(NotFound, match="has no version"):
        monitoring.feature_importance("deep", "../../planted")
    assert planted.is_file()  # neither served nor removed as a damaged cache entry
