"""The policy file's schema: every check names the file and the key path of the problem.

Kept apart from governance.policy (which loads and resolves) so that both stay small. Standard
library only.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from governance.audit import canonical_json
from governance.errors import PolicyError
from governance.monitoring_rules import check_gate_spec, check_monitoring_block

RULE_KEYS = frozenset(
    {
        "quorum",
        "approver_roles",
        "separation_of_duties",
        "expires_after",
        "archive_existing",
        "archive_existing_versions",
        "gates",
        "admins_may_sign",
        "out_of_band",
    }
)
# Whether moving a version into a legacy stage archives the versions holding it now. MLflow's
# name for it is `archive_existing_versions`; `archive_existing` is the older spelling.
ARCHIVE_KEYS = ("archive_existing_versions", "archive_existing")
OUT_OF_BAND_MODES = ("flag", "revert")
_FLAGS = ("separation_of_duties", *ARCHIVE_KEYS, "admins_may_sign")
_DURATION = re.compile(r"\s*(\d+)\s*([smhdw])\s*")  # fullmatch, like every validator here
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str) -> timedelta:
    """`7d`, `12h`, `30m`, `2w`, `90s` -> timedelta; raises ValueError otherwise."""
    match = _DURATION.fullmatch(str(text))
    if not match or int(match.group(1)) <= 0:
        raise ValueError(text)
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


# --- validation: one message per problem, naming the file and the key path ---------------------


def _num(value: Any) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


def _pos_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _names(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(v, str) and v.strip() for v in value)
    )


def _mapping(value: Any, where: str, fail: Any) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        fail(where, "must be a mapping with text keys")
    return value  # type: ignore[no-any-return]


def validate_document(document: Any, source: str) -> None:
    """Raise PolicyError naming `source` and the key path of the first problem found."""

    def fail(where: str, problem: str) -> None:
        raise PolicyError(f"{source}: {where} {problem}".replace(": .", ": "))

    if not isinstance(document, dict):
        raise PolicyError(f"{source}: the policy must be a YAML mapping")
    allowed = {"version", "lower_is_better", "defaults", "targets", "models"}
    allowed |= {"break_glass", "rollback"}
    for key in document:
        if key not in allowed:
            fail(str(key), f"is not a policy key (expected one of {', '.join(sorted(allowed))})")
    if document.get("version") != 1 or isinstance(document.get("version"), bool):
        fail("version", "must be 1")
    if "lower_is_better" in document and not _names(document["lower_is_better"]):
        fail("lower_is_better", "must be a non-empty list of metric names")
    _check_rule(document.get("defaults"), "defaults", fail)
    for target, spec in _mapping(document.get("targets"), "targets", fail).items():
        _check_rule(spec, f"targets.{target}", fail)
    for pattern, spec in _mapping(document.get("models"), "models", fail).items():
        _check_rule(spec, f"models.{pattern}", fail, allow_targets=True)
    bg = _mapping(document.get("break_glass"), "break_glass", fail)
    for key, value in bg.items():
        where = f"break_glass.{key}"
        if key in ("roles", "follow_up_approver_roles"):
            if not _names(value):
                fail(where, "must be a non-empty list of role names")
        elif key == "follow_up_quorum":
            if not _pos_int(value):
                fail(where, "must be a positive integer")
        else:
            fail(where, "is not a break_glass key (roles, follow_up_quorum, ...approver_roles)")
    rollback = _mapping(document.get("rollback"), "rollback", fail)
    for key in rollback:
        if key not in ("quorum", "approver_roles"):
            fail(f"rollback.{key}", "is not a rollback key (quorum, approver_roles)")
    _check_rule(rollback, "rollback", fail)
    canonical_json(document)  # already guaranteed finite and JSON-shaped by the checks


def _check_rule(spec: Any, where: str, fail: Any, *, allow_targets: bool = False) -> None:
    rule = _mapping(spec, where, fail)
    if all(key in rule for key in ARCHIVE_KEYS):
        fail(f"{where}.archive_existing", "and archive_existing_versions say the same: keep one")
    for key, value in rule.items():
        at = f"{where}.{key}"
        if key == "targets" and allow_targets:
            for target, tspec in _mapping(value, at, fail).items():
                _check_rule(tspec, f"{at}.{target}", fail)
        elif key == "monitoring" and allow_targets:
            check_monitoring_block(value, at, fail)
        elif key not in RULE_KEYS:
            fail(at, f"is not a rule key (expected one of {', '.join(sorted(RULE_KEYS))})")
        elif key == "quorum" and not _pos_int(value):
            fail(at, "must be a positive integer")
        elif key == "approver_roles" and not _names(value):
            fail(at, "must be a non-empty list of role names")
        elif key in _FLAGS and not isinstance(value, bool):
            fail(at, "must be true or false")
        elif key == "out_of_band" and value not in OUT_OF_BAND_MODES:
            fail(at, "must be flag or revert")
        elif key == "expires_after":
            try:
                parse_duration(value)
            except ValueError:
                fail(at, "must be a positive duration such as 7d, 12h, 30m or 2w")
        elif key == "gates":
            if not isinstance(value, list):
                fail(at, "must be a list of gates")
            for i, gate in enumerate(value):
                _check_gate(gate, f"{at}[{i}]", fail)


def _check_gate(gate: Any, where: str, fail: Any) -> None:
    spec = _mapping(gate, where, fail)
    kinds = [
        k for k in ("metric", "max_drift_share", "require_evidence", "monitoring") if k in spec
    ]
    if len(kinds) != 1:
        fail(
            where, "must have exactly one of metric, max_drift_share, require_evidence, monitoring"
        )
    allowed = {
        "metric": {"metric", "min", "max", "min_delta_vs_current", "lower_is_better", "if_missing"},
        "max_drift_share": {"max_drift_share", "if_missing"},
        "require_evidence": {"require_evidence"},
        "monitoring": {"monitoring"},
    }[kinds[0]]
    for key, value in spec.items():
        at = f"{where}.{key}"
        if key not in allowed:
            fail(at, f"is not allowed here (expected {', '.join(sorted(allowed))})")
        if key in ("min", "max", "min_delta_vs_current") and not _num(value):
            fail(at, "must be a finite number")
        if key == "metric" and not (isinstance(value, str) and value.strip()):
            fail(at, "must be a metric name")
        if key == "lower_is_better" and not isinstance(value, bool):
            fail(at, "must be true or false")
        if key == "if_missing" and value not in ("fail", "skip"):
            fail(at, "must be fail or skip")
        if key == "max_drift_share" and not (_num(value) and 0 <= float(value) <= 1):
            fail(at, "must be a number between 0 and 1")
        if key == "require_evidence" and not _names(value):
            fail(at, "must be a non-empty list of evidence keys")
        if key == "monitoring":
            check_gate_spec(value, at, fail)
    if kinds[0] == "metric" and not ({"min", "max", "min_delta_vs_current"} & set(spec)):
        fail(where, "needs min, max or min_delta_vs_current")
