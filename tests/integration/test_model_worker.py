"""The model worker against hostile model files: each limit holds and is named, nothing of the
parent leaks into it, and its answer is validated before anything trusts it.

Every model here is saved with MLflow's own `save_model` (cloudpickle), the way a team would
log one, and loaded only inside a real worker process.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from app.errors import InvalidInput, LimitExceeded
from app.model_worker.launcher import (
    WorkerLimits,
    compute_importance,
    run_worker,
    validate,
    worker_env,
)
from tests.hostile_model import frames

pytestmark = pytest.mark.slow


class Payload:
    """Unpickling this runs `code` (the classic pickle attack: builtins.eval by reference)."""

    def __init__(self, code: str) -> None:
        self.code = code

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (eval, (self.code,))


def _workdir(tmp_path: Path, code: str) -> Path:
    import mlflow.sklearn

    workdir = tmp_path / "work"
    workdir.mkdir()
    # Explicit requirements: inferring them loads the model in a subprocess of MLflow's.
    mlflow.sklearn.save_model(
        Payload(code),
        str(workdir / "model"),
        serialization_format="cloudpickle",
        pip_requirements=["scikit-learn", "cloudpickle"],
    )
    reference, _ = frames()
    reference.to_parquet(workdir / "data.parquet", index=False)
    request = {"model_dir": str(workdir / "model"), "data": str(workdir / "data.parquet")}
    request |= {"target": "target", "n_repeats": 1, "seed": 0}
    (workdir / "request.json").write_text(json.dumps(request), encoding="utf-8")
    return workdir


def test_a_model_that_never_returns_is_killed_at_the_wall_clock_limit(tmp_path: Path) -> None:
    code = "__import__('time').sleep(600)"
    with pytest.raises(LimitExceeded, match=r"within 5 s.*COUNTERSIGN_MODEL_WORKER_TIMEOUT_S"):
        run_worker(_workdir(tmp_path, code), WorkerLimits(timeout_s=5))


def test_a_model_that_spins_is_stopped_at_its_cpu_time(tmp_path: Path) -> None:
    code = "sum(1 for _ in iter(int, 1))"
    with pytest.raises(LimitExceeded, match=r"4 s of CPU time.*COUNTERSIGN_MODEL_WORKER_CPU_S"):
        run_worker(_workdir(tmp_path, code), WorkerLimits(cpu_s=4, timeout_s=300))


def test_a_model_that_allocates_without_end_hits_its_memory_limit(tmp_path: Path) -> None:
    code = "bytearray(8 * 1024 ** 3)"
    with pytest.raises(
        LimitExceeded, match=r"1024 MB of memory.*COUNTERSIGN_MODEL_WORKER_MEMORY_MB"
    ):
        run_worker(_workdir(tmp_path, code), WorkerLimits(memory_mb=1024))


def test_a_model_that_floods_stdout_is_refused(tmp_path: Path) -> None:
    code = "__import__('sys').stdout.write('x' * 5_000_000)"
    with pytest.raises(InvalidInput, match="larger than 1 MB"):
        run_worker(_workdir(tmp_path, code), WorkerLimits())


def test_the_worker_inherits_no_secret_no_descriptor_and_no_stdin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secrets = {
        "COUNTERSIGN_DB_URL": "postgresql://app:db-secret-1@db/gov",
        "COUNTERSIGN_SIGNING_KEY": str(tmp_path / "signing.pem"),
        "MLFLOW_TRACKING_PASSWORD": "tracking-secret-2",
        "AWS_SECRET_ACCESS_KEY": "aws-secret-3",
    }
    for key, value in secrets.items():
        monkeypatch.setenv(key, value)
    key_file = tmp_path / "signing.pem"
    key_file.write_text("PRIVATE KEY", encoding="utf-8")
    fd = os.open(key_file, os.O_RDONLY)
    os.set_inheritable(fd, True)  # even a descriptor marked inheritable stays behind
    # The confined worker cannot write outside its folder: it reports on stderr (answer.err).
    code = (
        "(lambda os, json, sys: sys.stderr.write('RECORD ' + json.dumps({"
        "'fds': {f: os.readlink('/proc/self/fd/' + f) for f in os.listdir('/proc/self/fd')"
        " if os.path.exists('/proc/self/fd/' + f)},"
        "'env': dict(os.environ), 'cwd': os.getcwd(), 'pid': os.getpid()}) + '\\n'))"
        "(__import__('os'), __import__('json'), __import__('sys'))"
    )
    workdir = _workdir(tmp_path, code)
    try:
        with pytest.raises(InvalidInput, match="could not compute importance"):
            run_worker(workdir, WorkerLimits())
    finally:
        os.close(fd)
    lines = (workdir / "answer.err").read_text(encoding="utf-8").splitlines()
    seen = json.loads(next(x for x in lines if x.startswith("RECORD "))[len("RECORD ") :])
    assert seen["pid"] != os.getpid()
    assert set(seen["env"]) <= set(worker_env(workdir)) | {"_MLFLOW_TELEMETRY_SESSION_ID"}
    assert not any(v in json.dumps(seen["env"]) for v in secrets.values())
    assert str(key_file) not in seen["fds"].values()
    assert seen["fds"]["0"] == "/dev/null"
    assert Path(seen["cwd"]) == workdir


def save_plain_model(target: Path) -> Path:
    """A logistic regression on the test frames, saved as a team would (cloudpickle)."""
    import mlflow.sklearn
    from sklearn.linear_model import LogisticRegression

    reference, _ = frames()
    features = ["a", "b", "c"]
    model = LogisticRegression().fit(reference[features], reference["target"])
    mlflow.sklearn.save_model(
        model,
        str(target),
        serialization_format="cloudpickle",
        pip_requirements=["scikit-learn", "cloudpickle"],
    )
    return target


def test_a_plain_model_s_importance_comes_back_validated(tmp_path: Path) -> None:
    reference, _ = frames()
    workdir = tmp_path / "work"
    workdir.mkdir()
    save_plain_model(workdir / "model")
    result = compute_importance(
        workdir / "model", reference, "target", workdir, WorkerLimits(), "m", "4"
    )
    assert (result.source, result.method) == ("model", "|coefficient|")
    assert result.top_k(1) == ("a",)


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        ({"source": "model", "method": "impurity", "importances": {"a": 1}, "x": 1}, "fields"),
        ({"source": "oracle", "method": "impurity", "importances": {"a": 1}}, "source"),
        ({"source": "model", "method": "permutation", "importances": {"a": 1}}, "method"),
        ({"source": "model", "method": "impurity", "importances": {"zz": 1.0}}, "column"),
        ({"source": "model", "method": "impurity", "importances": {"a": True}}, "number"),
        ({"source": "model", "method": "impurity", "importances": {"a": "1"}}, "number"),
        ({"source": "model", "method": "impurity", "importances": {"a": float("inf")}}, "finite"),
        ({"source": "model", "method": "impurity", "importances": {}}, "number of features"),
        (
            {"source": "model", "method": "impurity", "importances": {"a": 1, "b": 1, "c": 1}},
            "number of features",
        ),
    ],
)
def test_a_worker_answer_that_is_not_exact_is_refused(answer: dict[str, Any], why: str) -> None:
    with pytest.raises(InvalidInput, match=why):
        validate(answer, ["a", "b"], "m", "1")
