"""Loading, validating and resolving the promotion policy."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from governance.domain import RequestKind
from governance.errors import PolicyError
from governance.policy import load_policy_file, parse_duration, parse_policy
from tests.unit.fakes import DEFAULT_POLICY

LAYERED = """
version: 1
defaults: {quorum: 1, expires_after: 3d, gates: [{metric: accuracy, min: 0.5}]}
targets:
  champion: {quorum: 2, approver_roles: [approver]}
models:
  "credit-special": {targets: {champion: {quorum: 4}}}
  "credit-*":
    separation_of_duties: false
    targets:
      champion: {quorum: 3, approver_roles: [approver, risk], gates: []}
break_glass: {roles: [admin, sre], follow_up_quorum: 2, follow_up_approver_roles: [risk]}
rollback: {quorum: 1}
"""


@pytest.mark.parametrize(
    ("model", "target", "kind", "quorum", "roles", "sod", "gates"),
    [
        ("iris", "challenger", RequestKind.NORMAL, 1, ("approver",), True, 1),
        ("iris", "champion", RequestKind.NORMAL, 2, ("approver",), True, 1),
        ("credit-a", "champion", RequestKind.NORMAL, 3, ("approver", "risk"), False, 0),
        ("credit-a", "challenger", RequestKind.NORMAL, 1, ("approver",), False, 1),
        ("credit-special", "champion", RequestKind.NORMAL, 4, ("approver",), True, 1),
        ("iris", "champion", RequestKind.ROLLBACK, 1, ("approver",), True, 0),
        ("iris", "champion", RequestKind.FOLLOW_UP, 2, ("risk",), True, 0),
    ],
)
def test_rules_resolve_defaults_then_target_then_first_matching_model_glob(
    model: str,
    target: str,
    kind: str,
    quorum: int,
    roles: tuple[str, ...],
    sod: bool,
    gates: int,
) -> None:
    rule = parse_policy(LAYERED).rule_for(model, target, kind)
    assert (rule.quorum, rule.approver_roles, rule.separation_of_duties) == (quorum, roles, sod)
    assert len(rule.gates) == gates
    assert rule.expires_after == timedelta(days=3)


@pytest.mark.parametrize(
    ("target", "quorum"), [("champion", 2), ("Production", 2), ("challenger", 1), ("Staging", 1)]
)
def test_the_shipped_policy_needs_two_approvers_for_champion_and_production(
    target: str, quorum: int
) -> None:
    rule = load_policy_file(DEFAULT_POLICY).rule_for("any-model", target)
    assert (rule.quorum, rule.approver_roles) == (quorum, ("approver",))
    assert rule.separation_of_duties
    assert rule.expires_after == timedelta(days=7)


def test_the_policy_hash_ignores_comments_and_layout() -> None:
    one = parse_policy("version: 1\ntargets: {champion: {quorum: 2}}\n")
    two = parse_policy("# hello\nversion: 1\ntargets:\n  champion:\n    quorum: 2  # two\n")
    assert one.hash == two.hash
    assert one.hash != parse_policy("version: 1\ntargets: {champion: {quorum: 3}}\n").hash


def test_the_policy_names_its_custom_roles() -> None:
    assert {"risk", "sre", "approver", "admin"} <= parse_policy(LAYERED).roles_named()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("targets: {}", "policy.yaml: version must be 1"),
        (
            "version: 1\ntargets: {champion: {quorum: 0}}",
            "targets.champion.quorum must be a positive integer",
        ),
        (
            "version: 1\ntargets: {champion: {quorum: two}}",
            "targets.champion.quorum must be a positive integer",
        ),
        (
            "version: 1\ntargets: {champion: {quorum: true}}",
            "targets.champion.quorum must be a positive integer",
        ),
        (
            "version: 1\ndefaults: {approver_roles: []}",
            "defaults.approver_roles must be a non-empty list",
        ),
        (
            "version: 1\ndefaults: {separation_of_duties: maybe}",
            "defaults.separation_of_duties must be true or false",
        ),
        (
            "version: 1\ndefaults: {expires_after: 7x}",
            "defaults.expires_after must be a positive duration",
        ),
        (
            "version: 1\ndefaults: {expires_after: 0d}",
            "defaults.expires_after must be a positive duration",
        ),
        ("version: 1\ndefaults: {qourum: 2}", "defaults.qourum is not a rule key"),
        ("version: 1\ntargets: [champion]", "targets must be a mapping"),
        (
            "version: 1\nmodels: {'credit-*': {targets: {champion: {gates: {}}}}}",
            "models.credit-*.targets.champion.gates must be a list",
        ),
        (
            "version: 1\ndefaults: {gates: [{metric: accuracy}]}",
            "defaults.gates[0] needs min, max or min_delta_vs_current",
        ),
        (
            "version: 1\ndefaults: {gates: [{metric: a, min: .nan}]}",
            "defaults.gates[0].min must be a finite number",
        ),
        (
            "version: 1\ndefaults: {gates: [{max_drift_share: 1.5}]}",
            "defaults.gates[0].max_drift_share must be a number between 0 and 1",
        ),
        (
            "version: 1\ndefaults: {gates: [{metric: a, min: 1, max_drift_share: 0.1}]}",
            "defaults.gates[0] must have exactly one of",
        ),
        (
            "version: 1\ndefaults: {gates: [{metric: a, min: 1, if_missing: maybe}]}",
            "defaults.gates[0].if_missing must be fail or skip",
        ),
        (
            "version: 1\ndefaults: {gates: [{require_evidence: []}]}",
            "defaults.gates[0].require_evidence must be a non-empty list",
        ),
        (
            "version: 1\nbreak_glass: {follow_up_quorum: -1}",
            "break_glass.follow_up_quorum must be a positive integer",
        ),
        ("version: 1\nbreak_glass: {who: [admin]}", "break_glass.who is not a break_glass key"),
        ("version: 1\nrollback: {gates: []}", "rollback.gates is not a rollback key"),
        ("version: 1\nextra: 1", "extra is not a policy key"),
        ("version: 1\nversion: 1", "not valid YAML at line 2: duplicate key 'version'"),
        ("version: [1", "policy.yaml: not valid YAML"),
        ("- 1\n- 2", "policy.yaml: the policy must be a YAML mapping"),
    ],
)
def test_an_invalid_policy_is_refused_with_the_file_and_key_named(text: str, message: str) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, "policy.yaml")
    assert str(caught.value).startswith("policy.yaml: ")
    assert message in str(caught.value)


def test_a_missing_policy_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match=r"nope\.yaml: cannot be read"):
        load_policy_file(tmp_path / "nope.yaml")


@pytest.mark.parametrize(
    ("text", "delta"),
    [
        ("7d", timedelta(days=7)),
        ("12h", timedelta(hours=12)),
        ("30m", timedelta(minutes=30)),
        ("2w", timedelta(weeks=2)),
        ("90s", timedelta(seconds=90)),
    ],
)
def test_durations_read_as_days_hours_minutes_weeks_or_seconds(text: str, delta: timedelta) -> None:
    assert parse_duration(text) == delta
