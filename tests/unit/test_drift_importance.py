"""Feature importance sources, comparisons and the governance evidence summaries."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.tree import DecisionTreeRegressor

from app.entities import ColumnDrift, DriftResult, FeatureImportance
from app.errors import InvalidInput
from app.reports import importance as imp
from app.reports.summaries import drift_summary, importance_summary

RNG = np.random.default_rng(0)
X = pd.DataFrame({"a": RNG.normal(size=200), "b": RNG.normal(size=200), "c": RNG.normal(size=200)})
Y = 3 * X["a"] + 0.5 * X["b"] + RNG.normal(0, 0.1, 200)


def _imp(version: str, values: dict[str, float]) -> FeatureImportance:
    return FeatureImportance("m", version, "artifact", values, "impurity")


def _result(drifted: set[str]) -> DriftResult:
    cols = tuple(
        ColumnDrift(c, "num", "K-S p_value", 0.01 if c in drifted else 0.5, 0.05, c in drifted)
        for c in ("a", "b", "c")
    )
    share = len(drifted) / 3
    return DriftResult(share >= 0.5, share, len(drifted), cols, "0.7.23")


def test_the_logged_artifact_is_read_in_both_shapes() -> None:
    doc = {"method": "impurity", "features": [{"feature": "a", "importance": 0.7}]}
    assert imp.from_artifact(doc, "m", "2").importances == {"a": 0.7}
    assert imp.from_artifact({"a": 1, "b": 2}, "m", "2").top_k(1) == ("b",)
    with pytest.raises(InvalidInput, match="not readable"):
        imp.from_artifact({"features": [{"name": "a"}]}, "m", "2")


@pytest.mark.parametrize(
    ("estimator", "method"),
    [(DecisionTreeRegressor(random_state=0), "impurity"), (LinearRegression(), "|coefficient|")],
)
def test_model_native_importances_name_the_features(estimator, method: str) -> None:
    found = imp.from_estimator(estimator.fit(X, Y), "m", "1")
    assert found is not None
    assert found.method == method
    assert found.top_k(1) == ("a",)


def test_a_model_without_native_importances_gives_none() -> None:
    from sklearn.neighbors import KNeighborsRegressor

    assert imp.from_estimator(KNeighborsRegressor().fit(X, Y), "m", "1") is None


def test_permutation_importance_reports_progress_and_ranks_the_signal_first() -> None:
    seen: list[float] = []
    found = imp.permutation(
        LinearRegression().fit(X, Y),
        X.assign(target=Y),
        "target",
        "m",
        "1",
        progress=lambda done, _text: seen.append(done),
    )
    assert found.top_k(2) == ("a", "b")
    assert seen[0] == 0.0
    assert seen[-1] == 1.0


def test_permutation_needs_data_the_model_can_score() -> None:
    model = LogisticRegression().fit(X, Y > 0)
    with pytest.raises(InvalidInput, match="target column"):
        imp.permutation(model, X, "target", "m", "1")
    with pytest.raises(InvalidInput, match="cannot score"):
        imp.permutation(model, X.assign(a="x", target=1), "target", "m", "1")


def test_version_comparison_shows_rank_shifts_and_top_k_overlap() -> None:
    a = _imp("1", {"a": 0.5, "b": 0.3, "c": 0.2})
    b = _imp("2", {"a": 0.2, "b": 0.6, "c": 0.2})
    table = imp.compare(a, b).set_index("feature")
    assert table.loc["b", "rank shift"] == 1
    assert table.loc["a", "rank shift"] == -1
    assert imp.top_k_overlap(a, b, 1) == ([], 0.0)
    assert imp.top_k_overlap(a, b, 2) == (["a", "b"], 1.0)


def test_drift_by_importance_names_the_drifted_important_features() -> None:
    importance = _imp("2", {"a": 0.6, "b": 0.3, "c": 0.1})
    result = _result({"a", "c"})
    assert imp.drifted_important(result, importance, 2) == ["a"]
    frame = imp.drift_by_importance(result, importance, 2)
    assert frame["feature"].tolist() == ["a", "b", "c"]
    assert frame["important"].tolist() == [True, True, False]


def test_the_drift_summary_is_small_canonical_json_for_the_gate() -> None:
    summary = drift_summary(_result({"a", "c"}), _imp("2", {"a": 0.6, "b": 0.3, "c": 0.1}), 2)
    assert summary["share_drifted"] == pytest.approx(2 / 3)
    assert summary["drifted_columns"] == ["a", "c"]
    assert summary["drifted_important_features"] == ["a"]
    assert summary["importance_top_k"] == ["a", "b"]
    assert len(summary["report_sha256"]) == 64
    text = json.dumps(summary, sort_keys=True, allow_nan=False)
    assert json.loads(text) == summary
    assert drift_summary(_result({"a", "c"}))["report_sha256"] == summary["report_sha256"]


def test_the_importance_summary_tracks_shifts_against_the_previous_version() -> None:
    now = _imp("3", {"a": 0.2, "b": 0.7, "c": math.nan})
    before = _imp("2", {"a": 0.6, "b": 0.3, "c": 0.1})
    summary = importance_summary(now, before, top_k=2)
    assert summary["top"][0] == ["b", 0.7]
    assert summary["rank_shifts"] == {"b": 1, "a": -1}
    assert summary["top_k_overlap"] == 1.0
    json.dumps(summary, allow_nan=False)
