"""report.html: one self-contained page (inline CSS, no scripts, no remote assets).

Every piece of user text goes through `html.escape`; the page is safe to open anywhere.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape

from app.export.model import RequestRecord
from app.export.sections import REGULATORY_MAP, SECTIONS, ReportContext

CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2rem;color:#1b1f24;
max-width:1200px}
h1{font-size:1.6rem}h2{border-bottom:2px solid #d0d7de;padding-bottom:.2rem;margin-top:2rem}
table{border-collapse:collapse;margin:.5rem 0 1rem;width:100%}
th,td{border:1px solid #d0d7de;padding:.25rem .45rem;text-align:left;vertical-align:top;
font-size:.85rem}
th{background:#f6f8fa}code,.h{font-family:ui-monospace,monospace;font-size:.78rem;
word-break:break-all}
.ok{color:#1a7f37;font-weight:600}.bad{color:#cf222e;font-weight:600}
.req{border:1px solid #d0d7de;border-radius:6px;padding:.2rem 1rem;margin:1rem 0}
"""


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _table(
    headers: Sequence[str], rows: Iterable[Sequence[object]], mono: set[int] | None = None
) -> str:
    mono = mono or set()
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = "".join(
            f'<td class="h">{_e(v)}</td>' if i in mono else f"<td>{_e(v)}</td>"
            for i, v in enumerate(row)
        )
        body.append(f"<tr>{cells}</tr>")
    if not body:
        body.append(f'<tr><td colspan="{len(headers)}">None in scope.</td></tr>')
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _pairs(rows: Iterable[tuple[str, str]]) -> str:
    body = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows)
    return f"<table><tbody>{body}</tbody></table>"


def _h2(number: str) -> str:
    title = dict(SECTIONS)[number]
    return f'<h2 id="s{number}">{_e(number)}. {_e(title)}</h2>'


def _request(req: RequestRecord) -> str:
    parts = [
        f'<div class="req"><h3>Request {_e(req.request_id)}: {_e(req.model)} '
        f"version {_e(req.version)} to {_e(req.target_kind)} {_e(req.target)}</h3>"
    ]
    parts.append(
        _pairs(
            [
                ("Kind", req.kind),
                ("State", req.state),
                ("Requested by", f"{req.requester} at {req.created_at}"),
                ("Justification", req.justification),
                ("Source run author", req.run_author or "unknown"),
                ("Quorum", str(req.quorum)),
                ("Decision", f"{req.decision or 'none'} {req.decided_at}".strip()),
                ("Policy hash", req.policy_hash),
                ("Evidence hash", req.evidence_hash),
                ("Content hash", req.content_hash),
                ("Related request", req.related_request or "none"),
            ]
        )
    )
    parts.append("<h4>Gate results</h4>")
    parts.append(
        _table(
            ["Gate", "Result", "Detail"],
            [(g.name, "pass" if g.passed else "FAIL", g.detail) for g in req.gates],
        )
    )
    parts.append("<h4>Signatures</h4>")
    parts.append(
        _table(
            [
                "Printed name",
                "User",
                "Role",
                "Meaning",
                "Signed at (UTC)",
                "Re-authentication",
                "Comment",
                "Signed content hash",
            ],
            [
                (
                    s.printed_name,
                    s.signer,
                    s.role,
                    s.meaning,
                    s.signed_at,
                    s.reauth_method,
                    s.comment,
                    s.content_hash,
                )
                for s in req.signatures
            ],
            mono={7},
        )
    )
    parts.append("<h4>Executions</h4>")
    parts.append(
        _table(
            ["At (UTC)", "Outcome", "Actor", "Detail"],
            [(x.at, x.outcome, x.actor, x.detail) for x in req.executions],
        )
    )
    parts.append("</div>")
    return "".join(parts)


def render_html(ctx: ReportContext) -> str:
    """The whole report as one HTML document."""
    snap = ctx.snapshot
    stats = ctx.stats
    out = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width,initial-scale=1'>",
        f"<title>Countersign audit report {_e(ctx.generated_at)}</title>",
        f"<style>{CSS}</style></head><body>",
        "<h1>Countersign audit report</h1>",
        "<p>Model promotion governance: requests, electronic signatures and the hash-chained "
        "audit log. The machine-readable files of this bundle carry every event.</p>",
        "<nav><ol>"
        + "".join(f'<li><a href="#s{n}">{_e(t)}</a></li>' for n, t in SECTIONS)
        + "</ol></nav>",
        _h2("1"),
        _pairs(ctx.scope_rows()),
        _h2("2"),
        "<h3>Versions</h3>",
        _table(
            ["Model", "Version", "Source run", "Run author", "Aliases now", "Stage now"],
            [
                (v.model, v.version, v.run_id, v.run_author, ", ".join(v.aliases), v.stage)
                for v in snap.versions
            ],
        ),
        "<h3>Alias and stage history (from the ledger)</h3>",
        _table(
            ["At (UTC)", "Model", "Kind", "Target", "Version", "Previous", "Request", "Actor"],
            [
                (t.at, t.model, t.kind, t.target, t.version, t.previous, t.request_id, t.actor)
                for t in snap.target_history
            ],
        ),
        _h2("3"),
        "".join(_request(r) for r in snap.requests) or "<p>No requests in scope.</p>",
        _h2("4"),
        "<h3>Rollbacks and break-glass</h3>",
        _table(
            [
                "Request",
                "Kind",
                "Model",
                "Version",
                "Target",
                "State",
                "By",
                "Justification",
                "Related",
            ],
            [
                (
                    r.request_id,
                    r.kind,
                    r.model,
                    r.version,
                    r.target,
                    r.state,
                    r.requester,
                    r.justification,
                    r.related_request,
                )
                for r in snap.requests
                if r.kind in ("rollback", "break_glass", "follow_up")
            ],
        ),
        "<h3>Out-of-band findings (reconcile)</h3>",
        _table(
            ["At (UTC)", "Model", "Kind", "Target", "Ledger says", "Registry says", "Detail"],
            [
                (f.at, f.model, f.kind, f.target, f.expected, f.actual, f.detail)
                for f in snap.findings
            ],
        ),
        _h2("5"),
        _table(
            ["Request", "Requester", "Run author", "Approvers", "Result"],
            [
                (
                    d.request_id,
                    d.requester,
                    d.run_author or "unknown",
                    ", ".join(d.approvers),
                    "held" if d.held else "VIOLATED: " + "; ".join(d.conflicts),
                )
                for d in ctx.duties
            ],
        ),
        _h2("6"),
        f"<p>{stats.count} events exported (seq {stats.first_seq} to {stats.last_seq}, "
        f"{_e(stats.first_ts)} to {_e(stats.last_ts)}); {stats.in_scope} concern the scope.</p>",
        "<h3>Events by action</h3>",
        _table(["Action", "Events"], sorted(stats.by_action.items())),
    ]
    if stats.omitted > 0:
        out.append(
            f"<p>Showing the first {len(stats.head)} and last {len(stats.tail)} events in scope; "
            f"{stats.omitted} more are in events.csv and events.jsonl.</p>"
        )
    out.append(
        _table(
            ["Seq", "At (UTC)", "Actor", "Action", "Object", "Entry hash"],
            [
                (r.seq, r.ts, r.actor, r.action, f"{r.object_type} {r.object_id}", r.entry_hash)
                for r in ctx.event_rows
            ],
            mono={5},
        )
    )
    ok = ctx.integrity.ok
    out += [
        _h2("7"),
        f'<p class="{"ok" if ok else "bad"}">Chain {"verified" if ok else "NOT verified"}.</p>',
        _pairs(ctx.integrity_rows()),
        _h2("8"),
        _table(["Framework", "Provision", "Asks for", "Served by"], REGULATORY_MAP),
        "</body></html>",
    ]
    return "".join(out)
