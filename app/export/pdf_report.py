"""report.pdf with fpdf2: the same content as report.html, paginated for print and signature.

DejaVu Sans is embedded when the system has it (any language prints); otherwise the core
Helvetica font is used and text outside Latin-1 is replaced, never dropped silently.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from fpdf import FPDF, FontFace

from app.export import tables as s
from app.export.model import RequestRecord
from app.export.sections import SECTIONS, ReportContext

FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/dejavu"))
# Control characters in user text would print as nothing; show that something was there.
CONTROL_CHARS = {c: "?" for c in (*range(0, 9), 11, 12, *range(14, 32), 127)}
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
        text = str(value).translate(CONTROL_CHARS)
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


def _table(pdf: _Report, data: s.Table, widths: Sequence[float] | None = None) -> None:
    headers, rows = data
    if not rows:
        _para(pdf, "None recorded.")
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


def _grid(pdf: _Report, data: s.Table, widths: Sequence[float]) -> None:
    """A one-line-per-row table for long logs: cells are clipped, never wrapped (fast)."""

    def line(cells: Sequence[object], style: str) -> None:
        pdf.font(style, 6.5)
        for value, width in zip(cells, widths, strict=True):
            text = pdf.text_safe(value)
            while text and pdf.get_string_width(text) > width - 1.5:
                text = text[: max(1, int(len(text) * 0.9))]
            pdf.cell(width, 3.8, text, border=1, fill=style == "B")
        pdf.ln(3.8)

    headers, rows = data
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
    _table(pdf, (("Item", "Value"), list(rows)), widths=(55, 218))


def _sub(pdf: _Report, text: str) -> None:
    pdf.font("B", 8.5)
    pdf.cell(0, 5, text, new_x="LMARGIN", new_y="NEXT")


def _request(pdf: _Report, req: RequestRecord) -> None:
    _h(pdf, s.request_title(req), 10.5)
    _pairs(pdf, s.request_facts(req))
    _sub(pdf, "Gate results")
    _table(pdf, s.gates_table(req), widths=(70, 25, 178))
    _sub(pdf, "Electronic signatures")
    _table(pdf, s.signatures_table(req), widths=(30, 22, 18, 16, 52, 31, 22, 40, 42))
    _sub(pdf, "Executions")
    _table(pdf, s.executions_table(req), widths=(32, 30, 35, 176))


def render_pdf(ctx: ReportContext) -> bytes:
    """The whole report as PDF bytes."""
    snap = ctx.snapshot
    pdf = _Report(f"Countersign audit report, generated {ctx.generated_at} UTC")
    pdf.alias_nb_pages()
    pdf.add_page()
    _h(pdf, "Countersign audit report", 18)
    _para(
        pdf,
        "Model promotion governance: requests, electronic signatures and the hash-chained "
        "audit log. The machine-readable files of this bundle (events.jsonl, events.csv, "
        "manifest.json) carry every event and verify offline with the exporter's public key.",
    )
    _section(pdf, "1")
    _pairs(pdf, ctx.scope_rows())
    _section(pdf, "2")
    _table(pdf, s.versions_table(snap))
    _h(pdf, "Alias and stage history (from the ledger)", 10.5)
    _table(pdf, s.history_table(snap), widths=(32, 45, 18, 35, 20, 20, 48, 55))
    _section(pdf, "3")
    if not snap.requests:
        _para(pdf, "No requests in scope.")
    for req in snap.requests:
        _request(pdf, req)
    _section(pdf, "4")
    _h(pdf, "Rollbacks and break-glass", 10.5)
    _table(pdf, s.special_requests_table(snap), widths=(30, 22, 35, 16, 30, 22, 25, 93))
    _h(pdf, "Out-of-band findings (reconcile)", 10.5)
    _table(pdf, s.findings_table(ctx), widths=(32, 45, 18, 35, 30, 30, 83))
    _section(pdf, "5")
    _table(pdf, s.duties_table(ctx), widths=(40, 40, 40, 73, 80))
    _section(pdf, "6")
    for line in s.events_summary(ctx):
        _para(pdf, line)
    _table(pdf, (("Action", "Events"), sorted(ctx.stats.by_action.items())), widths=(120, 40))
    _grid(pdf, s.events_table(ctx), widths=(13, 30, 32, 42, 58, 98))
    _section(pdf, "7")
    _para(pdf, "Chain verified." if ctx.integrity.ok else "Chain NOT verified.")
    _pairs(pdf, ctx.integrity_rows())
    _section(pdf, "8")
    _table(pdf, s.mapping_table(), widths=(50, 60, 75, 88))
    return bytes(pdf.output())
