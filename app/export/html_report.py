"""report.html: one self-contained page (inline CSS, no scripts, no remote assets).

Every piece of user text goes through `html.escape`; the page is safe to open anywhere.
"""

from __future__ import annotations

from collections.abc import Iterable
from html import escape

from app.export import tables as s
from app.export.model import RequestRecord
from app.export.sections import SECTIONS, ReportContext

CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2rem;color:#1b1f24;
max-width:1200px}
h1{font-size:1.6rem}h2{border-bottom:2px solid #d0d7de;padding-bottom:.2rem;margin-top:2rem}
table{border-collapse:collapse;margin:.5rem 0 1rem;width:100%}
th,td{border:1px solid #d0d7de;padding:.25rem .45rem;text-align:left;vertical-align:top;
font-size:.85rem;overflow-wrap:anywhere}
th{background:#f6f8fa}table.kv th{width:16rem}
.ok{color:#1a7f37;font-weight:600}.bad{color:#cf222e;font-weight:600}
.req{border:1px solid #d0d7de;border-radius:6px;padding:.2rem 1rem;margin:1rem 0}
"""


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _table(table: s.Table) -> str:
    headers, rows = table
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = ["<tr>" + "".join(f"<td>{_e(v)}</td>" for v in row) + "</tr>" for row in rows]
    if not body:
        body.append(f'<tr><td colspan="{len(headers)}">None recorded.</td></tr>')
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _pairs(rows: Iterable[tuple[str, str]]) -> str:
    body = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows)
    return f'<table class="kv"><tbody>{body}</tbody></table>'


def _h2(number: str) -> str:
    return f'<h2 id="s{number}">{_e(number)}. {_e(dict(SECTIONS)[number])}</h2>'


def _request(req: RequestRecord) -> str:
    return "".join(
        [
            f'<div class="req"><h3>{_e(s.request_title(req))}</h3>',
            _pairs(s.request_facts(req)),
            "<h4>Gate results</h4>",
            _table(s.gates_table(req)),
            "<h4>Electronic signatures</h4>",
            _table(s.signatures_table(req)),
            "<h4>Executions</h4>",
            _table(s.executions_table(req)),
            "</div>",
        ]
    )


def render_html(ctx: ReportContext) -> str:
    """The whole report as one HTML document."""
    snap = ctx.snapshot
    ok = ctx.integrity.ok
    nav = "".join(f'<li><a href="#s{n}">{_e(t)}</a></li>' for n, t in SECTIONS)
    return "".join(
        [
            "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
            f"<title>Countersign audit report {_e(ctx.generated_at)}</title>",
            f"<style>{CSS}</style></head><body>",
            "<h1>Countersign audit report</h1>",
            "<p>Model promotion governance: requests, electronic signatures and the "
            "hash-chained audit log. The machine-readable files of this bundle carry every "
            "event and verify offline with the exporter's public key.</p>",
            f"<nav><ol>{nav}</ol></nav>",
            _h2("1"),
            _pairs(ctx.scope_rows()),
            _h2("2"),
            "<h3>Versions</h3>",
            _table(s.versions_table(snap)),
            "<h3>Alias and stage history (from the ledger)</h3>",
            _table(s.history_table(snap)),
            _h2("3"),
            "".join(_request(r) for r in snap.requests) or "<p>No requests in scope.</p>",
            _h2("4"),
            "<h3>Rollbacks and break-glass</h3>",
            _table(s.special_requests_table(snap)),
            "<h3>Out-of-band findings (reconcile)</h3>",
            _table(s.findings_table(ctx)),
            _h2("5"),
            _table(s.duties_table(ctx)),
            _h2("6"),
            "".join(f"<p>{_e(line)}</p>" for line in s.events_summary(ctx)),
            "<h3>Events by action</h3>",
            _table((("Action", "Events"), sorted(ctx.stats.by_action.items()))),
            _table(s.events_table(ctx)),
            _h2("7"),
            f'<p class="{"ok" if ok else "bad"}">Chain {"verified" if ok else "NOT verified"}.</p>',
            _pairs(ctx.integrity_rows()),
            _h2("8"),
            _table(s.mapping_table()),
            "</body></html>",
        ]
    )
