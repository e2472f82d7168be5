"""A version's lineage: version -> logged model (MLflow 3) -> run -> data sets. No I/O."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import streamlit as st

from app.entities import DatasetInfo, LoggedModelInfo, ModelVersionInfo
from app.ui import tables
from app.ui.guard import escape_markdown


def chain(version: ModelVersionInfo, lm: LoggedModelInfo | None, run_id: str) -> str:
    """`v3 → logged model m-1a2b (name, READY) → run 5f3c… → data sets` as plain words."""
    parts = [f"v{version.version}"]
    if version.model_id:
        if lm is None:
            parts.append(f"logged model {version.model_id} (no longer in the store)")
        else:
            kind = f", {lm.model_type}" if lm.model_type else ""
            parts.append(f"logged model {lm.model_id} ({lm.name or 'unnamed'}, {lm.status}{kind})")
    parts.append(f"run {run_id}" if run_id else "no run (logged outside any run)")
    parts.append("data sets")
    return " → ".join(parts)


def show(
    version: ModelVersionInfo,
    lm: LoggedModelInfo | None,
    run_id: str,
    datasets: Sequence[DatasetInfo],
    missing_inputs: int,
) -> None:
    """The lineage line, the logged model's params and metrics, and the run's data sets."""
    st.markdown("**Lineage**")
    st.markdown(escape_markdown(chain(version, lm, run_id)))
    if lm is not None:
        with st.expander(f"Logged model params ({len(lm.params)}) and metrics ({len(lm.metrics)})"):
            tables.key_values(lm.params, empty="The logged model has no params.")
            if lm.metrics:
                rows = [
                    {"metric": m.key, "value": m.value, "step": m.step}
                    | {"data set": m.dataset_name, "digest": m.dataset_digest, "run": m.run_id}
                    for m in lm.metrics
                ]
                st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
            else:
                st.caption("No metrics were logged on the logged model.")
    if not run_id:
        st.caption("Without a run there are no data set inputs; metric data sets are above.")
    elif datasets or not missing_inputs:
        tables.datasets(datasets)
    if missing_inputs:
        st.warning(
            f"{missing_inputs} data set input(s) of run {escape_markdown(run_id)} point at a data "
            "set record that is no longer in the store; MLflow leaves them out, so they are not "
            "listed."
        )
