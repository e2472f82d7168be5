"""Monitoring over time: each production batch of a model version scored against its reference.

The drift share and every quality metric as a timeline with the policy's threshold lines, the
per-column drift heatmap (top drifting columns first), open alerts, and every batch one click
from its Drift view. Shareable: ?model=X&version=N (&overlay=1 for champion and challenger).
"""

from datetime import UTC, datetime, time

import streamlit as st

import app.deps as deps
from app.ui import (
    errors,
    governance as gov,
    guard,
    monitoring_views as views,
    navigation,
    pickers,
    query,
)
from app.ui.text import md_escape as esc, md_join
from governance.domain import Permission

OVERLAY = ("champion", "challenger")


def versions_shown(model) -> tuple[str, list[str]]:
    items = {v.version: v for v in sorted(deps.versions(model.name), key=lambda v: int(v.version))}
    # The version in production first: the champion, else the Production stage, else the latest.
    first = [n for n, v in items.items() if v.stage == "Production"][-1:] or list(items)[-1:]
    primary = query.selectbox(
        "Version", list(items), "version", format_func=lambda n: pickers.version_text(items[n]),
        default=model.aliases.get("champion") or (first[0] if first else None),
    )  # fmt: skip
    holders = [model.aliases[a] for a in OVERLAY if a in model.aliases]
    overlay = st.toggle("Overlay champion and challenger", value=query.get("overlay") == "1")
    query.put("overlay", "1" if overlay else None)
    shown = list(dict.fromkeys([*holders] if overlay and holders else [primary]))
    return str(primary), [str(v) for v in shown if v]


def score_form(user, model: str, version: str) -> None:
    with st.expander("Score a batch (CSV or Parquet upload)"), st.form("score_batch"):
        upload = st.file_uploader("Production data", type=["csv", "parquet"])
        day = st.date_input("As of (UTC)", value=datetime.now(UTC).date())
        label = st.text_input("Label column (optional)")
        prediction = st.text_input("Prediction column (optional)")
        if st.form_submit_button("Score and record") and upload is not None:
            view = deps.record_uploaded_batch(
                user.username, model, version, upload.getvalue(), upload.name,
                as_of=datetime.combine(day, time(), UTC), label=label, prediction=prediction,
            )  # fmt: skip
            note = " (already recorded)" if view["already_recorded"] else ""
            st.success(f"Batch {view['batch_id']}: drift share {view['share_drifted']:.3f}{note}")


def main() -> None:
    user = guard.current_user()
    st.title("Monitoring over time")
    models = deps.registered_models()
    name = pickers.model(models)
    model = next((m for m in models if m.name == name), None)
    if model is None or user is None:
        st.info("No registered models in this store yet.")
        return
    primary, shown = versions_shown(model)
    with gov.secondary("Monitoring alerts"):
        flags = deps.monitoring_flags(user.username, model.name)
        gov.monitoring_alerts(
            [f for f in flags if f.version in shown],
            deps.finding_closer(user.username, guard.may(user, Permission.MONITOR)),
        )
    if guard.may(user, Permission.MONITOR):
        score_form(user, model.name, primary)
    view = deps.monitoring_view(user.username, model.name, tuple(shown))
    if view["timeline"].empty:
        command = (
            f"python -m app.cli monitor run --model {model.name} --version {primary} "
            "--current PATH --label COL --prediction COL"
        )
        st.info(f"No batches for {esc(model.name)} v{md_join(shown, ', v')} yet. Score one: ")
        st.code(command, language="bash")
        return
    thresholds = deps.monitoring_thresholds(model.name)
    st.subheader("Timeline")
    if thresholds["pattern"]:
        pattern = esc(repr(thresholds["pattern"]))
        st.caption(
            f"Threshold lines from the policy (models: {pattern}); a finding opens after"
            f" {thresholds['consecutive']} batch(es) in a row. Click a point to open "
            "that batch's drift view."
        )
    figure = views.timeline_figure(
        view["timeline"], deps.monitoring_metrics(view["timeline"]), thresholds["lines"],
        view["baselines"],
    )  # fmt: skip
    event = st.plotly_chart(figure, on_select="rerun", selection_mode="points", key="timeline")
    clicked = views.clicked_batch(event)
    if clicked:
        batch, version = clicked
        navigation.go("drift.py", {"model": model.name, "version": version, "batch": batch})
    for version in shown:
        st.subheader(f"v{esc(version)}: per-column drift (top drifting columns first)")
        ids = [b for b, _ in reversed(view["batches"][version])]
        if not view["heatmaps"][version].empty:
            st.plotly_chart(views.heatmap_figure(view["heatmaps"][version], ids))
        labels = dict(view["batches"][version])
        chosen = st.selectbox(
            "Batch", list(labels), format_func=labels.get, key=f"batch_v{version}"
        )
        if chosen:
            navigation.link(
                "drift.py",
                f"Open batch {chosen} in Drift",
                query={"model": model.name, "version": version, "batch": chosen},
            )
        st.dataframe(view["tables"][version], hide_index=True, width="stretch")


guard.require()
errors.run_page(main)
