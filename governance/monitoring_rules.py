"""Monitoring over time: the policy's thresholds, when a streak of batches counts, the gate.

Standard library only (the records themselves are in governance.monitoring_records). The policy
names thresholds per model glob, under `models`:

    models:
      "credit-*":
        monitoring:
          max_drift_share: 0.3                 # the share of drifted columns may not exceed this
          metrics:                             # quality bounds (need labels and predictions)
            accuracy: {min: 0.85}
            rmse: {max: 40}
          consecutive: 2                       # batches in a row that must cross (default 1)

A model's thresholds are those of the FIRST pattern, in file order, that matches its name and
has a `monitoring` block. A check counts when the newest `consecutive` batches that measured it
(ordered by as-of time) all cross it; batches recorded before a person closed the last finding of
that check do not count again, so closing a finding starts a new streak.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from fnmatch import fnmatchcase
from typing import Any

from governance.monitoring_records import (  # re-exported: one import path for monitoring
    CLASSIFICATION_METRICS as CLASSIFICATION_METRICS,
    CLOSED as CLOSED,
    DRIFT_SHARE as DRIFT_SHARE,
    OPEN as OPEN,
    QUALITY_METRICS as QUALITY_METRICS,
    REGRESSION_METRICS as REGRESSION_METRICS,
    BatchFigures as BatchFigures,
    MonitoringBatch as MonitoringBatch,
    MonitoringFinding as MonitoringFinding,
    metrics_of as metrics_of,
)

MONITORING_KEYS = frozenset({"max_drift_share", "metrics", "consecutive"})
GATE_KEYS = frozenset({"min_batches", "within_thresholds", "only_when_current_holds"})
MAX_CONSECUTIVE = 1000


@dataclass(frozen=True)
class Bound:
    """One check: the drift share or a quality metric, with its minimum and/or maximum."""

    check: str
    min: float | None = None
    max: float | None = None

    def crossed(self, value: float) -> bool:
        return (self.min is not None and value < self.min) or (
            self.max is not None and value > self.max
        )

    def describe(self) -> str:
        parts = []
        if self.min is not None:
            parts.append(f"{self.check} >= {self.min:g}")
        if self.max is not None:
            parts.append(f"{self.check} <= {self.max:g}")
        return " and ".join(parts)


@dataclass(frozen=True)
class MonitoringThresholds:
    """The resolved `monitoring` block of one model glob."""

    pattern: str
    bounds: tuple[Bound, ...]
    consecutive: int = 1

    def bound(self, check: str) -> Bound | None:
        return next((b for b in self.bounds if b.check == check), None)

    def as_dict(self) -> dict[str, Any]:
        return {
            "pattern": self.pattern,
            "consecutive": self.consecutive,
            "bounds": {b.check: {"min": b.min, "max": b.max} for b in self.bounds},
        }


@dataclass(frozen=True)
class Alert:
    """A check that now counts: the newest `streak` batches that measured it all crossed it."""

    check: str
    limit: str
    value: float
    streak: int
    batch_id: str
    as_of: datetime


# --- the policy block -------------------------------------------------------------------------


def _finite(value: Any) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


def _pos_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def check_monitoring_block(spec: Any, where: str, fail: Callable[[str, str], None]) -> None:
    """Validate a `models.GLOB.monitoring` block; `fail(key_path, problem)` raises."""
    if not isinstance(spec, dict) or not all(isinstance(k, str) for k in spec):
        fail(where, "must be a mapping with text keys")
    if not spec:
        fail(where, "needs max_drift_share or metrics")
    for key, value in spec.items():
        at = f"{where}.{key}"
        if key not in MONITORING_KEYS:
            fail(at, f"is not a monitoring key (expected {', '.join(sorted(MONITORING_KEYS))})")
        elif key == "max_drift_share" and not (_finite(value) and 0 <= float(value) <= 1):
            fail(at, "must be a number between 0 and 1")
        elif key == "consecutive" and not (_pos_int(value) and value <= MAX_CONSECUTIVE):
            fail(at, f"must be a whole number from 1 to {MAX_CONSECUTIVE}")
        elif key == "metrics":
            _check_metrics(value, at, fail)


def _check_metrics(value: Any, where: str, fail: Callable[[str, str], None]) -> None:
    if not isinstance(value, dict) or not value:
        fail(where, "must be a mapping of metric -> {min: X} and/or {max: X}")
    for metric, bounds in value.items():
        at = f"{where}.{metric}"
        if metric not in QUALITY_METRICS:
            fail(at, f"is not a quality metric (expected one of {', '.join(QUALITY_METRICS)})")
        if not isinstance(bounds, dict) or not bounds:
            fail(at, "must be a mapping with min and/or max")
        for key, limit in bounds.items():
            if key not in ("min", "max"):
                fail(f"{at}.{key}", "is not allowed here (expected min, max)")
            if not _finite(limit):
                fail(f"{at}.{key}", "must be a finite number")


def check_gate_spec(spec: Any, where: str, fail: Callable[[str, str], None]) -> None:
    """Validate a `{monitoring: {...}}` promotion gate."""
    if spec is None:
        return
    if not isinstance(spec, dict):
        fail(where, "must be a mapping (min_batches, within_thresholds, only_when_current_holds)")
    for key, value in spec.items():
        at = f"{where}.{key}"
        if key not in GATE_KEYS:
            fail(at, f"is not allowed here (expected {', '.join(sorted(GATE_KEYS))})")
        elif key == "min_batches" and not (_pos_int(value) and value <= MAX_CONSECUTIVE):
            fail(at, f"must be a whole number from 1 to {MAX_CONSECUTIVE}")
        elif key != "min_batches" and not isinstance(value, bool):
            fail(at, "must be true or false")


def thresholds_for(document: Mapping[str, Any], model: str) -> MonitoringThresholds | None:
    """The monitoring thresholds of `model`: the first matching glob with a `monitoring` block."""
    for pattern, spec in (document.get("models") or {}).items():
        block = spec.get("monitoring") if isinstance(spec, Mapping) else None
        if block and fnmatchcase(model, pattern):
            bounds: list[Bound] = []
            if block.get("max_drift_share") is not None:
                bounds.append(Bound(DRIFT_SHARE, max=float(block["max_drift_share"])))
            for metric, limits in (block.get("metrics") or {}).items():
                low, high = limits.get("min"), limits.get("max")
                bounds.append(
                    Bound(
                        str(metric),
                        min=None if low is None else float(low),
                        max=None if high is None else float(high),
                    )
                )
            return MonitoringThresholds(
                str(pattern), tuple(bounds), int(block.get("consecutive", 1))
            )
    return None


# --- crossings and alerts ---------------------------------------------------------------------


def crossings(thresholds: MonitoringThresholds, figures: BatchFigures) -> dict[str, float]:
    """check -> value for every bound this batch crosses (unmeasured checks never cross)."""
    out = {}
    for bound in thresholds.bounds:
        value = figures.value(bound.check)
        if value is not None and bound.crossed(value):
            out[bound.check] = value
    return out


def within(thresholds: MonitoringThresholds | None, figures: BatchFigures) -> bool:
    """Whether one batch stays inside every bound (True when the model has no thresholds)."""
    return thresholds is None or not crossings(thresholds, figures)


def _ordered(batches: Iterable[BatchFigures]) -> list[BatchFigures]:
    return sorted(batches, key=lambda b: (b.as_of, b.recorded_at, b.batch_id))


def streak(bound: Bound, batches: Sequence[BatchFigures]) -> tuple[int, BatchFigures | None]:
    """How many of the newest batches that measured the check cross it in a row, and the newest."""
    count, newest = 0, None
    for figures in reversed(_ordered(batches)):
        value = figures.value(bound.check)
        if value is None:
            continue
        if not bound.crossed(value):
            break
        count += 1
        newest = newest or figures
    return count, newest


def due_alerts(
    thresholds: MonitoringThresholds,
    batches: Sequence[BatchFigures],
    open_checks: Iterable[str],
    closed_at: Mapping[str, datetime],
) -> list[Alert]:
    """The checks whose streak reaches `consecutive` and that have no open finding yet.

    Args:
        batches: The version's batches (any order).
        open_checks: Checks with an open finding (they are not raised again).
        closed_at: For each check, when a person last closed one of its findings; batches
            recorded until then do not count again.
    """
    busy = set(open_checks)
    alerts = []
    for bound in thresholds.bounds:
        if bound.check in busy:
            continue
        since = closed_at.get(bound.check)
        eligible = [b for b in batches if since is None or b.recorded_at > since]
        count, newest = streak(bound, eligible)
        if newest is not None and count >= thresholds.consecutive:
            value = newest.value(bound.check)
            assert value is not None
            alerts.append(
                Alert(bound.check, bound.describe(), value, count, newest.batch_id, newest.as_of)
            )
    return alerts


# --- the promotion gate -------------------------------------------------------------------------


def latest_view(
    thresholds: MonitoringThresholds | None, count: int, latest: BatchFigures | None
) -> dict[str, Any]:
    """One version's monitoring as pinned in promotion evidence (deterministic, JSON-safe)."""
    view: dict[str, Any] = {"batches": count, "latest": None, "within_thresholds": None}
    if latest is not None:
        view["latest"] = {
            "batch_id": latest.batch_id,
            "as_of": latest.as_of.isoformat(),
            "share_drifted": latest.share_drifted,
            "quality": dict(sorted(latest.quality.items())),
        }
        view["within_thresholds"] = within(thresholds, latest)
    return view


def describe_gate(spec: Mapping[str, Any]) -> str:
    n = int(spec.get("min_batches", 1))
    text = f"monitoring: candidate has >= {n} scored batch{'es' if n != 1 else ''}"
    if spec.get("within_thresholds"):
        text += ", its latest within the thresholds"
    if spec.get("only_when_current_holds"):
        text += " (while the current holder's latest batch holds)"
    return text


def evaluate_gate(
    spec: Mapping[str, Any], section: Mapping[str, Any] | None
) -> tuple[bool, bool, str]:
    """(passed, skipped, detail) of a monitoring gate on the evidence's `monitoring` section."""
    section = section or {}
    current = section.get("current")
    if spec.get("only_when_current_holds"):
        if not current or not current.get("batches"):
            return True, True, "skipped: the current holder has no scored batch"
        if current.get("within_thresholds") is False:
            return True, True, f"skipped: current v{current.get('version')} crosses its thresholds"
    candidate = section.get("candidate") or {}
    count, needed = int(candidate.get("batches") or 0), int(spec.get("min_batches", 1))
    if count < needed:
        return False, False, f"candidate has {count} scored batch(es); {needed} needed"
    if spec.get("within_thresholds") and candidate.get("within_thresholds") is False:
        return False, False, "the candidate's latest batch crosses the monitoring thresholds"
    return True, False, f"candidate has {count} scored batch(es)"
