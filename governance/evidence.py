"""The evidence snapshot of a promotion request, and the policy gates evaluated on it.

The snapshot holds only what is stable for a given (candidate, current holder, reports, policy):
no timestamps, no aliases or tags of the candidate (they move as other requests execute), so the
same situation always hashes to the same `evidence_hash`, and a change means stale evidence.

Schema 2 adds each version's MLflow 3 lineage (`model_id`, and `lineage`: the LoggedModel with its
params and metrics per data set, the source run's data sets), every current holder of a legacy
stage (`current_holders`: several versions may hold Production at once) and, for a stage, whether
executing archives them (`archive_existing_versions`, from the policy).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from governance.audit import canonical_json, sha256_hex
from governance.domain import TargetKind
from governance.monitoring_ports import MonitoringSource
from governance.monitoring_rules import (
    evaluate_gate as evaluate_monitoring_gate,
    latest_view,
    thresholds_for as monitoring_thresholds,
)
from governance.policy import Gate, Policy, Rule
from governance.ports import EvidenceSource, ModelRegistry, RegistryVersion

EVIDENCE_SCHEMA = 2


@dataclass(frozen=True)
class Evidence:
    """A captured snapshot: the dict, its canonical text and the SHA-256 of that text."""

    data: Mapping[str, Any]
    text: str
    hash: str

    @property
    def gates_passed(self) -> bool:
        return bool(self.data.get("gates_passed", True))

    @property
    def failed_gates(self) -> tuple[str, ...]:
        return tuple(g["gate"] for g in self.data.get("gates", ()) if not g["passed"])

    @property
    def current_version(self) -> str | None:
        current = self.data.get("current")
        return str(current["version"]) if current else None

    @property
    def run_author(self) -> str:
        return str(self.data["candidate"].get("run_author") or "")


def current_holders(registry: ModelRegistry, model: str, target: str, kind: str) -> tuple[str, ...]:
    """Every version holding the target now: one for an alias, any number for a legacy stage
    (MLflow lets several versions hold Production at once), lowest first."""
    if kind == TargetKind.ALIAS:
        holder = registry.alias_holder(model, target)
        return (holder,) if holder is not None else ()
    return tuple(sorted(registry.stage_holders(model, target), key=_version_order))


def newest(holders: tuple[str, ...]) -> str | None:
    """The newest of the holders: the one a candidate is compared with."""
    return max(holders, key=_version_order) if holders else None


def _version_order(version: str) -> tuple[int, str]:
    return (int(version) if version.isdigit() else -1, version)


def current_holder(registry: ModelRegistry, model: str, target: str, kind: str) -> str | None:
    """The version holding the target now (for a stage: the newest of its holders)."""
    return newest(current_holders(registry, model, target, kind))


def capture(
    registry: ModelRegistry,
    policy: Policy,
    rule: Rule,
    *,
    model: str,
    version: str,
    target: str,
    target_kind: str,
    source: EvidenceSource | None = None,
    monitoring: MonitoringSource | None = None,
) -> Evidence:
    """Read the registry (and the reports) and build the snapshot with its gate results.

    The snapshot carries a `monitoring` section (both versions' batch counts and latest batch)
    only when the rule has a monitoring gate: otherwise every new production batch would make
    pending requests' evidence stale.

    Raises:
        UnknownModel: The model or version does not exist.
        RegistryUnavailable: The registry cannot be reached.
    """
    candidate = registry.get_version(model, version)
    holders = current_holders(registry, model, target, target_kind)
    holder = newest(holders)
    current = registry.get_version(model, holder) if holder else None
    data: dict[str, Any] = {
        "schema": EVIDENCE_SCHEMA,
        "model": model,
        "version": version,
        "target": target,
        "target_kind": target_kind,
        "candidate": _describe(candidate),
        "current": _describe(current) if current else None,
        "current_holders": list(holders),
        "archive_existing_versions": (
            rule.archive_existing if target_kind == TargetKind.STAGE else None
        ),
        "metric_deltas": _metric_deltas(policy, candidate, current),
        "params_diff": _params_diff(candidate, current),
        "drift": _clean(source.drift_summary(model, version)) if source else None,
        "importance": _clean(source.importance_summary(model, version)) if source else None,
    }
    if any(gate.kind == "monitoring" for gate in rule.gates):
        data["monitoring"] = _monitoring(policy, monitoring, model, version, holder)
    results = [evaluate_gate(policy, gate, data) for gate in rule.gates]
    data["gates"] = results
    data["gates_passed"] = all(r["passed"] for r in results)
    text = canonical_json(data)
    return Evidence(data=data, text=text, hash=sha256_hex(text))


def evaluate_gate(policy: Policy, gate: Gate, data: Mapping[str, Any]) -> dict[str, Any]:
    """One gate on the snapshot: {gate, passed, skipped, detail}."""
    if gate.kind == "evidence":
        missing = [key for key in gate.require_evidence if _empty(_lookup(data, key))]
        if missing:
            return _result(gate, False, f"missing evidence: {', '.join(missing)}")
        return _result(gate, True, "all present")
    if gate.kind == "monitoring":
        passed, skipped, detail = evaluate_monitoring_gate(
            dict(gate.monitoring), data.get("monitoring")
        )
        return _result(gate, passed, detail, skipped=skipped)
    if gate.kind == "drift":
        share: Any = (data.get("drift") or {}).get("share_drifted")
        if not _finite(share):
            return _missing(gate, "no drift report")
        ok = float(share) <= float(gate.max_drift_share or 0.0)
        return _result(gate, ok, f"drift share {float(share):.4g}")
    return _metric_gate(policy, gate, data)


def _metric_gate(policy: Policy, gate: Gate, data: Mapping[str, Any]) -> dict[str, Any]:
    cand = data["candidate"]["metrics"].get(gate.metric)
    if not _finite(cand):
        return _missing(gate, f"candidate has no {gate.metric}")
    value = float(cand)
    problems = []
    if gate.min is not None and value < gate.min:
        problems.append(f"{gate.metric} {value:.6g} < {gate.min}")
    if gate.max is not None and value > gate.max:
        problems.append(f"{gate.metric} {value:.6g} > {gate.max}")
    detail = f"{gate.metric} {value:.6g}"
    if gate.min_delta_vs_current is not None:
        current = data.get("current")
        cur: Any = current["metrics"].get(gate.metric) if current else None
        if not _finite(cur):
            if gate.if_missing == "skip" and not problems:
                return _missing(gate, f"no current {gate.metric} to compare with")
            problems.append(f"no current {gate.metric} to compare with")
        else:
            lower = policy.is_lower_better(gate.metric, gate)
            gain = float(cur) - value if lower else value - float(cur)
            detail += f", improvement vs current {gain:.6g}"
            if gain < gate.min_delta_vs_current:
                problems.append(
                    f"{gate.metric} improvement {gain:.6g} < {gate.min_delta_vs_current}"
                )
    if problems:
        return _result(gate, False, "; ".join(problems))
    return _result(gate, True, detail)


def _monitoring(
    policy: Policy,
    source: MonitoringSource | None,
    model: str,
    version: str,
    holder: str | None,
) -> dict[str, Any]:
    """Both versions' monitoring as the monitoring gate reads it (see monitoring_rules)."""
    thresholds = monitoring_thresholds(policy.document, model)

    def view(v: str) -> dict[str, Any]:
        count, latest = source.summary(model, v) if source else (0, None)
        return {
            "version": v,
            **latest_view(thresholds, count, latest.figures() if latest else None),
        }

    return {
        "thresholds": thresholds.as_dict() if thresholds else None,
        "candidate": view(version),
        "current": view(holder) if holder else None,
    }


def _result(gate: Gate, passed: bool, detail: str, skipped: bool = False) -> dict[str, Any]:
    return {"gate": gate.describe(), "passed": passed, "skipped": skipped, "detail": detail}


def _missing(gate: Gate, detail: str) -> dict[str, Any]:
    if gate.if_missing == "skip":
        return _result(gate, True, f"skipped: {detail}", skipped=True)
    return _result(gate, False, detail)


def _describe(v: RegistryVersion) -> dict[str, Any]:
    return {
        "version": v.version,
        "run_id": v.run_id,
        "run_author": v.run_author,
        "metrics": {k: _num(x) for k, x in sorted(v.metrics.items())},
        "params": {k: str(x) for k, x in sorted(v.params.items())},
        "model_id": v.model_id,
        "lineage": _clean(v.lineage) if v.lineage else None,
    }


def _metric_deltas(
    policy: Policy, candidate: RegistryVersion, current: RegistryVersion | None
) -> dict[str, Any]:
    deltas: dict[str, Any] = {}
    for key in sorted(candidate.metrics):
        cand = _num(candidate.metrics[key])
        cur = _num(current.metrics.get(key)) if current else None
        delta = cand - cur if cand is not None and cur is not None else None
        deltas[key] = {
            "candidate": cand,
            "current": cur,
            "delta": delta,
            "lower_is_better": policy.is_lower_better(key),
        }
    return deltas


def _params_diff(candidate: RegistryVersion, current: RegistryVersion | None) -> dict[str, Any]:
    if current is None:
        return {}
    keys = sorted(set(candidate.params) | set(current.params))
    return {
        k: {"candidate": candidate.params.get(k), "current": current.params.get(k)}
        for k in keys
        if candidate.params.get(k) != current.params.get(k)
    }


def _num(value: Any) -> float | None:
    # MLflow metrics may be NaN or infinite; canonical JSON refuses them, so they become null.
    return float(value) if _finite(value) else None


def _finite(value: Any) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


def _clean(value: Any) -> Any:
    """Make a report summary canonical-JSON safe (non-finite floats become null)."""
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _lookup(data: Mapping[str, Any], dotted: str) -> Any:
    node: Any = data
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _empty(value: Any) -> bool:
    return value is None or value == "" or (isinstance(value, (Mapping, list)) and not value)
