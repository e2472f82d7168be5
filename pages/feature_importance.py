"""Feature importance: per version from its logged feature_importance.json (or, when the
operator opted in, from the model worker), compared across versions, and against drift.
Shareable: ?model=X&versions=2,3.
"""

import streamlit as st

import app.deps as deps
from app.entities import FeatureImportance
from app.errors import ArtifactsUnreachable, ImportanceNotLogged, InvalidInput
from app.ui import drift_views, errors, guard, pickers, query
from app.ui.text import md_escape as esc, md_join


def load(model: str, version: str):
    """The version's importances, or None after saying on the page why there are none."""
    bar = st.empty()

    def progress(done: float, text: str) -> None:
        bar.progress(done, text=f"v{esc(version)}: {esc(text)}")

    try:
        return deps.feature_importance(model, version, progress)
    except ImportanceNotLogged:
        st.info(f"v{esc(version)}: no importance logged.")
    except (ArtifactsUnreachable, InvalidInput) as exc:
        st.warning(f"v{esc(version)}: {esc(exc)}")
    finally:
        bar.empty()
    return None


def main() -> None:
    st.title("Feature importance")
    name = pickers.model(deps.registered_models())
    if name is None:
        st.info("No registered models in this store yet.")
        return
    items = {v.version: v for v in sorted(deps.versions(name), key=lambda v: int(v.version))}
    chosen = query.multiselect(
        "Versions (the first one is the baseline)",
        list(items),
        "versions",
        format_func=lambda n: pickers.version_text(items[n]),
        default=list(items)[-2:],
    )
    if not chosen:
        st.info("Pick one or more versions.")
        return
    found = [i for i in (load(name, str(v)) for v in chosen) if i is not None]
    if not found:
        st.info("None of these versions has importance to show.")
        return
    k = st.slider("Top k", 1, max(1, max(len(i.importances) for i in found)), 5, key="top_k")
    worker = deps.get_settings().model_importance == "worker"
    st.caption(
        "; ".join(f"v{esc(i.version)}: {esc(i.source)} ({esc(i.method)})" for i in found)
        + ". Source: each version's logged feature_importance.json"
        + (", else computed by the model worker." if worker else ".")
    )
    # Only the open tab runs (the drift comparison reads the version's data sets).
    bars, versus, drifted = st.tabs(
        ["Importances", "Compare versions", "Drift by importance"],
        key="importance_tab",
        on_change="rerun",
    )
    if bars.open:
        with bars:
            drift_views.importance_bars(deps.importance_bars(found, k))
            for importance in found:
                with st.expander(f"v{esc(importance.version)}: all features"):
                    drift_views.importance_table(importance)
    if versus.open:
        with versus:
            compare(found, k)
    if drifted.open:
        with drifted:
            against_drift(name, found[-1], k)


def compare(found: list[FeatureImportance], k: int) -> None:
    if len(found) < 2:
        st.info("Pick two or more versions to compare.")
        return
    base, last = found[0], found[-1]
    comparison = deps.importance_comparison(base, last, k)
    st.metric(
        f"Top-{k} overlap, v{esc(base.version)} to v{esc(last.version)}",
        f"{len(comparison['shared'])} of {k}",
        help=f"Jaccard {comparison['jaccard']:.2f}",
    )
    st.caption("Shared: " + (md_join(comparison["shared"]) or "none"))
    st.dataframe(comparison["table"], hide_index=True, width="stretch")


def against_drift(name: str, last: FeatureImportance, k: int) -> None:
    result = deps.version_drift(name, last.version)
    if result is None:
        st.info(f"v{esc(last.version)}'s run logged no reference and current data sets to compare.")
        return
    important = deps.drifted_important(result, last, k)
    st.metric(f"Top-{k} features of v{esc(last.version)} that drifted", len(important))
    if important:
        st.warning("Drifted important features: " + md_join(important))
    else:
        st.success(f"None of the top {k} features drifted.")
    frame = deps.drift_by_importance(result, last, k)
    drift_views.importance_vs_drift(frame)
    st.dataframe(frame, hide_index=True, width="stretch")


guard.require()
errors.run_page(main)
