"""Starting the model worker and trusting nothing it says.

The parent process (app or CLI) holds secrets; the worker gets none of them. Its environment
is built from an allow-list, never by removing names from ours, so a secret added tomorrow
under any name stays out. Limits are applied by the worker's first lines of code, before it
imports anything that reads the model (no `preexec_fn`: the app is multi-threaded).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import signal
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.entities import FeatureImportance
from app.errors import InvalidInput, LimitExceeded
from app.model_worker.sandbox import ISOLATION_FAILED

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[2]
MB = 1024 * 1024
MAX_ANSWER_BYTES = 1 * MB
MAX_FEATURE_NAME = 1_000
MAX_FILE_BYTES = 64 * MB  # anything the worker writes, its answer included
METHODS = {"model": {"impurity", "|coefficient|"}, "permutation": {"permutation"}}
# The worker's first statements: limits, then our module. `-I` already ignores PYTHON* variables,
# the user's site-packages and the working folder on sys.path.
BOOT = (
    "import os, resource, sys\n"
    "root, isolation = sys.argv[1], sys.argv[5]\n"
    "memory, cpu, fsize = (int(x) for x in sys.argv[2:5])\n"
    "resource.setrlimit(resource.RLIMIT_AS, (memory, memory))\n"
    "resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))\n"
    "resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))\n"
    "resource.setrlimit(resource.RLIMIT_CORE, (0, 0))\n"
    "sys.path.insert(0, root)\n"
    "from app.model_worker.sandbox import enter\n"
    "enter(isolation, os.getcwd(), [os.path.join(root, 'app')])\n"
    "from app.model_worker.child import main\n"
    "sys.exit(main())\n"
)
ISOLATIONS = ("namespaces", "limits-only")


@dataclass(frozen=True)
class WorkerLimits:
    """Memory (address space), CPU seconds and wall-clock seconds of one worker run, and its
    isolation: `namespaces` (see `sandbox`; refuses to run where the host does not allow it)
    or `limits-only` (the limits and the clean environment, nothing more)."""

    memory_mb: int = 2048
    cpu_s: int = 120
    timeout_s: int = 180
    isolation: str = "namespaces"


def worker_env(workdir: Path) -> dict[str, str]:
    """The worker's whole environment: an allow-list, nothing inherited from this process."""
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": str(workdir),
        "TMPDIR": str(workdir / "tmp"),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        # The worker is the one process allowed to unpickle; ours keep MLflow's switch off.
        "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "true",
        # The worker has nothing to report to anyone.
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "true",
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }


def run_worker(workdir: Path, limits: WorkerLimits) -> dict[str, Any]:
    """Run the worker in `workdir` (which holds request.json, the model and the data).

    Returns:
        The parsed answer (not yet validated against the data).

    Raises:
        LimitExceeded: It ran out of time, CPU or memory (the message names the setting).
        InvalidInput: It failed or answered something that is not one JSON document.
    """
    (workdir / "tmp").mkdir(exist_ok=True)
    out_path, err_path = workdir / "answer.out", workdir / "answer.err"
    if limits.isolation not in ISOLATIONS:
        raise InvalidInput(f"unknown model worker isolation {limits.isolation!r}")
    if limits.isolation == "limits-only":
        log.warning(
            "model worker runs without isolation (COUNTERSIGN_MODEL_WORKER_ISOLATION=limits-only):"
            " model code can read what this server's user can read and reach the network"
        )
    args = [str(ROOT), str(limits.memory_mb * MB), str(limits.cpu_s), str(MAX_FILE_BYTES)]
    args.append(limits.isolation)
    with out_path.open("wb") as out, err_path.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-I", "-B", "-c", BOOT, *args],
            cwd=workdir,
            env=worker_env(workdir),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            close_fds=True,
            start_new_session=True,  # its own process group, so the whole group can be killed
        )
        try:
            code = proc.wait(timeout=limits.timeout_s)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            raise LimitExceeded(
                f"the model worker did not finish within {limits.timeout_s} s "
                "(raise COUNTERSIGN_MODEL_WORKER_TIMEOUT_S to allow more)"
            ) from None
        finally:
            _kill_group(proc)  # whatever it started in its group ends with it
    return _parse(code, out_path, err_path, limits)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _parse(code: int, out_path: Path, err_path: Path, limits: WorkerLimits) -> dict[str, Any]:
    if code == -signal.SIGXCPU:
        raise LimitExceeded(
            f"the model worker used up its {limits.cpu_s} s of CPU time "
            "(raise COUNTERSIGN_MODEL_WORKER_CPU_S to allow more)"
        )
    if code == -signal.SIGKILL:
        raise LimitExceeded(
            "the model worker was stopped by the system for exceeding its CPU time or memory "
            "(COUNTERSIGN_MODEL_WORKER_CPU_S, COUNTERSIGN_MODEL_WORKER_MEMORY_MB)"
        )
    if code == -signal.SIGXFSZ or out_path.stat().st_size > MAX_ANSWER_BYTES:
        raise InvalidInput("the model worker's answer is larger than 1 MB; it was refused")
    try:
        doc = json.loads(out_path.read_text("utf-8", errors="replace"), parse_constant=_nan)
    except ValueError:
        doc = None
    tail = err_path.read_bytes()[-4000:].decode("utf-8", errors="replace")
    out_of_memory = doc is None and "MemoryError" in tail
    if out_of_memory or (isinstance(doc, dict) and doc.get("error") == "out of memory"):
        raise LimitExceeded(
            f"the model worker ran out of its {limits.memory_mb} MB of memory "
            "(raise COUNTERSIGN_MODEL_WORKER_MEMORY_MB to allow more)"
        )
    if not isinstance(doc, dict):
        raise InvalidInput(f"the model worker failed (exit code {code}) without an answer")
    if code == ISOLATION_FAILED and isinstance(doc.get("isolation"), str):
        raise InvalidInput(
            f"the model worker cannot isolate itself on this server ({doc['isolation'][:200]}), "
            "so no model was loaded; allow unprivileged user namespaces (or run the worker as "
            "root), or set COUNTERSIGN_MODEL_WORKER_ISOLATION=limits-only to accept that model "
            "code can read what this server's user can read"
        )
    if code != 0 or "error" in doc:
        error = doc.get("error")
        detail = error[:300] if isinstance(error, str) else "no reason given"
        raise InvalidInput(f"the model worker could not compute importance: {detail}")
    return doc


def _nan(name: str) -> float:
    raise ValueError(f"{name} is not a number")


def validate(
    doc: dict[str, Any], columns: Iterable[str], model: str, version: str
) -> FeatureImportance:
    """The worker's answer as our entity, or InvalidInput when it is anything but exact.

    Exactly the keys source, method and importances; a known source and method; one finite
    number per feature, and every feature a column of the data the worker was given.
    """
    known = {str(c) for c in columns}

    def refuse(why: str) -> InvalidInput:
        return InvalidInput(f"the model worker's answer was refused: {why}")

    if set(doc) != {"source", "method", "importances"}:
        raise refuse("unexpected fields")
    source, method, values = doc["source"], doc["method"], doc["importances"]
    if source not in METHODS or method not in METHODS[source]:
        raise refuse("unknown source or method")
    if not isinstance(values, dict) or not values or len(values) > len(known):
        raise refuse("the number of features does not match the data")
    clean: dict[str, float] = {}
    for name, value in values.items():
        if not isinstance(name, str) or len(name) > MAX_FEATURE_NAME or name not in known:
            raise refuse("a feature that is not a column of the data")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise refuse(f"the importance of {name!r} is not a number")
        if not math.isfinite(float(value)):
            raise refuse(f"the importance of {name!r} is not finite")
        clean[name] = float(value)
    return FeatureImportance(model, str(version), source, clean, method)


def compute_importance(
    model_dir: Path,
    frame: pd.DataFrame,
    target: str,
    workdir: Path,
    limits: WorkerLimits,
    model: str,
    version: str,
) -> FeatureImportance:
    """Native or permutation importance of the model in `model_dir` on `frame`, from a worker.

    Args:
        model_dir: The version's model folder, downloaded (unread) into `workdir`.
        frame: The reference data (the target column included).
        target: The target column's name.
        workdir: A private, empty folder for this run; the worker's working folder.
        limits: Memory, CPU time and wall-clock limits.
        model, version: For the entity.

    Raises:
        LimitExceeded: The worker ran out of time, CPU or memory.
        InvalidInput: It failed, or its answer did not pass validation.
    """
    data = workdir / "data.parquet"
    frame.to_parquet(data, index=False)
    request = {
        "model_dir": str(model_dir),
        "data": str(data),
        "target": target,
        "n_repeats": 3,
        "seed": 0,
    }
    (workdir / "request.json").write_text(json.dumps(request), encoding="utf-8")
    doc = run_worker(workdir, limits)
    features = [str(c) for c in frame.columns if c not in (target, "prediction")]
    return validate(doc, features, model, version)
