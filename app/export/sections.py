"""The content both readable reports share: section titles, the regulatory map, duties evidence.

HTML and PDF render the same `ReportContext`, so they cannot say different things.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.export.events import EventRow, EventStats
from app.export.model import ExportScope, GovernanceSnapshot, RequestRecord

SECTIONS = (
    ("1", "Scope"),
    ("2", "Model inventory and target history"),
    ("3", "Requests, evidence, gates and signatures"),
    ("4", "Rollbacks, break-glass and out-of-band findings"),
    ("5", "Separation of duties"),
    ("6", "Event log"),
    ("7", "Integrity"),
    ("8", "Regulatory mapping"),
)

# (framework, provision, what it asks for, sections of this report that serve it)
REGULATORY_MAP = (
    (
        "EU AI Act",
        "Art. 12 Record-keeping",
        "Automatic recording of events over the system's lifetime",
        "6 Event log; 7 Integrity; events.jsonl, events.csv",
    ),
    (
        "EU AI Act",
        "Art. 19 Automatically generated logs",
        "Providers keep the logs (at least six months)",
        "6 Event log; 7 Integrity; signed checkpoint",
    ),
    (
        "EU AI Act",
        "Annex IV Technical documentation",
        "Changes made to the system through its lifecycle",
        "2 Model inventory and target history; 3 Requests; 4 Rollbacks",
    ),
    (
        "SR 26-2 (successor of SR 11-7)",
        "Model inventory",
        "A complete inventory of models, versions and their use",
        "2 Model inventory and target history",
    ),
    (
        "SR 26-2 (successor of SR 11-7)",
        "Independent review, effective challenge",
        "Approval by reviewers independent of development",
        "3 Signatures; 5 Separation of duties; 4 Out-of-band findings",
    ),
    (
        "21 CFR Part 11",
        "11.10(e) Audit trails",
        "Secure, computer-generated, time-stamped audit trails",
        "6 Event log; 7 Integrity",
    ),
    (
        "21 CFR Part 11",
        "11.50 Signature manifestations",
        "Printed name, date and time, and meaning of each signature",
        "3 Requests (signatures table)",
    ),
    (
        "21 CFR Part 11",
        "11.200(a) Signature components",
        "Identification components entered again at signing",
        "3 Requests (re-authentication column)",
    ),
    (
        "ISO/IEC 42001",
        "A.6.2.8 AI system recording of event logs",
        "Event logs recorded and kept for the AI system",
        "6 Event log; 7 Integrity",
    ),
)


@dataclass(frozen=True)
class DutyCheck:
    """Separation-of-duties evidence for one request."""

    request_id: str
    requester: str
    run_author: str
    approvers: tuple[str, ...]
    conflicts: tuple[str, ...]

    @property
    def held(self) -> bool:
        return not self.conflicts

    @property
    def verdict(self) -> str:
        if self.conflicts:
            return "VIOLATED: " + "; ".join(self.conflicts)
        return "held" if self.approvers else "held (no approvals recorded)"


def duty_checks(requests: tuple[RequestRecord, ...]) -> tuple[DutyCheck, ...]:
    """Neither the requester nor the version's run author may appear among the approvers."""
    checks = []
    for req in requests:
        approvers = tuple(s.signer for s in req.signatures if s.decision == "approve")
        conflicts = []
        if req.requester in approvers:
            conflicts.append(f"requester {req.requester} approved")
        if req.run_author and req.run_author in approvers:
            conflicts.append(f"run author {req.run_author} approved")
        checks.append(
            DutyCheck(req.request_id, req.requester, req.run_author, approvers, tuple(conflicts))
        )
    return tuple(checks)


@dataclass(frozen=True)
class Integrity:
    """The integrity facts the report states and the manifest carries."""

    origin: str
    db_head_seq: int
    db_head_hash: str
    slice_ok: bool
    slice_reason: str
    prefix_ok: bool
    linked: bool
    checkpoint: dict[str, Any]
    checkpoint_signature: str
    public_key_b64: str

    @property
    def ok(self) -> bool:
        return self.slice_ok and self.prefix_ok and self.linked


@dataclass(frozen=True)
class ReportContext:
    scope: ExportScope
    generated_at: str
    snapshot: GovernanceSnapshot
    stats: EventStats
    integrity: Integrity

    @property
    def event_rows(self) -> tuple[EventRow, ...]:
        return (*self.stats.head, *self.stats.tail)

    @property
    def duties(self) -> tuple[DutyCheck, ...]:
        return duty_checks(self.snapshot.requests)

    def scope_rows(self) -> list[tuple[str, str]]:
        s = self.scope
        policies = ", ".join(f"{p.name} {p.sha256}" for p in self.snapshot.policies)
        return [
            ("Models", ", ".join(s.models) or "all models"),
            ("Request", s.request_id or "all requests"),
            ("Period (UTC)", f"{s.since_ts or 'start of log'} to {s.until_ts or 'export time'}"),
            ("Events exported", f"seq {self.stats.first_seq} to {self.stats.last_seq}"),
            ("Events in scope", f"{self.stats.in_scope} of {self.stats.count}"),
            ("Exported by", s.exporter or "unknown"),
            ("Generated at (UTC)", self.generated_at),
            ("Application version", s.app_version or "unknown"),
            ("Policy hashes", policies or "none recorded"),
        ]

    def integrity_rows(self) -> list[tuple[str, str]]:
        i = self.integrity
        result = "VERIFIED" if i.ok else f"FAILED: {i.slice_reason or 'see below'}"
        if self.integrity.slice_ok and not i.prefix_ok:
            result = "FAILED: the chain before the exported period does not verify"
        elif i.slice_ok and i.prefix_ok and not i.linked:
            result = "FAILED: the exported period does not link to the chain before it"
        cp = i.checkpoint
        return [
            ("Chain origin", i.origin),
            ("Database chain head", f"seq {i.db_head_seq}, {i.db_head_hash}"),
            ("Verification (genesis to last exported seq)", result),
            ("Checkpoint", f"seq {cp['last_seq']}, head {cp['head_hash']}"),
            ("Checkpoint signed at (UTC)", str(cp["signed_at"])),
            ("Signature", f"{cp['alg']}, key id {cp['key_id']}"),
            ("Public key (raw, base64)", i.public_key_b64),
            ("Checkpoint signature", i.checkpoint_signature),
        ]


Table = tuple[tuple[str, ...], list[tuple[object, ...]]]


def short_ts(ts: str) -> str:
    """An audit timestamp to the second for narrow table columns ("2026-11-02 09:03:01");
    the exact value stays in the facts tables and in the machine-readable files."""
    return ts[:19].replace("T", " ") if len(ts) >= 19 and ts[10] == "T" else ts


def request_title(req: RequestRecord) -> str:
    return (
        f"Request {req.request_id}: {req.model} version {req.version} to "
        f"{req.target_kind} {req.target}"
    )


def request_facts(req: RequestRecord) -> list[tuple[str, str]]:
    return [
        ("Kind / state", f"{req.kind} / {req.state}"),
        ("Requested by", f"{req.requester} at {req.created_at}"),
        ("Justification", req.justification),
        ("Source run author", req.run_author or "unknown"),
        ("Quorum", str(req.quorum) if req.quorum else "n/a (not decided by quorum)"),
        ("Decision", f"{req.decision or 'none'} {req.decided_at}".strip()),
        ("Policy hash", req.policy_hash),
        ("Evidence hash", req.evidence_hash),
        ("Content hash", req.content_hash),
        ("Related request", req.related_request or "none"),
    ]


def gates_table(req: RequestRecord) -> Table:
    rows = [(g.name, "pass" if g.passed else "FAIL", g.detail) for g in req.gates]
    return ("Gate", "Result", "Detail"), rows


def signatures_table(req: RequestRecord) -> Table:
    headers = (
        "Printed name",
        "User",
        "Role",
        "Decision",
        "Meaning",
        "Signed at (UTC)",
        "Re-authentication",
        "Comment",
        "Signed content hash",
    )
    rows = [
        (
            s.printed_name,
            s.signer,
            s.role,
            s.decision,
            s.meaning,
            short_ts(s.signed_at),
            s.reauth_method,
            s.comment,
            s.content_hash,
        )
        for s in req.signatures
    ]
    return headers, rows


def executions_table(req: RequestRecord) -> Table:
    rows = [(short_ts(x.at), x.outcome, x.actor, x.detail) for x in req.executions]
    return ("At (UTC)", "Outcome", "Actor", "Detail"), rows


def versions_table(snap: GovernanceSnapshot) -> Table:
    headers = ("Model", "Version", "Source run", "Run author", "Aliases now", "Stage now")
    rows = [
        (v.model, v.version, v.run_id, v.run_author, ", ".join(v.aliases), v.stage)
        for v in snap.versions
    ]
    return headers, rows


def history_table(snap: GovernanceSnapshot) -> Table:
    headers = ("At (UTC)", "Model", "Kind", "Target", "Version", "Previous", "Request", "Actor")
    rows = [
        (short_ts(t.at), t.model, t.kind, t.target, t.version, t.previous, t.request_id, t.actor)
        for t in snap.target_history
    ]
    return headers, rows


def special_requests_table(snap: GovernanceSnapshot) -> Table:
    headers = ("Request", "Kind", "Model", "Version", "Target", "State", "By", "Justification")
    rows = [
        (
            r.request_id,
            r.kind,
            r.model,
            r.version,
            r.target,
            r.state,
            r.requester,
            r.justification + (f" (related: {r.related_request})" if r.related_request else ""),
        )
        for r in snap.requests
        if r.kind in ("rollback", "break_glass", "follow_up")
    ]
    return headers, rows


def findings_table(ctx: ReportContext) -> Table:
    headers = ("At (UTC)", "Model", "Kind", "Target", "Ledger says", "Registry says", "Detail")
    findings = (*ctx.snapshot.findings, *ctx.stats.findings)
    rows = [
        (short_ts(f.at), f.model, f.kind, f.target, f.expected, f.actual, f.detail)
        for f in findings
    ]
    return headers, rows


def duties_table(ctx: ReportContext) -> Table:
    rows = [
        (
            d.request_id,
            d.requester,
            d.run_author or "unknown",
            ", ".join(d.approvers),
            d.verdict,
        )
        for d in ctx.duties
    ]
    return ("Request", "Requester", "Run author", "Approvers", "Result"), rows


def events_table(ctx: ReportContext) -> Table:
    rows = [
        (r.seq, short_ts(r.ts), r.actor, r.action, f"{r.object_type} {r.object_id}", r.entry_hash)
        for r in ctx.event_rows
    ]
    return ("Seq", "At (UTC)", "Actor", "Action", "Object", "Entry hash"), rows


def events_summary(ctx: ReportContext) -> list[str]:
    s = ctx.stats
    lines = [
        f"{s.count} events exported (seq {s.first_seq} to {s.last_seq}, {s.first_ts} to "
        f"{s.last_ts}); {s.in_scope} concern the scope."
    ]
    if s.omitted > 0:
        lines.append(
            f"Showing the first {len(s.head)} and last {len(s.tail)} events in scope; "
            f"{s.omitted} more are in events.csv and events.jsonl."
        )
    return lines


def mapping_table() -> Table:
    return ("Framework", "Provision", "Asks for", "Served by"), [tuple(r) for r in REGULATORY_MAP]
