"""Tables: side-by-side comparisons, deltas coloured by direction, entity lists."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
import streamlit as st

from app.entities import DatasetInfo, ModelVersionInfo

VERDICT_COLOURS = {
    "better": "background-color: #d8f3dc; color: #1b4332",
    "worse": "background-color: #ffd6d6; color: #7f1d1d",
    "same": "",
    "n/a": "color: #6b7280",
}


def _as_text(frame: pd.DataFrame) -> pd.DataFrame:
    # Mixed params (text) and metrics (floats) in one column: show them as text, empty for None.
    return frame.apply(lambda col: col.map(lambda v: "" if v is None else str(v)))


def side_by_side(frame: pd.DataFrame, *, empty: str = "Nothing to compare.") -> None:
    """A comparison table (one column per run or version), or a note when there is nothing."""
    if frame.empty:
        st.info(empty)
        return
    shown = _as_text(frame).reset_index()
    st.dataframe(shown, hide_index=True, width="stretch")


def deltas(frame: pd.DataFrame) -> None:
    """Metric deltas with better rows green and worse rows red, by each metric's direction."""
    if frame.empty:
        st.info("No metrics to compare.")
        return

    def colour(row: pd.Series) -> list[str]:
        return [VERDICT_COLOURS.get(str(row["verdict"]), "")] * len(row)

    styled = frame.style.apply(colour, axis=1).format(
        {"baseline": "{:.4g}", "value": "{:.4g}", "delta": "{:+.4g}", "delta_pct": "{:+.2f}%"},
        na_rep="",
    )
    st.dataframe(styled, hide_index=True, width="stretch")
    better = int((frame["verdict"] == "better").sum())
    worse = int((frame["verdict"] == "worse").sum())
    st.caption(f"{better} better, {worse} worse (green: better, red: worse, by metric direction)")


def versions(items: Sequence[ModelVersionInfo]) -> None:
    rows = [
        {
            "version": int(v.version),
            "aliases": ", ".join(v.aliases),
            "stage": "" if v.stage in ("", "None") else v.stage,
            "status": v.status,
            "author": v.author,
            "created": v.creation_time,
            "source run": v.run_id,
            "description": v.description,
            "tags": ", ".join(f"{k}={t}" for k, t in sorted(v.tags.items())),
        }
        for v in items
    ]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")


def datasets(items: Sequence[DatasetInfo]) -> None:
    if not items:
        st.info("No data sets were logged on the source run.")
        return
    rows = [
        {"context": d.context, "name": d.name, "digest": d.digest}
        | {"source type": d.source_type, "source": d.source}
        for d in items
    ]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")


def key_values(values: dict[str, Any], *, empty: str = "None.") -> None:
    """A small two-column table of tags or params."""
    if not values:
        st.caption(empty)
        return
    frame = pd.DataFrame({"key": list(values), "value": [str(v) for v in values.values()]})
    st.dataframe(frame, hide_index=True, width="stretch")
