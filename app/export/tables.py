"""The rows of every table in the readable reports, shared by HTML and PDF."""

from __future__ import annotations

from collections.abc import Sequence

from app.export.model import GovernanceSnapshot, RequestRecord
from app.export.sections import REGULATORY_MAP, ReportContext

Table = tuple[Sequence[str], Sequence[Sequence[object]]]


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
