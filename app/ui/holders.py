"""Comparing a candidate with the holder of an alias or a legacy stage (Compare versions).

Several versions may hold a legacy stage at once (MLflow moves a version into Production without
archiving the others unless asked): every holder is listed and shown, the newest one is the
baseline, as in a promotion request's evidence. No I/O: the versions come in, widgets go out.
"""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st

from app.entities import ModelVersionInfo
from app.ui import navigation, pickers, query
from app.ui.guard import escape_markdown
from governance.domain import STAGE_TARGETS

MAX_TARGET = 256  # MLflow aliases are at most 255 characters


def holders(items: Sequence[ModelVersionInfo], target: str) -> list[str]:
    """Versions holding an alias or a legacy stage (several may hold a stage at once)."""
    if target in STAGE_TARGETS:
        return [v.version for v in items if v.stage == target]
    return [v.version for v in items if target in v.aliases]


def against_holder(
    model: str, items: Sequence[ModelVersionInfo], targets: list[str]
) -> tuple[str, ...]:
    """Baseline: the newest holder of the target (as in a request's evidence), then the other
    holders of a stage, then the candidate."""
    by_number = {v.version: v for v in items}
    wanted = query.get("alias")[:MAX_TARGET]  # from the URL: anyone may have written it
    options = targets + ([wanted] if wanted and wanted not in targets else [])
    left, right = st.columns(2)
    with left:
        target = str(query.selectbox("Alias or stage", options, "alias", default="champion"))
    held = holders(items, target)
    rest = [v.version for v in items if v.version not in held]
    # Names come from MLflow and the URL: shown as text, never as Markdown.
    name, shown = escape_markdown(model), escape_markdown(repr(target))
    if not held:
        now = ", ".join(f"{t} → {', '.join('v' + n for n in holders(items, t))}" for t in targets)
        st.info(
            f"No version of {name} holds {shown} now. Held now: "
            f"{escape_markdown(now) or 'nothing'}. Pick one of those, or compare any versions."
        )
        return ()
    if not rest:
        st.info(
            f"v{held[0]} holds {shown} and {name} has no other version to compare it with. "
            "Open the version on the Models page, or pick another model."
        )
        navigation.link("models.py", f"Open v{held[0]}", query={"model": model, "version": held[0]})
        return ()
    challenger = holders(items, "challenger") if target != "challenger" else []
    with right:
        candidate = query.selectbox(
            "Candidate",
            rest,
            "candidate",
            format_func=lambda n: pickers.version_text(by_number[n]),
            default=next((c for c in challenger if c in rest), rest[-1]),
        )
    baseline = held[-1]
    if len(held) > 1:
        listed = ", ".join(f"v{n}" for n in held)
        st.info(
            f"{len(held)} versions hold {escape_markdown(target)} at once: {listed}. The newest, "
            f"v{baseline}, is the baseline (a promotion request compares with it); all are shown."
        )
    return (baseline, *[n for n in held if n != baseline], str(candidate))
