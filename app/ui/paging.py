"""Server-side paging of the runs table with MLflow page tokens kept in the session."""

from __future__ import annotations

from collections.abc import Hashable

import streamlit as st

KEY = "runs_paging"


def current_token(query: Hashable) -> tuple[str | None, int]:
    """The page token to fetch for this query and the page number (0-based).

    A new query (experiment, filter, sort or page size) starts again at the first page.
    """
    state = st.session_state.get(KEY)
    if not state or state["query"] != query:
        state = {"query": query, "tokens": [None], "index": 0, "next": None}
        st.session_state[KEY] = state
    return state["tokens"][state["index"]], state["index"]


def _move(step: int) -> None:
    state = st.session_state[KEY]
    if step > 0 and state["next"]:
        del state["tokens"][state["index"] + 1 :]
        state["tokens"].append(state["next"])
        state["index"] += 1
    elif step < 0 and state["index"] > 0:
        state["index"] -= 1


def controls(next_token: str | None, shown: int, page_size: int) -> None:
    """Previous/Next buttons and where we are; `next_token` None means this is the last page."""
    state = st.session_state[KEY]
    state["next"] = next_token
    first = state["index"] * page_size + 1
    left, mid, right = st.columns([1, 2, 1])
    left.button("Previous page", on_click=_move, args=(-1,), disabled=state["index"] == 0)
    mid.caption(
        f"Page {state['index'] + 1}: runs {first}-{first + shown - 1}"
        + ("" if next_token else " (last page)")
        if shown
        else "No runs match."
    )
    right.button("Next page", on_click=_move, args=(1,), disabled=not next_token)
