"""Self-contained HTML reports (Evidently, exports) shown only inside a sandboxed iframe."""

from __future__ import annotations

import re
from html import escape
from pathlib import Path

import streamlit as st

# Streamlit 1.67's frontend gives every `st.iframe` the sandbox "allow-scripts allow-same-origin"
# (plus forms, popups, modals, downloads), and Python cannot change it: a script in srcdoc there
# runs in the app's origin. So the report goes one frame deeper, into an iframe of our own whose
# sandbox allows scripts (the charts need them) but not same-origin: its origin is opaque, and it
# can reach neither the app, its cookies and storage, nor the reviewer's session. The outer
# document holds no script and nothing unescaped.
SANDBOX = "allow-scripts"
_STYLE = (
    "html,body{margin:0;height:100%;overflow:hidden}"
    "iframe{display:block;border:0;width:100%;height:100%}"
)


def sandboxed_document(html: str, title: str) -> str:
    """A page that shows `html` in a nested iframe with an opaque origin (see SANDBOX)."""
    return (
        f'<!DOCTYPE html><html><head><meta charset="utf-8"><style>{_STYLE}</style></head>'
        f'<body><iframe sandbox="{SANDBOX}" title="{escape(title, quote=True)}" '
        f'srcdoc="{escape(html, quote=True)}"></iframe></body></html>'
    )


def report_frame(html: str | Path, *, title: str, height: int = 900, file_name: str = "") -> None:
    """Show a report in a sandboxed iframe, with a download of the same HTML.

    Evidently's reports arrive here already made safe (`app.reports.safe_html`); the sandbox
    is the second wall, for whatever the escaping misses.
    """
    text = html.read_text(encoding="utf-8") if isinstance(html, Path) else html
    st.subheader(title)
    st.iframe(sandboxed_document(text, title), height=height, alt=title)
    st.download_button(
        "Download report (HTML)",
        data=text.encode("utf-8"),
        # The name often holds a model name: keep it a plain file name in every browser.
        file_name=re.sub(r"[^\w.-]+", "_", file_name) or "report.html",
        mime="text/html",
    )
