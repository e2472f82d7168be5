"""The worker process itself (started only by `launcher`): load one model, compute importance,
print one JSON document, exit.

It reads `request.json` from its working folder: {"model_dir", "data", "target", "n_repeats",
"seed"}. It answers on stdout with {"source", "method", "importances": {feature: value}} or
{"error": "..."} (exit code 2). Limits were set before this module was imported.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def _answer(doc: dict[str, Any], code: int = 0) -> int:
    sys.stdout.write(json.dumps(doc, allow_nan=False))
    sys.stdout.flush()
    return code


def _fail(message: str) -> int:
    return _answer({"error": message[:300]}, 2)


def _features(frame: Any, target: str) -> list[str]:
    return [str(c) for c in frame.columns if c not in (target, "prediction")]


def compute(request: dict[str, Any]) -> dict[str, Any]:
    """The importance of the model in request["model_dir"] on the data in request["data"]."""
    import pandas as pd
    import yaml

    import app.reports.importance as imp

    model_dir = Path(request["model_dir"])
    mlmodel = yaml.safe_load((model_dir / "MLmodel").read_text(encoding="utf-8")) or {}
    if "sklearn" not in (mlmodel.get("flavors") or {}):
        raise ValueError("the model has no scikit-learn flavour")
    import mlflow.sklearn

    estimator = mlflow.sklearn.load_model(str(model_dir))
    frame = pd.read_parquet(request["data"])
    target = str(request["target"])
    native = imp.from_estimator(estimator, "", "")
    if native is not None:
        values = native.importances
        features = _features(frame, target)
        if not set(values) <= set(frame.columns) and len(values) == len(features):
            # No feature names on the estimator: they are the data's columns, in order.
            values = dict(zip(features, values.values(), strict=True))
        return {"source": "model", "method": native.method, "importances": values}
    result = imp.permutation(
        estimator,
        frame,
        target,
        "",
        "",
        n_repeats=int(request["n_repeats"]),
        seed=int(request["seed"]),
    )
    return {"source": "permutation", "method": result.method, "importances": result.importances}


def main() -> int:
    try:
        request = json.loads(Path("request.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return _fail(f"unreadable request: {exc}")
    try:
        return _answer(compute(request))
    except MemoryError:
        return _fail("out of memory")
    except Exception as exc:  # the model's own errors are data for the launcher's message
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return _fail(f"{type(exc).__name__}: {first}")
