"""Nested runs (hyperparameter sweeps, cross-validation folds) shown the way MLflow's UI does.

A child run names its parent in the tag `mlflow.parentRunId`. Expanded, a page of runs lists each
child right under its parent (when the parent is on the same page), its name indented by depth,
with a `parent run` column. Collapsed, the server is asked for top-level runs only and each row
says how many child runs it has. Pure functions: no I/O, no Streamlit, no MLflow.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from app.entities import RunSummary

PARENT_TAG = "mlflow.parentRunId"
TOP_LEVEL = f"tags.{PARENT_TAG} IS NULL"
INDENT = "↳ "


def top_level_filter(filter_string: str) -> str:
    """The user's MLflow filter narrowed to runs without a parent (MLflow filters are AND-only)."""
    text = filter_string.strip()
    return f"{text} and {TOP_LEVEL}" if text else TOP_LEVEL


def nested(
    frame: pd.DataFrame,
    runs: Sequence[RunSummary],
    child_counts: Mapping[str, int] | None = None,
) -> pd.DataFrame:
    """The runs table of one page, children under their parents.

    Args:
        frame: One row per run (column `run_id`, `run_name`), in the server's order.
        runs: The same runs, for their parent tags.
        child_counts: Collapsed view: parent run id -> number of child runs, shown as a column.
    """
    parent_of = {r.run_id: r.tags.get(PARENT_TAG, "") for r in runs}
    names = {r.run_id: r.run_name or r.run_id[:8] for r in runs}
    on_page = set(parent_of)
    children: dict[str, list[str]] = {}
    for r in runs:
        parent = parent_of[r.run_id]
        if parent in on_page and parent != r.run_id:
            children.setdefault(parent, []).append(r.run_id)
    order: list[str] = []
    depth: dict[str, int] = {}

    def visit(run_id: str, level: int) -> None:
        if run_id in depth:  # a cycle of parent tags: show each run once
            return
        depth[run_id] = level
        order.append(run_id)
        for child in children.get(run_id, []):
            visit(child, level + 1)

    for r in runs:
        parent = parent_of[r.run_id]
        if not (parent in on_page and parent != r.run_id):
            visit(r.run_id, 1 if parent else 0)
    for r in runs:  # only runs caught in a cycle are left
        visit(r.run_id, 0)
    out = frame.set_index("run_id", drop=False).loc[order].reset_index(drop=True)
    out["run_name"] = [
        INDENT * depth[i] + str(n) for i, n in zip(order, out["run_name"], strict=True)
    ]
    out.insert(
        out.columns.get_loc("run_id") + 1,
        "parent run",
        [names.get(parent_of[i], parent_of[i][:8]) if parent_of[i] else "" for i in order],
    )
    if child_counts is not None:
        out.insert(
            out.columns.get_loc("parent run") + 1,
            "child runs",
            [child_counts.get(i, 0) for i in order],
        )
    return out
