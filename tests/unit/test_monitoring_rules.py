"""Monitoring thresholds in the policy, when a streak of batches counts, and the promotion gate."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from governance.errors import PolicyError
from governance.evidence import evaluate_gate
from governance.monitoring_rules import (
    DRIFT_SHARE,
    BatchFigures,
    Bound,
    due_alerts,
    evaluate_gate as evaluate_monitoring_gate,
    streak,
    thresholds_for,
    within,
)
from governance.policy import gate_from, parse_policy

T0 = datetime(2026, 11, 1, tzinfo=UTC)
POLICY = """
version: 1
models:
  "regulated-*":
    quorum: 3
  "credit-*":
    monitoring:
      max_drift_share: 0.3
      metrics: {accuracy: {min: 0.85}, rmse: {max: 40}}
      consecutive: 2
  "*":
    monitoring: {max_drift_share: 0.5}
"""


def figures(day: int, share: float, recorded: int | None = None, **quality: float) -> BatchFigures:
    at = T0 + timedelta(days=day)
    when = at if recorded is None else T0 + timedelta(days=recorded)
    return BatchFigures(f"b{day}", at, when, share, quality)


def test_the_first_matching_glob_with_a_monitoring_block_gives_the_thresholds() -> None:
    document = parse_policy(POLICY).document
    credit = thresholds_for(document, "credit-scoring")
    assert credit is not None
    assert credit.pattern == "credit-*"
    assert credit.consecutive == 2
    assert credit.bound(DRIFT_SHARE) == Bound(DRIFT_SHARE, max=0.3)
    assert credit.bound("accuracy") == Bound("accuracy", min=0.85)
    # "regulated-*" matches first but names no monitoring: the next glob with a block applies
    regulated = thresholds_for(document, "regulated-loans")
    assert regulated is not None
    assert regulated.pattern == "*"
    assert regulated.consecutive == 1
    assert thresholds_for(parse_policy("version: 1").document, "any") is None


def test_the_shipped_policy_alerts_on_generic_thresholds_and_leaves_promotions_alone() -> None:
    from app.settings import DEFAULT_POLICY

    policy = parse_policy(Path(DEFAULT_POLICY).read_text(encoding="utf-8"))
    for model in ("tumor-classifier", "regulated-loans", "anything"):
        found = thresholds_for(policy.document, model)
        assert found is not None
        assert (found.pattern, found.consecutive) == ("*", 3)
        assert found.bound(DRIFT_SHARE) == Bound(DRIFT_SHARE, max=0.5)
        assert found.bound("r2") == Bound("r2", min=0.0)
        assert found.bound("roc_auc") == Bound("roc_auc", min=0.5)
        assert found.bound("accuracy") is None  # what is good enough depends on the model
    # the block changes no promotion rule: the same policy without it resolves every rule alike
    document = dict(policy.document)
    document["models"] = {k: v for k, v in document["models"].items() if k != "*"}
    without = parse_policy(json.dumps(document))
    for model in ("tumor-classifier", "diabetes-progression", "regulated-loans"):
        for target in ("champion", "challenger", "Production", "Staging"):
            for kind in ("normal", "rollback", "follow_up"):
                rule = policy.rule_for(model, target, kind)
                assert rule == without.rule_for(model, target, kind), (model, target, kind)
                assert all(g.kind != "monitoring" for g in rule.gates)


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ("{}", "needs max_drift_share or metrics"),
        ("{max_drift_share: 1.5}", "max_drift_share must be a number between 0 and 1"),
        ("{max_drift_share: .nan}", "max_drift_share must be a number between 0 and 1"),
        ("{consecutive: 0, max_drift_share: 0.2}", "consecutive must be a whole number"),
        ("{consecutive: true, max_drift_share: 0.2}", "consecutive must be a whole number"),
        ("{metrics: {accuracy: {minimum: 0.9}}}", "accuracy.minimum is not allowed"),
        ("{metrics: {accuracy: {min: high}}}", "accuracy.min must be a finite number"),
        ("{metrics: {speed: {min: 1}}}", "speed is not a quality metric"),
        ("{metrics: {}}", "metrics must be a mapping"),
        ("{alert_after: 2}", "alert_after is not a monitoring key"),
        ("[0.3]", "must be a mapping"),
    ],
)
def test_a_bad_monitoring_block_is_refused_naming_the_key(block: str, message: str) -> None:
    text = f'version: 1\nmodels:\n  "m-*":\n    monitoring: {block}\n'
    with pytest.raises(PolicyError, match=r"models\.m-\*\.monitoring") as err:
        parse_policy(text, "p.yaml")
    assert message in str(err.value)


def test_monitoring_is_a_model_key_only_not_a_target_rule_key() -> None:
    with pytest.raises(PolicyError, match=r"targets\.champion\.monitoring is not a rule key"):
        parse_policy("version: 1\ntargets:\n  champion: {monitoring: {max_drift_share: 0.2}}\n")


def test_a_streak_counts_the_newest_batches_that_measured_the_check_in_as_of_order() -> None:
    bound = Bound("accuracy", min=0.9)
    batches = [
        figures(3, 0.1, accuracy=0.80),
        figures(1, 0.1, accuracy=0.95),  # older, in range: ends the streak going back
        figures(2, 0.1),  # no labels: neither crosses nor breaks the streak
        figures(4, 0.1, accuracy=0.70),
    ]
    count, newest = streak(bound, batches)
    assert count == 2
    assert newest is not None
    assert newest.batch_id == "b4"


def test_an_alert_needs_consecutive_crossings_and_is_not_raised_twice_while_open() -> None:
    thresholds = thresholds_for(parse_policy(POLICY).document, "credit-x")
    assert thresholds is not None
    one = [figures(1, 0.4, accuracy=0.95)]
    assert due_alerts(thresholds, one, (), {}) == []
    two = [*one, figures(2, 0.45, accuracy=0.80)]
    alerts = due_alerts(thresholds, two, (), {})
    assert [(a.check, a.streak, a.batch_id) for a in alerts] == [(DRIFT_SHARE, 2, "b2")]
    assert alerts[0].limit == "drift_share <= 0.3"
    assert due_alerts(thresholds, two, (DRIFT_SHARE,), {}) == []
    three = [*two, figures(3, 0.1, accuracy=0.70, rmse=50.0)]
    assert [a.check for a in due_alerts(thresholds, three, (DRIFT_SHARE,), {})] == ["accuracy"]


def test_closing_a_finding_starts_a_new_streak() -> None:
    thresholds = thresholds_for(parse_policy(POLICY).document, "credit-x")
    assert thresholds is not None
    history = [figures(d, 0.9, recorded=d) for d in (1, 2, 3)]
    closed = {DRIFT_SHARE: T0 + timedelta(days=2, hours=1)}
    assert due_alerts(thresholds, history, (), closed) == []  # only b3 is after the close
    history.append(figures(4, 0.9, recorded=4))
    assert [a.batch_id for a in due_alerts(thresholds, history, (), closed)] == ["b4"]


def test_a_batch_within_every_bound_holds_and_no_thresholds_always_hold() -> None:
    thresholds = thresholds_for(parse_policy(POLICY).document, "credit-x")
    assert within(thresholds, figures(1, 0.3, accuracy=0.85, rmse=40.0))
    assert not within(thresholds, figures(1, 0.31))
    assert within(None, figures(1, 1.0))


def section(candidate: int, current: dict | None, within_: bool | None = True) -> dict:
    return {
        "candidate": {"version": "3", "batches": candidate, "within_thresholds": within_},
        "current": current,
    }


HOLDS = {"version": "2", "batches": 4, "within_thresholds": True}
FAILS = {"version": "2", "batches": 4, "within_thresholds": False}


@pytest.mark.parametrize(
    ("spec", "data", "passed", "skipped"),
    [
        ({"only_when_current_holds": True}, section(0, HOLDS), False, False),
        ({"only_when_current_holds": True}, section(1, HOLDS), True, False),
        ({"only_when_current_holds": True}, section(0, FAILS), True, True),
        ({"only_when_current_holds": True}, section(0, None), True, True),
        ({"only_when_current_holds": True}, section(0, {**HOLDS, "batches": 0}), True, True),
        ({"min_batches": 3}, section(2, None), False, False),
        ({"min_batches": 3}, section(3, None), True, False),
        ({"within_thresholds": True}, section(5, None, within_=False), False, False),
        ({}, {}, False, False),
    ],
)
def test_the_monitoring_gate_refuses_a_candidate_without_batches_while_the_holder_holds(
    spec: dict, data: dict, passed: bool, skipped: bool
) -> None:
    assert evaluate_monitoring_gate(spec, data)[:2] == (passed, skipped)
    gate = gate_from({"monitoring": spec}, "g")
    policy = parse_policy("version: 1")
    result = evaluate_gate(policy, gate, {"monitoring": data})
    assert (result["passed"], result["skipped"]) == (passed, skipped)
    assert result["gate"].startswith("monitoring: candidate has >=")


@pytest.mark.parametrize(
    ("gate", "message"),
    [
        ("{monitoring: {min_batches: 0}}", "min_batches must be a whole number"),
        ("{monitoring: {only_when_current_holds: yes please}}", "must be true or false"),
        ("{monitoring: {latest: 1}}", "latest is not allowed here"),
        ("{monitoring: {}, max_drift_share: 0.2}", "must have exactly one of"),
    ],
)
def test_a_bad_monitoring_gate_is_refused(gate: str, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        parse_policy(f"version: 1\ntargets:\n  champion:\n    gates: [{gate}]\n")
