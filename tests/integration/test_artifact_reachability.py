"""Versions that exist while their artifacts do not live here: a path logged on a Windows laptop
(`file:///C:/Users/...`) and an artifact server that does not answer. Every read of their files
says "artifacts of this version are not reachable from this server: URI", never "not found".
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import app.deps as deps
from app.entities import SignedInUser
from app.errors import ArtifactsUnreachable
from app.settings import Settings
from tests.fixtures_mlflow import free_port
from tests.markdown_text import shown

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 120
UNREACHABLE = "artifacts of this version are not reachable from this server: "


@dataclass(frozen=True)
class Store:
    settings: Settings
    uris: dict[str, str]  # model name -> the artifact URI its messages must name
    runs: dict[str, str]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    from mlflow import MlflowClient

    root = tmp_path_factory.mktemp("elsewhere")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    port = free_port()  # nobody listens there
    locations = {
        "laptop-model": "file:///C:/Users/someone/mlruns/1",
        "remote-model": f"http://127.0.0.1:{port}/api/2.0/mlflow-artifacts/artifacts/2",
    }
    uris, runs = {}, {}
    for name, location in locations.items():
        exp = client.create_experiment(name, artifact_location=location)
        run = client.create_run(exp)
        client.log_metric(run.info.run_id, "accuracy", 0.9)
        client.create_registered_model(name)
        client.create_model_version(
            name, source=f"{run.info.artifact_uri}/model", run_id=run.info.run_id
        )
        uris[name], runs[name] = run.info.artifact_uri, run.info.run_id
    settings = Settings.from_env(
        env={"COUNTERSIGN_DATA_DIR": str(root), "MLFLOW_TRACKING_URI": uri}
    )
    return Store(settings, uris, runs)


@pytest.fixture
def gateway(store: Store):  # type: ignore[no-untyped-def]
    from app.bootstrap import build_gateway

    return build_gateway(store.settings)


@pytest.mark.parametrize("model", ["laptop-model", "remote-model"])
def test_every_gateway_read_of_the_files_names_the_unreachable_store(
    store: Store, gateway, model: str, tmp_path: Path
) -> None:
    run_id = store.runs[model]
    assert gateway.get_version(model, "1").run_id == run_id  # the version exists
    reads = [
        lambda: gateway.list_artifacts(run_id),
        lambda: gateway.download_artifact(run_id, "feature_importance.json", tmp_path),
        lambda: gateway.download_model_files(model, "1", tmp_path / "model"),
        lambda: gateway.version_signature(model, "1"),
    ]
    for read in reads:
        with pytest.raises(ArtifactsUnreachable) as caught:
            read()
        assert str(caught.value).startswith(UNREACHABLE + store.uris[model].rsplit("/", 1)[0])
        assert "not found" not in str(caught.value)


def test_the_importance_of_such_a_version_is_unreachable_not_missing(store: Store, gateway) -> None:
    from app.bootstrap import build_monitoring

    monitoring = build_monitoring(store.settings, gateway)
    with pytest.raises(ArtifactsUnreachable, match="C:/Users/someone"):
        monitoring.feature_importance("laptop-model", "1")
    assert monitoring.importance_summary("laptop-model", "1") is None


@pytest.fixture
def pages(store: Store, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    monkeypatch.setenv("COUNTERSIGN_DATA_DIR", str(store.settings.data_dir))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store.settings.tracking_uri)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    deps.clear_caches()
    yield store
    deps.clear_caches()


def _page(name: str, **query: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "pages" / f"{name}.py"), default_timeout=TIMEOUT)
    now = datetime.now(UTC)
    at.session_state["countersign_user"] = SignedInUser("dana", ("viewer",), "local", now, now)
    at.query_params.update(query)
    return at.run(timeout=TIMEOUT)


def _said(at: AppTest) -> str:
    return " ".join(shown(str(e.value)) for e in (*at.error, *at.warning, *at.info))


@pytest.mark.parametrize(
    ("page", "query"),
    [
        ("feature_importance", {"model": "laptop-model", "versions": "1"}),
        ("feature_importance", {"model": "remote-model", "versions": "1"}),
        ("drift", {"model": "laptop-model", "version": "1"}),
        ("drift", {"model": "remote-model", "version": "1"}),
    ],
)
def test_pages_that_need_the_files_say_they_are_not_reachable(
    pages: Store, page: str, query: dict[str, str]
) -> None:
    at = _page(page, **query)
    assert not at.exception, [e.value for e in at.exception]
    said = _said(at)
    assert UNREACHABLE in said
    assert pages.uris[query["model"]].split("/")[2] in said or "C:/Users" in said
    assert "not found" not in said


def test_compare_versions_still_compares_and_says_whose_files_are_out_of_reach(
    pages: Store,
) -> None:
    from mlflow import MlflowClient

    uri = pages.settings.tracking_uri
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    run_id = pages.runs["laptop-model"]
    if len(client.search_model_versions("name = 'laptop-model'")) < 2:
        client.create_model_version(
            "laptop-model", source=f"{pages.uris['laptop-model']}/model", run_id=run_id
        )
    at = _page("compare_versions", model="laptop-model", versions="1,2")
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert any("accuracy" in str(d.value) for d in at.dataframe)
    # The files are needed (and missed) by the schema comparison, which runs when its tab opens.
    at.session_state["version_tab"] = "Schema"
    at.run(timeout=TIMEOUT)
    assert not at.exception, [e.value for e in at.exception]
    assert "v1: " + UNREACHABLE in _said(at)
