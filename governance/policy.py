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
          expires_after ("7d", "12h", "30m", "2w"), archive_existing_versions (bool; stages
          only: moving a version in archives every version holding the stage now; the older
          spelling archive_existing is accepted),
          gates (list; a later level REPLACES the whole list),
          admins_may_sign (bool, default false: a holder of the admin role may not sign)
          out_of_band ("flag" or "revert": what happens when MLflow shows a holder the ledger
          did not put there; default flag)
    GATE: {metric: M, min: X} | {metric: M, max: X} | {metric: M, min_delta_vs_current: D}
          (optional lower_is_better: bool, if_missing: fail|skip)
          | {max_drift_share: S, if_missing: fail|skip} | {require_evidence: [dotted.key, ...]}
          | {monitoring: {min_batches: N, within_thresholds: bool, only_when_current_holds: bool}}
    models[glob].monitoring: thresholds of production batches (governance.monitoring_rules)

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

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from fnmatch import fnmatchcase
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

from governance.audit import canonical_json, sha256_hex
from governance.domain import ADMIN, APPROVER, BUILTIN_LOWER_IS_BETTER, RequestKind
from governance.errors import PolicyError
from governance.monitoring_rules import describe_gate as describe_monitoring_gate
from governance.policy_schema import parse_duration, validate_document


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
    monitoring: tuple[tuple[str, Any], ...] = ()  # the monitoring gate's options, sorted

    def describe(self) -> str:
        if self.kind == "monitoring":
            return describe_monitoring_gate(dict(self.monitoring))
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
    # Administering and signing are separate duties: an admin can reset an approver's password
    # or grant roles, so by default an admin's own signature does not count.
    admins_may_sign: bool = False
    out_of_band: str = "flag"  # "revert": put the governed holder back at once


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

    @property
    def name(self) -> str:
        """The policy's file name, never the server path it was read from (for pages, reports
        and the audit log; the hash identifies the content)."""
        return policy_name(self.source)

    def rule_for(self, model: str, target: str, kind: str = RequestKind.NORMAL) -> Rule:
        """Resolve the rule for a request (see the module docstring for the order)."""
        merged: dict[str, Any] = {}
        merged.update(_spelled(self.document.get("defaults")))
        merged.update(_spelled((self.document.get("targets") or {}).get(target)))
        for pattern, spec in (self.document.get("models") or {}).items():
            if fnmatchcase(model, pattern):
                merged.update(_spelled({k: v for k, v in spec.items() if k != "targets"}))
                merged.update(_spelled((spec.get("targets") or {}).get(target)))
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
        # The same rule as the review pages (app.analysis.is_lower_better): the name or its last
        # `_`/`.`/`/`/`-` part is listed, so `eval_log_loss` reads like `log_loss` everywhere.
        name = metric.strip().lower()
        return name in self.lower_is_better or any(
            name.endswith(sep + known) for known in self.lower_is_better for sep in "_./-"
        )

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

    def signer_roles(self) -> frozenset[str]:
        """Every role the policy names as an approver role somewhere (a rule, a follow-up
        review, a rollback): holders of such a role may view and sign, per rule."""
        return self._signer_roles

    @cached_property
    def _signer_roles(self) -> frozenset[str]:
        # Every authorisation asks for these; the policy never changes once loaded.
        found: set[str] = set(self.follow_up_approver_roles or ())
        found.update(self.rollback.get("approver_roles") or ())
        specs: list[Mapping[str, Any]] = [self.document.get("defaults") or {}]
        specs.extend((self.document.get("targets") or {}).values())
        for spec in (self.document.get("models") or {}).values():
            specs.append(spec)
            specs.extend((spec.get("targets") or {}).values())
        for spec in specs:
            found.update(spec.get("approver_roles") or ())
        return frozenset(found)


def policy_name(source: str) -> str:
    """The last component of a policy source, whether written with / or \\ ("policy" if none)."""
    return source.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1] or "policy"


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
    validate_document(document, source)
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


def _spelled(spec: Mapping[str, Any] | None) -> dict[str, Any]:
    """The rule with `archive_existing` under MLflow's name, so later levels override it."""
    out = dict(spec or {})
    if "archive_existing" in out:
        out["archive_existing_versions"] = out.pop("archive_existing")
    return out


def _rule_from(spec: Mapping[str, Any]) -> Rule:
    base = Rule()
    return Rule(
        quorum=int(spec.get("quorum", base.quorum)),
        approver_roles=tuple(spec.get("approver_roles", base.approver_roles)),
        separation_of_duties=bool(spec.get("separation_of_duties", base.separation_of_duties)),
        expires_after=(
            parse_duration(spec["expires_after"]) if "expires_after" in spec else base.expires_after
        ),
        archive_existing=bool(spec.get("archive_existing_versions", base.archive_existing)),
        gates=tuple(gate_from(g, "gates") for g in spec.get("gates") or ()),
        admins_may_sign=bool(spec.get("admins_may_sign", base.admins_may_sign)),
        out_of_band=str(spec.get("out_of_band", base.out_of_band)),
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
    if "monitoring" in spec:
        options = tuple(sorted((spec["monitoring"] or {}).items()))
        return Gate(kind="monitoring", where=where, monitoring=options)

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
