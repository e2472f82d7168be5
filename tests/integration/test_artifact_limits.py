"""Logged artifacts are measured before they are downloaded: a file or a model folder over
COUNTERSIGN_ARTIFACT_MAX_MB is refused with nothing fetched."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from app.errors import LimitExceeded
from app.settings import Settings


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, str]:
    from mlflow import MlflowClient

    root = tmp_path_factory.mktemp("sizes")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    exp = client.create_experiment("sizes", artifact_location=(root / "artifacts").as_uri())
    run = client.create_run(exp).info.run_id
    staged = root / "staged"
    (staged / "data").mkdir(parents=True)
    (staged / "model").mkdir()
    noise = np.random.default_rng(0).normal(size=(300_000, 1))  # incompressible: ~2.3 MB
    pd.DataFrame(noise, columns=["x"]).to_parquet(staged / "data" / "reference.parquet")
    (staged / "model" / "MLmodel").write_text("flavors: {}\n", encoding="utf-8")
    (staged / "model" / "model.pkl").write_bytes(np.random.default_rng(1).bytes(2_500_000))
    client.log_artifacts(run, str(staged))
    client.create_registered_model("big-model")
    client.create_model_version(
        "big-model", source=f"{root.as_uri()}/artifacts/{run}/artifacts/model", run_id=run
    )
    env = {"COUNTERSIGN_DATA_DIR": str(root), "MLFLOW_TRACKING_URI": uri}
    return Settings.from_env(env=env | {"COUNTERSIGN_ARTIFACT_MAX_MB": "1"}), run


def test_a_file_over_the_limit_is_refused_before_download(
    store: tuple[Settings, str], tmp_path: Path
) -> None:
    from app.bootstrap import build_gateway, build_monitoring

    settings, run = store
    gateway = build_gateway(settings)
    with pytest.raises(LimitExceeded) as refused:
        gateway.download_artifact(run, "data/reference.parquet", tmp_path / "dst")
    assert "data/reference.parquet is 2." in str(refused.value)
    assert "artifacts are read up to 1 MB (raise COUNTERSIGN_ARTIFACT_MAX_MB" in str(refused.value)
    assert not list(tmp_path.rglob("*.parquet"))
    monitoring = build_monitoring(settings, gateway)
    with pytest.raises(LimitExceeded, match="COUNTERSIGN_ARTIFACT_MAX_MB"):
        monitoring.load_data(run, "data/reference.parquet")
    assert not list(settings.cache_dir.rglob("*.parquet"))


def test_a_model_folder_over_the_limit_is_refused_before_download(
    store: tuple[Settings, str], tmp_path: Path
) -> None:
    from app.bootstrap import build_gateway

    settings, _ = store
    with pytest.raises(LimitExceeded, match=r"the model folder is 2\.4 MB.*ARTIFACT_MAX_MB"):
        build_gateway(settings).download_model_files("big-model", "1", tmp_path / "model")
    assert not (tmp_path / "model").exists()


def test_within_the_limit_the_same_artifacts_download(
    store: tuple[Settings, str], tmp_path: Path
) -> None:
    from app.bootstrap import build_gateway

    settings, run = store
    roomy = Settings.from_env(
        env={
            "COUNTERSIGN_DATA_DIR": str(settings.data_dir),
            "MLFLOW_TRACKING_URI": settings.tracking_uri,
        }
    )
    gateway = build_gateway(roomy)
    local = gateway.download_artifact(run, "data/reference.parquet", tmp_path / "dst")
    assert local.is_file()
    folder = gateway.download_model_files("big-model", "1", tmp_path / "model")
    assert (folder / "MLmodel").is_file()
