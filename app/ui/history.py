"""The history of a model's aliases and stages: a timeline chart, a table, rollback links.

No I/O: a TargetHistory in, Streamlit elements out. Versions, targets and signers come from
MLflow and people: they go into the chart escaped (`app.ui.chart_text`), into the table as data,
and into links only as query values.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import plotly.express as px
import streamlit as st

from app.entities import TargetHistory, Tenure
from app.ui import navigation
from app.ui.chart_text import plotly_frame, plotly_labels

HOW = {
    "request": "by request",
    "out_of_band": "OUT OF BAND",
    "put_back": "put back by Countersign",
    "before_countersign": "before Countersign knew it",
    "not_yet_compared": "in MLflow now, not yet compared",
}
ROLLBACK_LINKS = 8


def _when(stamp: str | None) -> datetime | None:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")) if stamp else None


def frame(history: TargetHistory, now: datetime | None = None) -> pd.DataFrame:
    """One row per tenure; unknown starts are drawn from a little before the first record."""
    now = now or datetime.now(UTC)
    known = [_when(s) for t in history.tenures for s in (t.since, t.until) if s]
    first = min([k for k in known if k] or [now])
    lead = max((now - first) / 10, timedelta(hours=1))
    rows = []
    for t in history.tenures:
        rows.append(
            {
                "target": f"{t.target_kind} {t.target}",
                "version": f"v{t.version}" if t.version else "nobody",
                "from": _when(t.since) or first - lead,
                "to": _when(t.until) or now,
                "how": HOW.get(t.source, t.source),
                "request": _request(t),
                "signers": ", ".join(t.signers),
                "from (UTC)": (t.since or "before Countersign knew")[:19].replace("T", " "),
                "to (UTC)": (t.until or "now")[:19].replace("T", " "),
            }
        )
    return pd.DataFrame(rows)


def _request(t: Tenure) -> str:
    if not t.request_id:
        return ""
    kind = "" if t.request_kind in (None, "normal") else f" ({t.request_kind.replace('_', '-')})"
    return f"{t.request_id}{kind}"


def show(history: TargetHistory) -> None:
    """The timeline per target, the table of tenures, and a rollback link per past holder."""
    if not history.tenures:
        st.caption("No alias or stage of this model is recorded or held.")
        return
    if history.known_since:
        st.caption(
            f"Countersign's record of this model starts {history.known_since[:19]} UTC; what held "
            "a target before is shown as 'before Countersign knew it'."
        )
    else:
        st.caption("Countersign has no record of this model yet: every holder predates it.")
    rows = frame(history)
    hover = ["request", "signers", "from (UTC)", "to (UTC)"]
    used = ["from", "to", "target", "how", "version", *hover]
    fig = px.timeline(
        plotly_frame(rows, used), x_start="from", x_end="to", y="target", color="how",
        text="version", hover_data=hover, labels=plotly_labels(used),
    )  # fmt: skip
    fig.update_yaxes(autorange="reversed", title=None)
    fig.update_layout(margin={"l": 10, "r": 10, "t": 30, "b": 10}, legend_title_text="")
    st.plotly_chart(fig, width="stretch")
    shown = ["target", "version", "from (UTC)", "to (UTC)", "how", "request", "signers"]
    st.dataframe(rows[shown], hide_index=True, width="stretch")
    for target, version in history.rollback_to[:ROLLBACK_LINKS]:
        navigation.link(
            "promotions.py",
            f"Request rollback to this version (v{version} on {target})",
            query={"model": history.model, "rollback_target": target, "rollback_version": version},
            icon=":material/history:",
        )
