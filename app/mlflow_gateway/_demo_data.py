"""Data and training for the demo store: scikit-learn's bundled data sets, nothing downloaded.

Each demo data set gives three frames with the same columns (features, `target`, and
`prediction` where a model scored them):

- reference: the training split (the drift reference),
- evaluation: the held-out split,
- current: a "production" batch drawn from the population with realistic drift: some features
  shifted and rescaled, and the mix of a categorical column (the class for the tumours, `sex`
  for the diabetes patients) changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

SEED = 20261129


@dataclass(frozen=True)
class DemoData:
    reference: pd.DataFrame
    evaluation: pd.DataFrame
    current: pd.DataFrame
    features: tuple[str, ...]


def _split(frame: pd.DataFrame, rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    order = rng.permutation(len(frame))
    cut = int(len(frame) * 0.7)
    return (
        frame.iloc[order[:cut]].reset_index(drop=True),
        frame.iloc[order[cut:]].reset_index(drop=True),
    )


def tumor_data() -> DemoData:
    """Breast cancer (Wisconsin), 30 numeric features; target 1 = benign, 0 = malignant."""
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame
    frame.columns = [c.replace(" ", "_") for c in frame.columns]
    rng = np.random.default_rng(SEED)
    reference, evaluation = _split(frame, rng)
    # A new scanner reads sizes ~12% larger and textures noisier, and a referral clinic sends
    # more malignant cases (about 55% instead of 37%).
    malignant = frame[frame["target"] == 0]
    benign = frame[frame["target"] == 1]
    current = pd.concat(
        [
            malignant.sample(220, replace=True, random_state=SEED),
            benign.sample(180, replace=True, random_state=SEED + 1),
        ],
        ignore_index=True,
    )
    for col in ("mean_radius", "mean_perimeter", "worst_radius", "worst_perimeter"):
        current[col] = current[col] * 1.12
    current["mean_area"] = current["mean_area"] * 1.25
    current["mean_texture"] = current["mean_texture"] + rng.normal(2.0, 2.5, len(current))
    current = current.sample(frac=1.0, random_state=SEED).reset_index(drop=True)
    features = tuple(c for c in frame.columns if c != "target")
    return DemoData(reference, evaluation, current, features)


def diabetes_data() -> DemoData:
    """Diabetes progression, 10 features in original units; `sex` is a category (F/M)."""
    from sklearn.datasets import load_diabetes

    frame = load_diabetes(scaled=False, as_frame=True).frame
    frame["sex"] = frame["sex"].map({1.0: "F", 2.0: "M"}).astype(str)
    rng = np.random.default_rng(SEED + 7)
    reference, evaluation = _split(frame, rng)
    # An older, heavier clinic population with more men (about 75%).
    men = frame[frame["sex"] == "M"].sample(225, replace=True, random_state=SEED)
    women = frame[frame["sex"] == "F"].sample(75, replace=True, random_state=SEED + 1)
    current = pd.concat([men, women], ignore_index=True)
    current["age"] = (current["age"] + rng.normal(8, 3, len(current))).round()
    current["bmi"] = (current["bmi"] * 1.1).round(1)
    current["bp"] = (current["bp"] + rng.normal(6, 4, len(current))).round()
    current = current.sample(frac=1.0, random_state=SEED).reset_index(drop=True)
    features = tuple(c for c in frame.columns if c != "target")
    return DemoData(reference, evaluation, current, features)


def encode(frame: pd.DataFrame, features: tuple[str, ...]) -> pd.DataFrame:
    """Model input: categories as 0/1 columns the tree models can use."""
    x = frame[list(features)].copy()
    if "sex" in x:
        x["sex"] = (x["sex"] == "M").astype("float64")
    return x.astype("float64")


def _log_loss(y: np.ndarray, proba: np.ndarray) -> float:
    p = np.clip(proba[:, 1], 1e-15, 1 - 1e-15)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def train_classifier(data: DemoData, params: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """Gradient boosting with a per-iteration history on both splits."""
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.metrics import accuracy_score, f1_score, log_loss, roc_auc_score

    x_tr, y_tr = encode(data.reference, data.features), data.reference["target"]
    x_ev, y_ev = encode(data.evaluation, data.features), data.evaluation["target"]
    model = GradientBoostingClassifier(random_state=SEED, **params).fit(x_tr, y_tr)
    y_tr_a, y_ev_a = y_tr.to_numpy(), y_ev.to_numpy()
    # numpy per step: sklearn's metric functions validate their input on every call, which
    # costs seconds over a few hundred boosting iterations.
    history = {
        "train_log_loss": [_log_loss(y_tr_a, p) for p in model.staged_predict_proba(x_tr)],
        "eval_log_loss": [_log_loss(y_ev_a, p) for p in model.staged_predict_proba(x_ev)],
        "eval_accuracy": [float(np.mean(p == y_ev_a)) for p in model.staged_predict(x_ev)],
    }
    proba = model.predict_proba(x_ev)[:, 1]
    pred = model.predict(x_ev)
    final = {
        "accuracy": accuracy_score(y_ev, pred),
        "f1": f1_score(y_ev, pred),
        "roc_auc": roc_auc_score(y_ev, proba),
        "log_loss": log_loss(y_ev, proba),
    }
    return model, {"final": final, "history": history}


def train_regressor(data: DemoData, params: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """Gradient boosting regression with per-iteration rmse on both splits."""
    from sklearn.ensemble import GradientBoostingRegressor
    from sklearn.metrics import mean_absolute_error, r2_score

    x_tr, y_tr = encode(data.reference, data.features), data.reference["target"]
    x_ev, y_ev = encode(data.evaluation, data.features), data.evaluation["target"]
    model = GradientBoostingRegressor(random_state=SEED, **params).fit(x_tr, y_tr)

    def rmse(y: Any, p: Any) -> float:
        return float(np.sqrt(np.mean((np.asarray(y) - np.asarray(p)) ** 2)))

    history = {
        "train_rmse": [rmse(y_tr, p) for p in model.staged_predict(x_tr)],
        "eval_rmse": [rmse(y_ev, p) for p in model.staged_predict(x_ev)],
    }
    pred = model.predict(x_ev)
    final = {
        "rmse": rmse(y_ev, pred),
        "mae": float(mean_absolute_error(y_ev, pred)),
        "r2": float(r2_score(y_ev, pred)),
    }
    return model, {"final": final, "history": history}


@dataclass(frozen=True)
class VersionSpec:
    author: str
    params: dict[str, Any]
    description: str
    days_ago: int
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelSpec:
    name: str
    experiment: str
    description: str
    task: str
    versions: tuple[VersionSpec, ...]
    aliases: dict[str, int] = field(default_factory=dict)  # alias -> version index (1-based)
    stages: dict[int, str] = field(default_factory=dict)  # version index -> stage
    # version index -> the daily production batches its run holds (`_demo_batches`): those of
    # the days it held the model's production target (champion, Production) or ran in shadow
    # (challenger, Staging) in the demo history, which scores each on its day.
    batches: dict[int, range] = field(default_factory=dict)


MODELS = (
    ModelSpec(
        "tumor-classifier",
        "tumor-classification",
        "Flags malignant tumours from digitised fine-needle aspirate images (Wisconsin data).",
        "binary-classification",
        (
            VersionSpec(
                "alice",
                {"n_estimators": 40, "learning_rate": 0.1, "max_depth": 2},
                "Baseline: shallow trees, few iterations.",
                21,
            ),
            VersionSpec(
                "bob",
                {"n_estimators": 80, "learning_rate": 0.08, "max_depth": 3},
                "Deeper trees and more iterations.",
                14,
                {"validated": "true"},
            ),
            VersionSpec(
                "carol",
                {"n_estimators": 120, "learning_rate": 0.05, "max_depth": 3, "subsample": 0.8},
                "Stochastic boosting with a lower learning rate.",
                3,
            ),
        ),
        aliases={"champion": 2, "challenger": 3},
        batches={1: range(1, 7), 2: range(7, 20), 3: range(18, 20)},
    ),
    ModelSpec(
        "diabetes-progression",
        "diabetes-progression",
        "Predicts disease progression one year after baseline (diabetes data).",
        "regression",
        (
            VersionSpec(
                "carol",
                {"n_estimators": 50, "learning_rate": 0.1, "max_depth": 2},
                "Baseline regressor.",
                30,
            ),
            VersionSpec(
                "alice",
                {"n_estimators": 100, "learning_rate": 0.05, "max_depth": 3},
                "More iterations, deeper trees.",
                18,
                {"validated": "true"},
            ),
            VersionSpec(
                "bob",
                {"n_estimators": 150, "learning_rate": 0.03, "max_depth": 2, "subsample": 0.8},
                "Stochastic boosting, shallow trees.",
                5,
            ),
        ),
        stages={1: "Archived", 2: "Production", 3: "Staging"},
        batches={1: range(1, 4), 2: range(4, 20), 3: range(17, 20)},
    ),
)
