"""Self-contained HTML reports (Evidently, exports) shown only inside an iframe."""

from __future__ import annotations

from pathlib import Path

import streamlit as st


def report_frame(html: str | Path, *, title: str, height: int = 900, file_name: str = "") -> None:
    """Show a report we generated ourselves in `st.iframe`, with a download of the same HTML.

    Never pass HTML from users here: the iframe runs scripts (Evidently's charts need them).
    """
    text = html.read_text(encoding="utf-8") if isinstance(html, Path) else html
    st.subheader(title)
    st.iframe(text, height=height)
    st.download_button(
        "Download report (HTML)",
        data=text.encode("utf-8"),
        file_name=file_name or "report.html",
        mime="text/html",
    )
