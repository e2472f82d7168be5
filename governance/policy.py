"""Policy as code: load, validate and resolve the promotion policy (a YAML file).

Schema (see governance/default_policy.yaml for a commented example):

    version: 1
    lower_is_better: [rmse, ...]     # optional; metrics where smaller is better
    defaults:   RULE                 # every key optional, built-in defaults below
    targets:    {TARGET: RULE}
    models:     {GLOB: RULE + {targets: {TARGET: RULE}}}
    break_glass: {roles: [admin], follow_up_quorum: 1, follow_up_approver_roles: [...]}
    rollback:   {quorum: N, approver_roles: [...]}   # optional; else the target's rule

    RULE: quorum (positive int), approver_roles (non-empty list), separation_of_duties (bool),
          expires_after ("7d", "12h", "30m", "2w"), archive_existing (bool; stages only),
          gates (list; a later level REPLACES the whole list)
    GATE: {metric: M, min: X} | {metric: M, max: X} | {metric: M, min_delta_vs_current: D}
          (optional lower_is_better: bool, if_missing: fail|skip)
          | {max_drift_share: S, if_missing: fail|skip} | {require_evidence: [dotted.key, ...]}

Resolution, later wins key by key: built-in defaults < `defaults` < `targets[target]` <
`models[glob]` (its own keys) < `models[glob].targets[target]`, where `glob` is the FIRST pattern
in file order that matches the model name (fnmatch, case-sensitive): list specific patterns first.
Rollback requests then take `rollback`'s keys; follow-up reviews of a break-glass change take
`break_glass.follow_up_*`. Neither has gates: a rollback restores a version that already passed
them and a follow-up reviews a change already made.

The policy hash is the SHA-256 of the canonical JSON of the parsed document, so comments and
formatting do not change it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import yaml

from governance.audit import canonical_json, sha256_hex
from governance.domain import ADMIN, APPROVER, RequestKind
from governance.errors import PolicyError

BUILTIN_LOWER_IS_BETTER = (
    "rmse",
    "mse",
    "mae",
    "mape",
    "loss",
    "log_loss",
    "logloss",
    "error",
    "max_error",
    "brier",
    "training_time",
)
RULE_KEYS = frozenset(
    {
        "quorum",
        "approver_roles",
        "separation_of_duties",
        "expires_after",
        "archive_existing",
        "gates",
    }
)
_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


@dataclass(frozen=True)
class Gate:
    """One check on the evidence. `kind` is metric, drift or evidence; `where` is its key path."""

    kind: str
    where: str
    metric: str = ""
    min: float | None = None
    max: float | None = None
    min_delta_vs_current: float | None = None
    lower_is_better: bool | None = None
    max_drift_share: float | None = None
    require_evidence: tuple[str, ...] = ()
    if_missing: str = "fail"

    def describe(self) -> str:
        if self.kind == "drift":
            return f"drift share <= {self.max_drift_share}"
        if self.kind == "evidence":
            return "evidence present: " + ", ".join(self.require_evidence)
        parts = []
        if self.min is not None:
            parts.append(f"{self.metric} >= {self.min}")
        if self.max is not None:
            parts.append(f"{self.metric} <= {self.max}")
        if self.min_delta_vs_current is not None:
            parts.append(f"{self.metric} improves on current by >= {self.min_delta_vs_current}")
        return " and ".join(parts)


@dataclass(frozen=True)
class Rule:
    """The resolved rule for one (model, target, request kind)."""

    quorum: int = 1
    approver_roles: tuple[str, ...] = (APPROVER,)
    separation_of_duties: bool = True
    expires_after: timedelta = timedelta(days=7)
    archive_existing: bool = True
    gates: tuple[Gate, ...] = ()


@dataclass(frozen=True)
class Policy:
    """A validated policy document with its hash and where it came from."""

    source: str
    document: Mapping[str, Any]
    hash: str
    lower_is_better: tuple[str, ...] = BUILTIN_LOWER_IS_BETTER
    break_glass_roles: tuple[str, ...] = (ADMIN,)
    follow_up_quorum: int = 1
    follow_up_approver_roles: tuple[str, ...] | None = None
    rollback: Mapping[str, Any] = field(default_factory=dict)

    def rule_for(self, model: str, target: str, kind: str = RequestKind.NORMAL) -> Rule:
        """Resolve the rule for a request (see the module docstring for the order)."""
        merged: dict[str, Any] = {}
        merged.update(self.document.get("defaults") or {})
        merged.update((self.document.get("targets") or {}).get(target) or {})
        for pattern, spec in (self.document.get("models") or {}).items():
            if fnmatchcase(model, pattern):
                merged.update({k: v for k, v in spec.items() if k != "targets"})
                merged.update((spec.get("targets") or {}).get(target) or {})
                break
        rule = _rule_from(merged)
        if kind == RequestKind.ROLLBACK:
            rule = replace(_rule_from({**merged, **self.rollback}), gates=())
        elif kind == RequestKind.FOLLOW_UP:
            roles = self.follow_up_approver_roles or rule.approver_roles
            rule = replace(rule, quorum=self.follow_up_quorum, approver_roles=roles, gates=())
        return rule

    def is_lower_better(self, metric: str, gate: Gate | None = None) -> bool:
        """Whether a smaller value of the metric is better (the gate's own setting wins)."""
        if gate is not None and gate.lower_is_better is not None:
            return gate.lower_is_better
        return metric.lower() in self.lower_is_better

    def roles_named(self) -> frozenset[str]:
        """Every role the policy mentions (per-model approver roles such as `risk`)."""
        found: set[str] = set(self.break_glass_roles)
        found.update(self.follow_up_approver_roles or ())
        found.update(self.rollback.get("approver_roles") or ())

        def visit(spec: Mapping[str, Any]) -> None:
            found.update(spec.get("approver_roles") or ())

        visit(self.document.get("defaults") or {})
        for spec in (self.document.get("targets") or {}).values():
            visit(spec)
        for spec in (self.document.get("models") or {}).values():
            visit(spec)
            for tspec in (spec.get("targets") or {}).values():
                visit(tspec)
        return frozenset(found)


def parse_duration(text: str) -> timedelta:
    """`7d`, `12h`, `30m`, `2w`, `90s` -> timedelta; raises ValueError otherwise."""
    match = _DURATION.match(str(text))
    if not match or int(match.group(1)) <= 0:
        raise ValueError(text)
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def load_policy_file(path: str | Path) -> Policy:
    """Read and validate a policy file.

    Raises:
        PolicyError: The file is missing, unreadable, not YAML or invalid; the message names the
            file and the key path.
    """
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(f"{source}: cannot be read ({exc.strerror or exc})") from exc
    return parse_policy(text, source)


def parse_policy(text: str, source: str = "policy.yaml") -> Policy:
    """Validate policy YAML text; `source` names it in error messages.

    Raises:
        PolicyError: Invalid YAML or schema, e.g. `policy.yaml: targets.champion.quorum must be a
            positive integer`.
    """
    try:
        document = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise PolicyError(f"{source}: not valid YAML{line}: {problem}") from exc
    return policy_from_document(document, source)


def policy_from_document(document: Any, source: str = "policy.yaml") -> Policy:
    """Validate an already parsed document (see `parse_policy`)."""
    _validate(document, source)
    bg = document.get("break_glass") or {}
    return Policy(
        source=source,
        document=document,
        hash=sha256_hex(canonical_json(document)),
        lower_is_better=tuple(
            str(m).lower() for m in document.get("lower_is_better", BUILTIN_LOWER_IS_BETTER)
        ),
        break_glass_roles=tuple(bg.get("roles", (ADMIN,))),
        follow_up_quorum=int(bg.get("follow_up_quorum", 1)),
        follow_up_approver_roles=(
            tuple(bg["follow_up_approver_roles"]) if "follow_up_approver_roles" in bg else None
        ),
        rollback=dict(document.get("rollback") or {}),
    )


def _rule_from(spec: Mapping[str, Any]) -> Rule:
    base = Rule()
    return Rule(
        quorum=int(spec.get("quorum", base.quorum)),
        approver_roles=tuple(spec.get("approver_roles", base.approver_roles)),
        separation_of_duties=bool(spec.get("separation_of_duties", base.separation_of_duties)),
        expires_after=(
            parse_duration(spec["expires_after"]) if "expires_after" in spec else base.expires_after
        ),
        archive_existing=bool(spec.get("archive_existing", base.archive_existing)),
        gates=tuple(gate_from(g, "gates") for g in spec.get("gates") or ()),
    )


def gate_from(spec: Mapping[str, Any], where: str) -> Gate:
    """Build a Gate from an already validated mapping."""
    if "max_drift_share" in spec:
        return Gate(
            kind="drift",
            where=where,
            max_drift_share=float(spec["max_drift_share"]),
            if_missing=str(spec.get("if_missing", "fail")),
        )
    if "require_evidence" in spec:
        return Gate(kind="evidence", where=where, require_evidence=tuple(spec["require_evidence"]))

    def num(key: str) -> float | None:
        return float(spec[key]) if key in spec else None

    return Gate(
        kind="metric",
        where=where,
        metric=str(spec["metric"]),
        min=num("min"),
        max=num("max"),
        min_delta_vs_current=num("min_delta_vs_current"),
        lower_is_better=spec.get("lower_is_better"),
        if_missing=str(spec.get("if_missing", "fail")),
    )


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


def _validate(document: Any, source: str) -> None:
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
    for key, value in rule.items():
        at = f"{where}.{key}"
        if key == "targets" and allow_targets:
            for target, tspec in _mapping(value, at, fail).items():
                _check_rule(tspec, f"{at}.{target}", fail)
        elif key not in RULE_KEYS:
            fail(at, f"is not a rule key (expected one of {', '.join(sorted(RULE_KEYS))})")
        elif key == "quorum" and not _pos_int(value):
            fail(at, "must be a positive integer")
        elif key == "approver_roles" and not _names(value):
            fail(at, "must be a non-empty list of role names")
        elif key in ("separation_of_duties", "archive_existing") and not isinstance(value, bool):
            fail(at, "must be true or false")
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
    kinds = [k for k in ("metric", "max_drift_share", "require_evidence") if k in spec]
    if len(kinds) != 1:
        fail(where, "must have exactly one of metric, max_drift_share, require_evidence")
    allowed = {
        "metric": {"metric", "min", "max", "min_delta_vs_current", "lower_is_better", "if_missing"},
        "max_drift_share": {"max_drift_share", "if_missing"},
        "require_evidence": {"require_evidence"},
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
    if kinds[0] == "metric" and not ({"min", "max", "min_delta_vs_current"} & set(spec)):
        fail(where, "needs min, max or min_delta_vs_current")


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys (PyYAML silently keeps the last one)."""


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return dict(loader.construct_mapping(node, deep=True))


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,
)
