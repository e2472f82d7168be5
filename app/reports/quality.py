"""Model quality on labelled data: Evidently 0.7.23's ClassificationPreset and RegressionPreset
numbers, computed with numpy from one confusion matrix (or one error vector).

Mirrors Evidently step for step so the values agree to rounding
(tests/integration/test_quality_parity.py): rows whose label or prediction is missing or
infinite are dropped; binary tasks (two labels, one of them 1) report precision, recall and F1
of the label 1, other tasks their macro averages over the union of labels; a float prediction
next to an integer label is a score (the probability of 1): the predicted label is
`score >= 0.5` and ROC AUC is reported. MAPE is Evidently's (in percent, a label of zero
counts as 100%).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from app.errors import InvalidInput
from app.reports.columns import INTEGER_CARDINALITY_LIMIT

CLASSIFICATION, REGRESSION = "classification", "regression"
TASKS = (CLASSIFICATION, REGRESSION)
MAX_CLASSES = 100  # a confusion matrix is classes x classes: bounded
SCORE_THRESHOLD = 0.5
_EPS = float(np.finfo(np.float64).eps)


def infer_task(label: pd.Series) -> str:
    """Classification for text, booleans, categories and numbers with few distinct values."""
    if pd.api.types.is_bool_dtype(label) or not pd.api.types.is_numeric_dtype(label):
        return CLASSIFICATION
    values = label.to_numpy(np.float64, na_value=np.nan)
    values = values[np.isfinite(values)]
    few = np.unique(values).size <= INTEGER_CARDINALITY_LIMIT
    return CLASSIFICATION if few and bool(np.all(values == np.round(values))) else REGRESSION


def _clean(frame: pd.DataFrame, label: str, prediction: str) -> pd.DataFrame:
    missing = [c for c in (label, prediction) if c not in frame.columns]
    if missing:
        raise InvalidInput(f"the data has no column {', '.join(repr(c) for c in missing)}")
    if label == prediction:
        raise InvalidInput("the label and the prediction must be two different columns")
    pair = frame[[label, prediction]].replace([np.inf, -np.inf], np.nan).dropna()
    if pair.empty:
        raise InvalidInput(f"no row has both a label ({label}) and a prediction ({prediction})")
    return pair


def quality(
    frame: pd.DataFrame, label: str, prediction: str, task: str | None = None
) -> dict[str, Any]:
    """The quality metrics of one labelled, predicted data set.

    Args:
        frame: The data with the label and prediction columns.
        label: The column of true values.
        prediction: The column of predicted labels, scores (probability of 1) or values.
        task: "classification" or "regression"; inferred from the label when None.

    Returns:
        `task`, `rows` (rows used) and the metrics: accuracy, precision, recall, f1, roc_auc
        (scores only), labels and confusion_matrix (rows: true, columns: predicted); or mae,
        rmse, mape, r2.

    Raises:
        InvalidInput: A missing column, no usable row, too many classes, non-numeric values for
            a regression, or scores outside [0, 1].
    """
    pair = _clean(frame, label, prediction)
    task = task or infer_task(pair[label])
    if task not in TASKS:
        raise InvalidInput(f"unknown task {task!r}; use classification or regression")
    if task == REGRESSION:
        return {"task": task, "rows": len(pair), **regression(pair[label], pair[prediction])}
    return {"task": task, "rows": len(pair), **classification(pair[label], pair[prediction])}


def regression(label: pd.Series, prediction: pd.Series) -> dict[str, float]:
    """MAE, RMSE, MAPE (percent) and R2 as Evidently's RegressionPreset reports them."""
    for name, series in (("label", label), ("prediction", prediction)):
        if pd.api.types.is_bool_dtype(series) or not pd.api.types.is_numeric_dtype(series):
            raise InvalidInput(f"a regression needs numbers: the {name} column is {series.dtype}")
    y = label.to_numpy(np.float64)
    p = prediction.to_numpy(np.float64)
    error = p - y
    abs_error = np.abs(error)
    near_zero = ~(np.abs(y) > _EPS)
    abs_pct = abs_error / np.maximum(y, _EPS)  # Evidently divides by max(label, eps), not |label|
    abs_pct[near_zero] = 1.0
    ss_res = float(np.sum(error**2))
    ss_tot = float(np.sum((y - np.mean(y)) ** 2))
    # scikit-learn's r2_score with force_finite: a constant label scores 1 if hit, else 0
    r2 = (1.0 if ss_res == 0 else 0.0) if ss_tot == 0 else 1.0 - ss_res / ss_tot
    return {
        "mae": float(np.mean(abs_error)),
        "rmse": float(np.sqrt(np.mean(error**2))),
        "mape": float(100.0 * np.mean(abs_pct)),
        "r2": float(r2),
    }


def _is_score(label: pd.Series, prediction: pd.Series) -> bool:
    return pd.api.types.is_integer_dtype(label) and pd.api.types.is_float_dtype(prediction)


def _python(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def classification(label: pd.Series, prediction: pd.Series) -> dict[str, Any]:
    """Accuracy, precision, recall, F1, ROC AUC (scores) and the confusion matrix."""
    scores = None
    if _is_score(label, prediction):
        scores = prediction.to_numpy(np.float64)
        if scores.min() < 0 or scores.max() > 1:
            raise InvalidInput(
                "the prediction column holds numbers outside [0, 1] next to an integer label: "
                "give predicted labels, or scores as the probability of 1"
            )
        predicted = (scores >= SCORE_THRESHOLD).astype(np.int64)
        y = label.to_numpy()
    else:
        y, predicted = label.to_numpy(), prediction.to_numpy()
    try:
        labels = np.union1d(y, predicted)
    except TypeError as exc:
        raise InvalidInput("the label and prediction columns mix kinds of values") from exc
    if labels.size > MAX_CLASSES:
        raise InvalidInput(
            f"the label and prediction hold {labels.size} distinct values; classification "
            f"quality supports up to {MAX_CLASSES} classes (numeric labels: use the "
            "regression task)"
        )
    k = labels.size
    codes = np.searchsorted(labels, y) * k + np.searchsorted(labels, predicted)
    matrix = np.bincount(codes, minlength=k * k).reshape(k, k)
    diag, true_n, pred_n = np.diag(matrix), matrix.sum(axis=1), matrix.sum(axis=0)
    out: dict[str, Any] = {"accuracy": float(diag.sum() / matrix.sum())}
    positive = [i for i, v in enumerate(labels.tolist()) if v == 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(pred_n > 0, diag / pred_n, 0.0)
        recall = np.where(true_n > 0, diag / true_n, 0.0)
        f1 = np.where(true_n + pred_n > 0, 2 * diag / (true_n + pred_n), 0.0)
    if k == 2 and positive:
        i = positive[0]
        out.update(precision=float(precision[i]), recall=float(recall[i]), f1=float(f1[i]))
    else:
        out.update(
            precision=float(precision.mean()), recall=float(recall.mean()), f1=float(f1.mean())
        )
    if scores is not None:
        auc = roc_auc(y == 1, scores)
        if auc is not None:
            out["roc_auc"] = auc
    out["labels"] = [_python(v) for v in labels.tolist()]
    out["confusion_matrix"] = matrix.tolist()
    return out


def roc_auc(positive: np.ndarray, scores: np.ndarray) -> float | None:
    """Area under the ROC curve: the Mann-Whitney statistic with average ranks for ties (the
    trapezoids scikit-learn sums); None when only one class is present."""
    n_pos = int(np.count_nonzero(positive))
    n_neg = positive.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    from scipy import stats  # here: the Overview builds this package and needs no scipy

    ranks = stats.rankdata(scores)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
