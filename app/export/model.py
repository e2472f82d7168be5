"""What an export reads: a small input Protocol and the frozen records it returns.

The export pipeline depends only on `ExportSource`, never on the database, so the offline
verifier and the tests need no store. `app/export/store_source.py` adapts the governance facade;
`MemorySource` holds records in memory for tests and benchmarks.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from governance.audit import GENESIS_HASH, AuditRecord, format_ts


@dataclass(frozen=True)
class ExportScope:
    """What to export. `until` is exclusive; empty `models` and no `request_id` mean everything."""

    models: tuple[str, ...] = ()
    request_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    exporter: str = ""
    app_version: str = ""

    @property
    def since_ts(self) -> str | None:
        return format_ts(self.since) if self.since else None

    @property
    def until_ts(self) -> str | None:
        return format_ts(self.until) if self.until else None

    @property
    def filtered(self) -> bool:
        return bool(self.models) or self.request_id is not None

    def as_dict(self) -> dict[str, object]:
        return {
            "models": list(self.models),
            "request_id": self.request_id,
            "since": self.since_ts,
            "until": self.until_ts,
            "exporter": self.exporter,
            "app_version": self.app_version,
        }


@dataclass(frozen=True)
class GateResult:
    name: str
    passed: bool
    detail: str = ""


@dataclass(frozen=True)
class Signature:
    """The manifestation of one electronic signature (21 CFR 11.50)."""

    signer: str
    printed_name: str
    role: str
    decision: str  # approve | reject
    meaning: str  # the sentence the signature stands for
    signed_at: str  # UTC, audit timestamp form
    reauth_method: str  # e.g. "password"
    comment: str = ""
    content_hash: str = ""  # the request content the signature is bound to


@dataclass(frozen=True)
class Execution:
    at: str
    outcome: str  # executed | execution_failed | ...
    actor: str = ""
    detail: str = ""


@dataclass(frozen=True)
class RequestRecord:
    """One promotion, rollback or break-glass request with everything an auditor asks about."""

    request_id: str
    model: str
    version: str
    target: str
    state: str
    requester: str
    created_at: str
    kind: str = "normal"  # normal | rollback | break_glass | follow_up
    target_kind: str = "alias"
    justification: str = ""
    run_author: str = ""
    run_id: str = ""  # the version's source run, from the evidence snapshot
    quorum: int = 0
    policy_hash: str = ""
    evidence_hash: str = ""
    content_hash: str = ""
    gates: tuple[GateResult, ...] = ()
    signatures: tuple[Signature, ...] = ()
    decision: str = ""
    decided_at: str = ""
    executions: tuple[Execution, ...] = ()
    related_request: str = ""  # the follow-up of a break-glass, the request a rollback undoes


@dataclass(frozen=True)
class VersionRecord:
    model: str
    version: str
    run_id: str = ""
    run_author: str = ""
    aliases: tuple[str, ...] = ()
    stage: str = ""


@dataclass(frozen=True)
class TargetChange:
    """An alias or stage assignment the ledger executed."""

    at: str
    model: str
    kind: str  # alias | stage
    target: str
    version: str
    previous: str = ""
    request_id: str = ""
    actor: str = ""


@dataclass(frozen=True)
class Finding:
    """An out-of-band change found by reconcile (MLflow differs from the ledger)."""

    at: str
    model: str
    kind: str
    target: str
    expected: str
    actual: str
    detail: str = ""


@dataclass(frozen=True)
class PolicyRef:
    name: str
    sha256: str
    first_seen: str = ""


@dataclass(frozen=True)
class GovernanceSnapshot:
    """The structured part of an export, already narrowed to the scope."""

    versions: tuple[VersionRecord, ...] = ()
    target_history: tuple[TargetChange, ...] = ()
    requests: tuple[RequestRecord, ...] = ()
    findings: tuple[Finding, ...] = ()
    policies: tuple[PolicyRef, ...] = ()


class ExportSource(Protocol):
    """The governance store as the export pipeline sees it."""

    def seq_range(self, since: str | None, until: str | None) -> tuple[int, int] | None:
        """The first and last seq of the audit events with since <= ts < until, or None.

        Args:
            since: Inclusive lower bound in audit timestamp form, or None for the start.
            until: Exclusive upper bound in audit timestamp form, or None for the end.
        """
        ...

    def iter_events(self, from_seq: int, to_seq: int) -> Iterator[AuditRecord]:
        """The audit events from_seq..to_seq (inclusive) in ascending seq, streamed."""
        ...

    def chain_head(self) -> tuple[int, str]:
        """The last seq and its entry hash; (0, GENESIS_HASH) for an empty log."""
        ...

    def snapshot(self, scope: ExportScope) -> GovernanceSnapshot:
        """Requests, inventory, history, findings and policies within the scope."""
        ...


@dataclass
class MemorySource:
    """An ExportSource over records held in memory (tests, benchmarks, small tools)."""

    records: Sequence[AuditRecord] = ()
    governance: GovernanceSnapshot = field(default_factory=GovernanceSnapshot)

    def seq_range(self, since: str | None, until: str | None) -> tuple[int, int] | None:
        seqs = [
            r.seq
            for r in self.records
            if (since is None or r.ts >= since) and (until is None or r.ts < until)
        ]
        return (min(seqs), max(seqs)) if seqs else None

    def iter_events(self, from_seq: int, to_seq: int) -> Iterator[AuditRecord]:
        return (r for r in self.records if from_seq <= r.seq <= to_seq)

    def chain_head(self) -> tuple[int, str]:
        if not self.records:
            return 0, GENESIS_HASH
        last = self.records[-1]
        return last.seq, last.entry_hash

    def snapshot(self, scope: ExportScope) -> GovernanceSnapshot:
        return narrow(self.governance, scope)


def _in(model: str, request_id: str, scope: ExportScope) -> bool:
    if scope.models and model not in scope.models:
        return False
    return scope.request_id is None or request_id == scope.request_id


def narrow(snap: GovernanceSnapshot, scope: ExportScope) -> GovernanceSnapshot:
    """Keep what concerns the scope's models and request (the period bounds the event log)."""
    if not scope.filtered:
        return snap
    requests = tuple(r for r in snap.requests if _in(r.model, r.request_id, scope))
    models = set(scope.models) if scope.models else {r.model for r in requests}
    return GovernanceSnapshot(
        versions=tuple(v for v in snap.versions if v.model in models),
        target_history=tuple(t for t in snap.target_history if t.model in models),
        requests=requests,
        findings=tuple(f for f in snap.findings if f.model in models),
        policies=snap.policies,
    )


def utc_now() -> datetime:
    return datetime.now(UTC)
