"""Parity: our quality metrics equal Evidently 0.7.23's ClassificationPreset and RegressionPreset.

Evidently runs once per scenario (module scope) on small frames with its own data definition
(BinaryClassification, MulticlassClassification or Regression); each test compares every metric
we report within 1e-9 relative, and the confusion matrix with Evidently's own `calculate_matrix`.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest

from app.reports.quality import infer_task, quality

pytestmark = pytest.mark.slow

N = 700


def _binary_labels(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, N)
    noisy = np.where(rng.random(N) < 0.78, y, 1 - y)
    frame = pd.DataFrame({"x": rng.normal(size=N), "target": y, "prediction": noisy})
    frame.loc[rng.random(N) < 0.03, "x"] = np.nan  # gaps in a feature do not drop rows
    return frame


def _binary_scores(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, N)
    score = np.clip(0.35 * y + 0.65 * rng.random(N), 0, 1).round(2)  # rounded: many ties
    return pd.DataFrame({"x": rng.normal(size=N), "target": y, "prediction": score})


def _multiclass(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    y = rng.choice(["cat", "dog", "owl", "yak"], N, p=[0.4, 0.3, 0.2, 0.1])
    guess = np.where(rng.random(N) < 0.7, y, rng.choice(["cat", "dog", "owl"], N))
    return pd.DataFrame({"x": rng.normal(size=N), "target": y, "prediction": guess})


def _regression(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    y = rng.normal(120, 40, N)
    y[:5] = 0.0  # zero labels: Evidently counts them as 100% error in MAPE
    y[5:9] = -15.0  # negative labels: divided by max(label, eps)
    p = y + rng.normal(0, 12, N)
    p[10] = np.nan  # a row without a prediction is dropped
    p[11] = np.inf
    return pd.DataFrame({"x": rng.normal(size=N), "target": y, "prediction": p})


SCENARIOS = {
    "binary_labels": (_binary_labels(1), "binary"),
    "binary_scores": (_binary_scores(2), "binary_scores"),
    "multiclass": (_multiclass(3), "multiclass"),
    "regression": (_regression(4), "regression"),
}


def _evidently(frame: pd.DataFrame, kind: str) -> dict[str, Any]:
    from evidently import (
        BinaryClassification,
        DataDefinition,
        Dataset,
        MulticlassClassification,
        Regression,
        Report,
    )
    from evidently.presets import ClassificationPreset, RegressionPreset

    if kind == "regression":
        definition = DataDefinition(
            regression=[Regression(target="target", prediction="prediction")],
            numerical_columns=["x"],
        )
        preset: Any = RegressionPreset()
    else:
        task: Any
        if kind == "binary":
            task = BinaryClassification(target="target", prediction_labels="prediction")
        elif kind == "binary_scores":
            task = BinaryClassification(target="target", prediction_probas="prediction")
        else:
            task = MulticlassClassification(target="target", prediction_labels="prediction")
        definition = DataDefinition(classification=[task], numerical_columns=["x"])
        preset = ClassificationPreset()
    dataset = Dataset.from_pandas(frame.copy(), data_definition=definition)
    snapshot = json.loads(Report([preset]).run(dataset, None).json())
    values = {}
    for metric in snapshot["metrics"]:
        name = metric["metric_name"].split("(")[0]
        values[name] = metric["value"]
    return values


@pytest.fixture(scope="module")
def theirs() -> dict[str, dict[str, Any]]:
    return {name: _evidently(frame, kind) for name, (frame, kind) in SCENARIOS.items()}


NAMES = {
    "accuracy": "Accuracy",
    "precision": "Precision",
    "recall": "Recall",
    "f1": "F1Score",
    "roc_auc": "RocAuc",
    "rmse": "RMSE",
    "r2": "R2Score",
}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_every_metric_matches_evidentlys_preset(
    scenario: str, theirs: dict[str, dict[str, Any]]
) -> None:
    frame, kind = SCENARIOS[scenario]
    ours = quality(frame, "target", "prediction")
    evidently = theirs[scenario]
    expected: dict[str, float] = {}
    for key, name in NAMES.items():
        if name in evidently:
            expected[key] = float(evidently[name])
    if "MAE" in evidently:
        expected["mae"] = float(evidently["MAE"]["mean"])
        expected["mape"] = float(evidently["MAPE"]["mean"])
    wanted = {
        "binary": {"accuracy", "precision", "recall", "f1"},
        "binary_scores": {"accuracy", "precision", "recall", "f1", "roc_auc"},
        "multiclass": {"accuracy", "precision", "recall", "f1"},
        "regression": {"mae", "rmse", "mape", "r2"},
    }[kind]
    assert set(expected) == wanted
    assert {k for k in ours if k in NAMES or k in ("mae", "mape")} == wanted
    for key, value in expected.items():
        assert ours[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key


@pytest.mark.parametrize("scenario", ["binary_labels", "binary_scores", "multiclass"])
def test_the_confusion_matrix_is_evidentlys(scenario: str) -> None:
    from evidently.legacy.calculations.classification_performance import calculate_matrix

    frame, _ = SCENARIOS[scenario]
    ours = quality(frame, "target", "prediction")
    predicted = frame["prediction"]
    if scenario == "binary_scores":
        predicted = (predicted >= 0.5).astype("int64")
    labels = sorted(set(frame["target"]) | set(predicted))
    theirs = calculate_matrix(frame["target"], predicted, labels)
    assert ours["labels"] == list(theirs.labels)
    assert ours["confusion_matrix"] == theirs.values


def test_the_task_is_inferred_from_the_label() -> None:
    assert infer_task(SCENARIOS["binary_labels"][0]["target"]) == "classification"
    assert infer_task(SCENARIOS["multiclass"][0]["target"]) == "classification"
    assert infer_task(SCENARIOS["regression"][0]["target"]) == "regression"
