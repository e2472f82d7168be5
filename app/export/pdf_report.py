"""report.pdf with fpdf2: the same content as report.html, paginated for print and signature.

DejaVu Sans is embedded when the system has it (any language prints); otherwise the core
Helvetica font is used and text outside Latin-1 is replaced, never dropped silently.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from fpdf import FPDF, FontFace

from app.export.model import RequestRecord
from app.export.sections import REGULATORY_MAP, SECTIONS, ReportContext

FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/dejavu"))
HEADING = FontFace(emphasis="BOLD", fill_color=(235, 238, 242))


class _Report(FPDF):
    def __init__(self, title: str) -> None:
        super().__init__(orientation="L", unit="mm", format="A4")
        self.title_line = title
        self.unicode = self._try_dejavu()
        self.set_auto_page_break(auto=True, margin=14)
        self.set_margins(12, 12, 12)
        self.set_title("Countersign audit report")
        self.set_creator("Countersign")

    def _try_dejavu(self) -> bool:
        for folder in FONT_DIRS:
            regular, bold = folder / "DejaVuSans.ttf", folder / "DejaVuSans-Bold.ttf"
            if regular.is_file() and bold.is_file():
                self.add_font("body", "", str(regular))
                self.add_font("body", "B", str(bold))
                return True
        return False

    def font(self, style: str = "", size: float = 8.5) -> None:
        self.set_font("body" if self.unicode else "Helvetica", style, size)

    def text_safe(self, value: object) -> str:
        text = str(value)
        return text if self.unicode else text.encode("latin-1", "replace").decode("latin-1")

    def header(self) -> None:
        self.font("", 7)
        self.set_text_color(90)
        self.cell(0, 5, self.text_safe(self.title_line), align="L")
        self.ln(6)
        self.set_text_color(0)

    def footer(self) -> None:
        self.set_y(-10)
        self.font("", 7)
        self.set_text_color(90)
        self.cell(0, 5, f"Page {self.page_no()} of {{nb}}", align="R")
        self.set_text_color(0)


def _h(pdf: _Report, text: str, size: float = 13) -> None:
    if pdf.get_y() > pdf.h - 40:
        pdf.add_page()
    pdf.ln(2)
    pdf.font("B", size)
    pdf.multi_cell(0, size * 0.5, pdf.text_safe(text), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(1)
    pdf.font()


def _section(pdf: _Report, number: str) -> None:
    _h(pdf, f"{number}. {dict(SECTIONS)[number]}")


def _para(pdf: _Report, text: str) -> None:
    pdf.font()
    pdf.multi_cell(0, 4.5, pdf.text_safe(text), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(1)


def _table(
    pdf: _Report,
    headers: Sequence[str],
    rows: Iterable[Sequence[object]],
    widths: Sequence[float] | None = None,
) -> None:
    rows = list(rows)
    if not rows:
        _para(pdf, "None in scope.")
        return
    pdf.font("", 7.5)
    with pdf.table(
        col_widths=tuple(widths) if widths else None,
        headings_style=HEADING,
        line_height=3.8,
        text_align="LEFT",
        repeat_headings=1,
    ) as table:
        table.row([pdf.text_safe(h) for h in headers])
        for row in rows:
            table.row([pdf.text_safe(v) for v in row])
    pdf.ln(2)
    pdf.font()


def _grid(
    pdf: _Report, headers: Sequence[str], rows: Iterable[Sequence[object]], widths: Sequence[float]
) -> None:
    """A one-line-per-row table for long logs: cells are clipped, never wrapped (fast)."""

    def line(cells: Sequence[object], style: str) -> None:
        pdf.font(style, 7)
        for value, width in zip(cells, widths, strict=True):
            text = pdf.text_safe(value)
            while text and pdf.get_string_width(text) > width - 1.5:
                text = text[: max(1, int(len(text) * 0.9))]
            pdf.cell(width, 3.8, text, border=1, fill=style == "B")
        pdf.ln(3.8)

    pdf.set_fill_color(235, 238, 242)
    line(headers, "B")
    for row in rows:
        if pdf.get_y() > pdf.h - 18:
            pdf.add_page()
            line(headers, "B")
        line(row, "")
    pdf.ln(2)
    pdf.font()


def _pairs(pdf: _Report, rows: Iterable[tuple[str, str]]) -> None:
    _table(pdf, ("Item", "Value"), rows, widths=(55, 218))


def _request(pdf: _Report, req: RequestRecord) -> None:
    _h(
        pdf,
        f"Request {req.request_id}: {req.model} version {req.version} to "
        f"{req.target_kind} {req.target}",
        10.5,
    )
    _pairs(
        pdf,
        [
            ("Kind / state", f"{req.kind} / {req.state}"),
            ("Requested by", f"{req.requester} at {req.created_at}"),
            ("Justification", req.justification),
            ("Source run author", req.run_author or "unknown"),
            ("Quorum", str(req.quorum)),
            ("Decision", f"{req.decision or 'none'} {req.decided_at}".strip()),
            ("Policy hash", req.policy_hash),
            ("Evidence hash", req.evidence_hash),
            ("Content hash", req.content_hash),
            ("Related request", req.related_request or "none"),
        ],
    )
    pdf.font("B", 8.5)
    pdf.cell(0, 5, "Gate results", new_x="LMARGIN", new_y="NEXT")
    _table(
        pdf,
        ("Gate", "Result", "Detail"),
        [(g.name, "pass" if g.passed else "FAIL", g.detail) for g in req.gates],
        widths=(70, 25, 178),
    )
    pdf.font("B", 8.5)
    pdf.cell(0, 5, "Electronic signatures", new_x="LMARGIN", new_y="NEXT")
    _table(
        pdf,
        (
            "Printed name",
            "User",
            "Role",
            "Meaning",
            "Signed at (UTC)",
            "Re-authentication",
            "Comment",
            "Signed content hash",
        ),
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
        widths=(34, 24, 20, 18, 36, 30, 55, 56),
    )
    pdf.font("B", 8.5)
    pdf.cell(0, 5, "Executions", new_x="LMARGIN", new_y="NEXT")
    _table(
        pdf,
        ("At (UTC)", "Outcome", "Actor", "Detail"),
        [(x.at, x.outcome, x.actor, x.detail) for x in req.executions],
        widths=(45, 40, 35, 153),
    )


def render_pdf(ctx: ReportContext) -> bytes:
    """The whole report as PDF bytes."""
    snap, stats = ctx.snapshot, ctx.stats
    pdf = _Report(f"Countersign audit report, generated {ctx.generated_at} UTC")
    pdf.alias_nb_pages()
    pdf.add_page()
    _h(pdf, "Countersign audit report", 18)
    _para(
        pdf,
        "Model promotion governance: requests, electronic signatures and the "
        "hash-chained audit log. The machine-readable files of this bundle (events.jsonl, "
        "events.csv, manifest.json) carry every event and verify offline with the public key.",
    )
    _section(pdf, "1")
    _pairs(pdf, ctx.scope_rows())
    _section(pdf, "2")
    _table(
        pdf,
        ("Model", "Version", "Source run", "Run author", "Aliases now", "Stage now"),
        [
            (v.model, v.version, v.run_id, v.run_author, ", ".join(v.aliases), v.stage)
            for v in snap.versions
        ],
    )
    _h(pdf, "Alias and stage history (from the ledger)", 10.5)
    _table(
        pdf,
        ("At (UTC)", "Model", "Kind", "Target", "Version", "Previous", "Request", "Actor"),
        [
            (t.at, t.model, t.kind, t.target, t.version, t.previous, t.request_id, t.actor)
            for t in snap.target_history
        ],
    )
    _section(pdf, "3")
    if not snap.requests:
        _para(pdf, "No requests in scope.")
    for req in snap.requests:
        _request(pdf, req)
    _section(pdf, "4")
    _h(pdf, "Rollbacks and break-glass", 10.5)
    _table(
        pdf,
        (
            "Request",
            "Kind",
            "Model",
            "Version",
            "Target",
            "State",
            "By",
            "Justification",
            "Related",
        ),
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
    )
    _h(pdf, "Out-of-band findings (reconcile)", 10.5)
    _table(
        pdf,
        ("At (UTC)", "Model", "Kind", "Target", "Ledger says", "Registry says", "Detail"),
        [(f.at, f.model, f.kind, f.target, f.expected, f.actual, f.detail) for f in snap.findings],
    )
    _section(pdf, "5")
    _table(
        pdf,
        ("Request", "Requester", "Run author", "Approvers", "Result"),
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
    )
    _section(pdf, "6")
    _para(
        pdf,
        f"{stats.count} events exported (seq {stats.first_seq} to {stats.last_seq}, "
        f"{stats.first_ts} to {stats.last_ts}); {stats.in_scope} concern the scope.",
    )
    _table(pdf, ("Action", "Events"), sorted(stats.by_action.items()), widths=(120, 40))
    if stats.omitted > 0:
        _para(
            pdf,
            f"Showing the first {len(stats.head)} and last {len(stats.tail)} events in "
            f"scope; {stats.omitted} more are in events.csv and events.jsonl.",
        )
    _grid(
        pdf,
        ("Seq", "At (UTC)", "Actor", "Action", "Object", "Entry hash"),
        [
            (r.seq, r.ts, r.actor, r.action, f"{r.object_type} {r.object_id}", r.entry_hash)
            for r in ctx.event_rows
        ],
        widths=(16, 38, 30, 45, 50, 94),
    )
    _section(pdf, "7")
    _para(pdf, "Chain verified." if ctx.integrity.ok else "Chain NOT verified.")
    _pairs(pdf, ctx.integrity_rows())
    _section(pdf, "8")
    _table(
        pdf,
        ("Framework", "Provision", "Asks for", "Served by"),
        REGULATORY_MAP,
        widths=(50, 60, 75, 88),
    )
    return bytes(pdf.output())
