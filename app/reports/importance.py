"""Feature importance: from a logged artifact, from the model itself, or by permutation.

Pure functions over our entities, estimators and DataFrames. The app reads only the logged
artifact (`from_artifact`); `from_estimator` and `permutation` run inside the model worker
(app/model_worker), the one process that loads a model.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from app.entities import DriftResult, FeatureImportance
from app.errors import InvalidInput, LimitExceeded

Progress = Callable[[float, str], None]
MAX_FEATURES = 100_000
MAX_NAME = 1_000
# A few hundred bytes per feature; the artifact limit (200 MB) is far too much JSON to parse.
MAX_ARTIFACT_BYTES = 16 * 1024 * 1024


def check_artifact_size(size: int | None, what: str) -> None:
    """Refuse a `feature_importance.json` larger than MAX_ARTIFACT_BYTES (None: not listed).

    Raises:
        LimitExceeded: The file is larger than the bound.
    """
    if size is not None and size > MAX_ARTIFACT_BYTES:
        raise LimitExceeded(
            f"{what} is {size / 2**20:.1f} MB; an importance file is read up to "
            f"{MAX_ARTIFACT_BYTES // 2**20} MB"
        )


def read_artifact(data: bytes, model: str, version: str) -> FeatureImportance:
    """Parse the bytes of a logged `feature_importance.json` within its bounds.

    Raises:
        LimitExceeded: Larger than MAX_ARTIFACT_BYTES.
        InvalidInput: Not UTF-8 JSON, nested too deeply to parse, or not an importance document
            (see `from_artifact`).
    """
    what = f"feature_importance.json of {model} v{version}"
    check_artifact_size(len(data), what)
    try:
        doc = json.loads(data.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{what} is not JSON") from exc
    except RecursionError as exc:  # [[[[...: json's parser recurses once per level
        raise InvalidInput(f"{what} is nested too deeply to be an importance document") from exc
    return from_artifact(doc, model, version)


def from_artifact(doc: Mapping[str, Any], model: str, version: str) -> FeatureImportance:
    """`feature_importance.json`: {"method": str, "features": [{"feature", "importance"}, ...]}
    (a plain {feature: value} mapping is accepted too). Logged data, read as data: at most
    MAX_FEATURES features with names of at most MAX_NAME characters, and finite numbers.

    Raises:
        InvalidInput: The document has neither shape, or breaks one of those bounds.
    """
    features = doc.get("features") if isinstance(doc, Mapping) else None
    try:
        pairs = (
            [(f["feature"], f["importance"]) for f in features]
            if isinstance(features, list)
            else list(dict(doc).items())
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidInput(f"feature importance artifact is not readable: {exc}") from exc
    if len(pairs) > MAX_FEATURES:
        raise InvalidInput(f"feature importance artifact lists more than {MAX_FEATURES} features")
    values: dict[str, float] = {}
    for name, value in pairs:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InvalidInput(f"feature importance artifact: {str(name)[:80]!r} has no number")
        if not math.isfinite(value) or len(str(name)) > MAX_NAME:
            raise InvalidInput(
                "feature importance artifact holds a non-finite value or a name "
                f"longer than {MAX_NAME} characters"
            )
        values[str(name)] = float(value)
    method = str(doc.get("method", ""))[:80] if isinstance(features, list) else ""
    return FeatureImportance(model, str(version), "artifact", values, method or "logged")


def _names(estimator: Any, n: int) -> list[str]:
    names = getattr(estimator, "feature_names_in_", None)
    if names is not None and len(names) == n:
        return [str(x) for x in names]
    return [f"feature_{i}" for i in range(n)]


def from_estimator(estimator: Any, model: str, version: str) -> FeatureImportance | None:
    """`feature_importances_` (trees) or |`coef_`| (linear models; mean over classes), or None."""
    final = estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator
    values = getattr(final, "feature_importances_", None)
    method = "impurity"
    if values is None:
        coef = getattr(final, "coef_", None)
        if coef is None:
            return None
        values = np.abs(np.atleast_2d(np.asarray(coef, dtype=float))).mean(axis=0)
        method = "|coefficient|"
    values = np.asarray(values, dtype=float)
    names = _names(estimator, values.size)
    return FeatureImportance(
        model, str(version), "model", dict(zip(names, values.tolist(), strict=True)), method
    )


def permutation(
    estimator: Any,
    frame: pd.DataFrame,
    target: str,
    model: str,
    version: str,
    *,
    n_repeats: int = 3,
    seed: int = 0,
    progress: Progress | None = None,
) -> FeatureImportance:
    """Mean drop of `estimator.score` when one feature's values are shuffled (seeded).

    Raises:
        InvalidInput: No target column, or the model cannot score the data as given.
    """
    if target not in frame.columns:
        raise InvalidInput(f"permutation importance needs the target column {target!r}")
    names = getattr(estimator, "feature_names_in_", None)
    features = (
        [str(c) for c in names]
        if names is not None
        else [c for c in frame.columns if c not in (target, "prediction")]
    )
    x, y = frame[features].copy(), frame[target]
    try:
        base = float(estimator.score(x, y))
    except Exception as exc:  # any estimator error means the data does not fit the model
        raise InvalidInput(f"the model cannot score the reference data: {exc}") from exc
    rng = np.random.default_rng(seed)
    values: dict[str, float] = {}
    for i, name in enumerate(features):
        if progress:
            progress(i / len(features), f"Permuting {name}")
        original = x[name].to_numpy().copy()
        drops = []
        for _ in range(n_repeats):
            x[name] = rng.permutation(original)
            drops.append(base - float(estimator.score(x, y)))
        x[name] = original
        values[name] = float(np.mean(drops))
    if progress:
        progress(1.0, "Done")
    return FeatureImportance(model, str(version), "permutation", values, "permutation")


def ranks(imp: FeatureImportance) -> dict[str, int]:
    return {name: i for i, (name, _) in enumerate(imp.ranked(), start=1)}


def compare(a: FeatureImportance, b: FeatureImportance) -> pd.DataFrame:
    """One row per feature: both importances, both ranks and the rank shift (a to b)."""
    ra, rb = ranks(a), ranks(b)
    rows = [
        {
            "feature": f,
            f"v{a.version}": a.importances.get(f, np.nan),
            f"v{b.version}": b.importances.get(f, np.nan),
            f"rank v{a.version}": ra.get(f),
            f"rank v{b.version}": rb.get(f),
            "rank shift": (ra[f] - rb[f]) if f in ra and f in rb else None,
        }
        for f in sorted(set(ra) | set(rb), key=lambda f: (rb.get(f, 10**9), f))
    ]
    return pd.DataFrame(rows)


def top_k_overlap(a: FeatureImportance, b: FeatureImportance, k: int) -> tuple[list[str], float]:
    """The features in both top-k lists and their Jaccard overlap."""
    ta, tb = set(a.top_k(k)), set(b.top_k(k))
    union = ta | tb
    return sorted(ta & tb), (len(ta & tb) / len(union) if union else 1.0)


def long_form(items: list[FeatureImportance], top: int) -> pd.DataFrame:
    """feature / version / importance rows for grouped bars (the top features of any version)."""
    keep: set[str] = set()
    for imp in items:
        keep.update(imp.top_k(top))
    rows = [
        {"feature": f, "version": f"v{imp.version}", "importance": imp.importances.get(f, 0.0)}
        for imp in items
        for f in keep
    ]
    return pd.DataFrame(rows, columns=["feature", "version", "importance"])


def drift_by_importance(result: DriftResult, imp: FeatureImportance, k: int) -> pd.DataFrame:
    """Every compared feature with its importance rank and drift; `important` marks the top k."""
    r = ranks(imp)
    rows = [
        {
            "feature": c.column,
            "importance": imp.importances.get(c.column),
            "rank": r.get(c.column),
            "important": r.get(c.column, 10**9) <= k,
            "drifted": c.drifted,
            "method": c.method,
            "drift score": c.score,
        }
        for c in result.columns
        if c.column in imp.importances
    ]
    frame = pd.DataFrame(rows)
    return frame.sort_values("rank", kind="stable") if not frame.empty else frame


def drifted_important(result: DriftResult, imp: FeatureImportance, k: int) -> list[str]:
    """Which of the k most important features drifted (in importance order)."""
    drifted = set(result.drifted_column_names)
    return [f for f in imp.top_k(k) if f in drifted]
