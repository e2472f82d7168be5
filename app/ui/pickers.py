"""Pickers shared by the pages: experiments, models, versions, columns, runs to compare."""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st

from app.entities import ExperimentInfo, ModelVersionInfo, RegisteredModelInfo
from app.ui import query


def experiment(items: Sequence[ExperimentInfo]) -> ExperimentInfo | None:
    """Pick one experiment (bound to `?experiment=ID`); the newest with runs comes first."""
    by_id = {e.experiment_id: e for e in items}
    options = list(by_id)
    default = next((e.experiment_id for e in items if e.name != "Default"), None)
    chosen = query.selectbox(
        "Experiment",
        options,
        "experiment",
        format_func=lambda i: f"{by_id[i].name}  (id {i})",
        default=default,
    )
    return by_id.get(chosen) if chosen is not None else None


def model(items: Sequence[RegisteredModelInfo]) -> str | None:
    """Pick a registered model by name (bound to `?model=NAME`)."""
    return query.selectbox("Registered model", [m.name for m in items], "model")


def version_text(v: ModelVersionInfo) -> str:
    extra = [*v.aliases, *([v.stage] if v.stage and v.stage != "None" else [])]
    return f"v{v.version}" + (f"  ({', '.join(extra)})" if extra else "")


def columns(available: Sequence[str], *, key: str, default: Sequence[str]) -> list[str]:
    """The column chooser: which params, metrics and tags the table shows."""
    if key in st.session_state:
        st.session_state[key] = [c for c in st.session_state[key] if c in available]
    else:
        st.session_state[key] = [c for c in default if c in available]
    return list(
        st.multiselect(
            "Columns",
            list(available),
            key=key,
            help="Params, metrics and tags shown in the table.",
        )
    )
