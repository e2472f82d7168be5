"""A registered model whose unpickling runs its author's code, against every entry point that
used to load models: the Feature importance page (AppTest), `request create` (the CLI through
`python -m app.cli`), an approval (evidence re-capture, through `app.cli.main`) and the drift
and importance evidence.

By default nothing deserialises it: the marker file never appears. With
COUNTERSIGN_MODEL_IMPORTANCE=worker only the model worker unpickles it (the importance every entry
point shows is that model's), and the confined worker cannot write the marker outside its own
folder, so it still never appears.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

import app.deps as deps
from app.entities import SignedInUser
from tests.e2e.gov_env import PASSWORDS, prepare, store_env, workflow_policy
from tests.hostile_model import HostileModel, log_hostile_model

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 120
# What an attacker would want: fake values, set in this (the app's) environment.
FAKE_SECRETS = {
    "COUNTERSIGN_WEBHOOK_SECRET": "fake-webhook-secret-7f3a",
    "COUNTERSIGN_SESSION_SECRET": "fake-cookie-secret-91bc",
    "MLFLOW_TRACKING_PASSWORD": "fake-tracking-password-5d20",
    "MLFLOW_TRACKING_TOKEN": "fake-tracking-token-66e1",
}


@pytest.fixture(scope="module")
def trust_env(
    demo_data_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[dict[str, str], HostileModel]:
    root = tmp_path_factory.mktemp("trust")
    env = store_env(demo_data_dir, root) | {"COUNTERSIGN_POLICY": str(workflow_policy(root))}
    prepare(env)
    hostile = log_hostile_model(env["MLFLOW_TRACKING_URI"], root / "hostile")
    return env | FAKE_SECRETS, hostile


@pytest.fixture
def env(
    trust_env: tuple[dict[str, str], HostileModel], monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[dict[str, str], HostileModel]]:
    values, hostile = trust_env
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    for key in ("MLFLOW_REGISTRY_URI", "COUNTERSIGN_MODEL_IMPORTANCE"):
        monkeypatch.delenv(key, raising=False)
    # MLflow's own switch, as an operator might leave it: the app must turn it off itself.
    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "true")
    deps.clear_caches()
    yield values, hostile
    deps.clear_caches()


def _forget_importance(values: dict[str, str]) -> None:
    """Each entry point below must compute for itself, not read another's cached answer."""
    shutil.rmtree(Path(values["COUNTERSIGN_DATA_DIR"]) / "cache" / "importance", ignore_errors=True)


def _importance_page(hostile: HostileModel) -> AppTest:
    at = AppTest.from_file(str(ROOT / "pages" / "feature_importance.py"), default_timeout=TIMEOUT)
    now = datetime.now(UTC)
    at.session_state["countersign_user"] = SignedInUser("erin", ("approver",), "local", now, now)
    at.query_params.update({"model": hostile.name, "versions": hostile.version})
    return at.run(timeout=TIMEOUT)


def _cli_create(values: dict[str, str], hostile: HostileModel, target: str) -> tuple[str, int]:
    """`request create` through the entry point, as a pipeline runs it; (request id, its pid)."""
    env = {**os.environ, **values, "PYTHONPATH": str(ROOT)}
    args = ["request", "create", "--model", hostile.name, "--version", hostile.version]
    args += ["--target", target, "--justification", "nightly", "--as", "sam"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", *args, "--password-stdin", "--json"],
        cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    out, err = proc.communicate(PASSWORDS["sam"] + "\n", timeout=300)
    assert proc.returncode == 0, err
    return json.loads(out)["id"], proc.pid


def _cli_approve(request_id: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from app.cli import main

    monkeypatch.setattr(sys, "stdin", io.StringIO(PASSWORDS["erin"] + "\n"))
    args = ["request", "approve", request_id, "--comment", "ok", "--as", "erin"]
    assert main([*args, "--password-stdin"]) == 0


def _evidence(hostile: HostileModel) -> tuple[Any, Any]:
    from app.bootstrap import build_evidence_source
    from app.settings import Settings

    source = build_evidence_source(Settings.from_env())
    return (
        source.drift_summary(hostile.name, hostile.version),
        source.importance_summary(hostile.name, hostile.version),
    )


def test_by_default_no_entry_point_deserialises_the_model(
    env: tuple[dict[str, str], HostileModel], monkeypatch: pytest.MonkeyPatch
) -> None:
    values, hostile = env
    _forget_importance(values)
    request_id, _ = _cli_create(values, hostile, "trust-default")
    _cli_approve(request_id, monkeypatch)
    assert os.environ["MLFLOW_ALLOW_PICKLE_DESERIALIZATION"] == "false"  # the CLI's start-up
    at = _importance_page(hostile)
    assert not at.exception, [e.value for e in at.exception]
    assert [i.value for i in at.info] == [
        f"v{hostile.version}: no importance logged.",
        "None of these versions has importance to show.",
    ]
    drift, importance = _evidence(hostile)
    assert drift is not None
    assert drift["drifted_columns"] == ["a"]
    assert "importance_top_k" not in drift
    assert importance is None  # the evidence holds no importance: none was logged
    details = deps.get_governance().get_request("erin", request_id)
    assert details.request.state == "executed"
    assert details.request.evidence_hash  # captured (and re-captured) without the model
    assert hostile.records() == []
    # MLflow's own switch now refuses the load even if something in this process tried it.
    import mlflow.sklearn
    from mlflow.exceptions import MlflowException

    model_dir = next((Path(values["COUNTERSIGN_DATA_DIR"]) / "hostile").rglob("MLmodel")).parent
    with pytest.raises(MlflowException, match="MLFLOW_ALLOW_PICKLE_DESERIALIZATION"):
        mlflow.sklearn.load_model(str(model_dir))
    assert hostile.records() == []


def test_with_the_opt_in_only_the_confined_worker_deserialises_it(
    env: tuple[dict[str, str], HostileModel], monkeypatch: pytest.MonkeyPatch
) -> None:
    values, hostile = env
    monkeypatch.setenv("COUNTERSIGN_MODEL_IMPORTANCE", "worker")
    values = values | {"COUNTERSIGN_MODEL_IMPORTANCE": "worker"}
    before = len(hostile.records())
    _forget_importance(values)
    request_id, _ = _cli_create(values, hostile, "trust-worker")
    _forget_importance(values)
    _cli_approve(request_id, monkeypatch)  # the approval re-captures the evidence here
    details = deps.get_governance().get_request("erin", request_id)
    assert details.request.evidence_dict()["importance"]["source"] == "permutation"
    _forget_importance(values)
    at = _importance_page(hostile)
    assert not at.exception, [e.value for e in at.exception]
    assert any("permutation" in c.value and "model worker" in c.value for c in at.caption)
    _forget_importance(values)
    drift, importance = _evidence(hostile)
    assert importance is not None
    assert importance["source"] == "permutation"
    assert drift is not None
    assert drift["drifted_important_features"] == ["a"]
    # Each of those ran the payload (the importance is that of the model it unpickled), in a
    # worker that sees only its own folder, read-only: its marker landed nowhere. What the
    # worker's environment holds and what it can reach: tests/integration/test_model_worker*.py.
    assert hostile.records()[before:] == []
