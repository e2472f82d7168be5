"""Policy gates evaluated on the evidence snapshot, and the snapshot itself."""

from __future__ import annotations

from typing import Any

import pytest

from governance.evidence import capture, evaluate_gate
from governance.policy import gate_from, parse_policy
from tests.unit.fakes import make_world

POLICY = parse_policy("version: 1\nlower_is_better: [rmse]")


def _data(candidate: dict[str, float], current: dict[str, float] | None = None) -> dict[str, Any]:
    return {
        "candidate": {"run_id": "r", "metrics": candidate},
        "current": {"metrics": current} if current is not None else None,
        "drift": None,
    }


@pytest.mark.parametrize(
    ("gate", "candidate", "current", "passed", "skipped"),
    [
        ({"metric": "accuracy", "min": 0.9}, {"accuracy": 0.95}, None, True, False),
        ({"metric": "accuracy", "min": 0.9}, {"accuracy": 0.85}, None, False, False),
        ({"metric": "rmse", "max": 10}, {"rmse": 9}, None, True, False),
        ({"metric": "rmse", "max": 10}, {"rmse": 11}, None, False, False),
        (
            {"metric": "accuracy", "min_delta_vs_current": 0.0},
            {"accuracy": 0.9},
            {"accuracy": 0.8},
            True,
            False,
        ),
        (
            {"metric": "accuracy", "min_delta_vs_current": 0.0},
            {"accuracy": 0.7},
            {"accuracy": 0.8},
            False,
            False,
        ),
        (
            {"metric": "accuracy", "min_delta_vs_current": -0.2},
            {"accuracy": 0.7},
            {"accuracy": 0.8},
            True,
            False,
        ),
        # lower is better: a smaller rmse is an improvement
        ({"metric": "rmse", "min_delta_vs_current": 1.0}, {"rmse": 5}, {"rmse": 7}, True, False),
        ({"metric": "rmse", "min_delta_vs_current": 1.0}, {"rmse": 7}, {"rmse": 5}, False, False),
        # the gate's own direction wins over the policy list
        (
            {"metric": "rmse", "min_delta_vs_current": 1.0, "lower_is_better": False},
            {"rmse": 7},
            {"rmse": 5},
            True,
            False,
        ),
        ({"metric": "accuracy", "min": 0.5}, {}, None, False, False),
        ({"metric": "accuracy", "min": 0.5, "if_missing": "skip"}, {}, None, True, True),
        (
            {"metric": "accuracy", "min_delta_vs_current": 0.0},
            {"accuracy": 0.9},
            None,
            False,
            False,
        ),
        (
            {"metric": "accuracy", "min_delta_vs_current": 0.0, "if_missing": "skip"},
            {"accuracy": 0.9},
            None,
            True,
            True,
        ),
        (
            {"metric": "accuracy", "min": 0.95, "min_delta_vs_current": 0.0, "if_missing": "skip"},
            {"accuracy": 0.9},
            None,
            False,
            False,
        ),
    ],
)
def test_a_metric_gate_compares_absolute_and_relative_to_the_current_holder(
    gate: dict[str, Any],
    candidate: dict[str, float],
    current: dict[str, float] | None,
    passed: bool,
    skipped: bool,
) -> None:
    result = evaluate_gate(POLICY, gate_from(gate, "g"), _data(candidate, current))
    assert (result["passed"], result["skipped"]) == (passed, skipped), result


@pytest.mark.parametrize(
    ("drift", "if_missing", "passed"),
    [
        ({"share_drifted": 0.2}, "fail", True),
        ({"share_drifted": 0.3}, "fail", True),
        ({"share_drifted": 0.31}, "fail", False),
        (None, "fail", False),
        (None, "skip", True),
    ],
)
def test_the_drift_gate_caps_the_share_of_drifted_columns(
    drift: dict[str, float] | None, if_missing: str, passed: bool
) -> None:
    data = {**_data({}), "drift": drift}
    gate = gate_from({"max_drift_share": 0.3, "if_missing": if_missing}, "g")
    assert evaluate_gate(POLICY, gate, data)["passed"] is passed


@pytest.mark.parametrize(
    ("keys", "passed"),
    [
        (["candidate.run_id"], True),
        (["candidate.metrics"], True),
        (["candidate.metrics", "drift"], False),
        (["importance"], False),
    ],
)
def test_the_evidence_gate_requires_keys_to_be_present_and_not_empty(
    keys: list[str], passed: bool
) -> None:
    gate = gate_from({"require_evidence": keys}, "g")
    assert evaluate_gate(POLICY, gate, _data({"a": 1.0}))["passed"] is passed


def test_the_snapshot_compares_candidate_with_the_current_holder_and_is_stable() -> None:
    world = make_world()
    world.evidence.drift[("iris", "2")] = {"share_drifted": 0.1, "drifted_columns": ["x"]}
    rule = world.ctx.policy.rule_for("iris", "champion")

    def snap() -> Any:
        return capture(
            world.registry,
            world.ctx.policy,
            rule,
            model="iris",
            version="2",
            target="champion",
            target_kind="alias",
            source=world.evidence,
        )

    first, second = snap(), snap()
    assert first.hash == second.hash
    assert first.data["current"]["version"] == "1"
    assert first.data["metric_deltas"]["accuracy"]["current"] == 0.90
    assert first.data["params_diff"] == {"depth": {"candidate": "5", "current": "3"}}
    assert first.data["drift"]["share_drifted"] == 0.1
    assert first.gates_passed
    world.evidence.drift[("iris", "2")] = {"share_drifted": 0.2}
    assert snap().hash != first.hash


def test_non_finite_metrics_become_null_in_the_snapshot() -> None:
    world = make_world()
    world.registry.add("iris", "9", author="dan", metrics={"accuracy": float("nan")})
    rule = world.ctx.policy.rule_for("iris", "challenger")
    ev = capture(
        world.registry,
        world.ctx.policy,
        rule,
        model="iris",
        version="9",
        target="challenger",
        target_kind="alias",
    )
    assert ev.data["candidate"]["metrics"] == {"accuracy": None}
