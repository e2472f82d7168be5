"""The review pages and the policy read a metric's direction the same way, so the evidence a
request captures never calls "better" what the comparison screen calls "worse"."""

import pytest

from app.analysis import is_lower_better
from governance.policy import BUILTIN_LOWER_IS_BETTER, Policy

NAMES = [
    "rmse",
    "RMSE",
    "val_rmse",
    "eval_log_loss",
    "train_log_loss",
    "test/log_loss",
    "eval.mae",
    "accuracy",
    "eval_accuracy",
    "roc_auc",
    "r2",
    "glossiness",
]


@pytest.mark.parametrize("metric", NAMES)
def test_the_policy_and_the_pages_agree_on_a_metric_s_direction(metric: str) -> None:
    policy = Policy(source="test", document={}, hash="0" * 64)
    assert policy.is_lower_better(metric) == is_lower_better(metric, BUILTIN_LOWER_IS_BETTER)


@pytest.mark.parametrize(
    ("metric", "lower"),
    [("eval_log_loss", True), ("val_rmse", True), ("eval_accuracy", False), ("glossiness", False)],
)
def test_a_prefixed_metric_keeps_its_direction(metric: str, lower: bool) -> None:
    assert Policy(source="test", document={}, hash="0" * 64).is_lower_better(metric) is lower
