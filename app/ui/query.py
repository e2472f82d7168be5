"""Selections kept in the URL (`st.query_params`) so that a review link can be shared.

Lists travel as one comma-separated value (`?versions=3,4`, `?runs=a,b`). A widget keyed `key`
takes its query parameter when the URL holds a value this session did not write (a shared link,
a page link, an edited URL) or when it has no valid value yet, and writes its value back to the
URL on every run. The value is re-assigned to the session state before each render because a
widget with the same key on another page leaves a value the new widget would not pick up.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import streamlit as st

T = TypeVar("T")
# Ids (run ids, version numbers, names) are short; a longer value in a link is not one.
MAX_VALUE_LENGTH = 256


def parse_list(raw: str | Sequence[str] | None) -> list[str]:
    """`"3, 4,,4"` -> `["3", "4"]`: split, strip, drop empties and duplicates, keep order."""
    if raw is None:
        return []
    items = raw.split(",") if isinstance(raw, str) else [p for r in raw for p in r.split(",")]
    out: list[str] = []
    for item in (i.strip() for i in items):
        if item and item not in out:
            out.append(item)
    return out


def get(param: str, default: str = "") -> str:
    return str(st.query_params.get(param, default))


def get_list(param: str) -> list[str]:
    """The list in `?param=`, capped: at most `COUNTERSIGN_URL_MAX_IDS` values, each at most
    MAX_VALUE_LENGTH characters; what is left out is said once on the page."""
    from app.deps import get_settings

    return capped(param, parse_list(st.query_params.get_all(param)), get_settings().url_max_ids)


def capped(param: str, items: list[str], limit: int) -> list[str]:
    """The first `limit` values of reasonable length, with one warning for what was dropped."""
    kept = [i for i in items if len(i) <= MAX_VALUE_LENGTH]
    notes = []
    if len(kept) < len(items):
        notes.append(
            f"{len(items) - len(kept)} value(s) longer than {MAX_VALUE_LENGTH} characters "
            "were ignored"
        )
    if len(kept) > limit:
        notes.append(
            f"it names {len(kept)} values, of which the first {limit} are used "
            "(raise COUNTERSIGN_URL_MAX_IDS to allow more)"
        )
        kept = kept[:limit]
    if notes:
        st.warning(f"The link's ?{param}= list: " + "; ".join(notes) + ".")
    return kept


def _written_key(param: str) -> str:
    return f"_qp_written_{param}"


def changed_outside(param: str) -> bool:
    """Whether the URL holds a value this session did not write (a link or an edited URL)."""
    raw = get(param)
    return bool(raw) and raw != st.session_state.get(_written_key(param))


def put(param: str, value: str | Sequence[str] | None) -> None:
    """Write a value (a list as comma-separated text); an empty value removes the parameter."""
    text = value if isinstance(value, str) or value is None else ",".join(value)
    st.session_state[_written_key(param)] = text or ""
    if text:
        if st.query_params.get(param) != text:
            st.query_params[param] = text
    elif param in st.query_params:
        del st.query_params[param]


def selectbox(
    label: str,
    options: Sequence[T],
    param: str,
    *,
    format_func: Callable[[Any], str] = str,
    default: T | None = None,
    help: str | None = None,
    key: str | None = None,
) -> T | None:
    """A selectbox bound to `?param=`; falls back to `default` (or the first option).

    Widgets of the same `param` share their state, so a choice made on one page is the default
    on the next; a page whose choice must come from its own URL only passes its own `key`.
    """
    key = key or f"qp_{param}"
    by_text = {str(o): o for o in options}
    wanted = st.session_state.get(key)
    if changed_outside(param) and get(param) in by_text:
        wanted = by_text[get(param)]
    elif wanted not in options:
        wanted = by_text.get(get(param))
        if wanted is None:
            wanted = default if default in options else (options[0] if options else None)
    # Always assigned: a key left by a widget on another page would otherwise be ignored.
    st.session_state[key] = wanted
    value = st.selectbox(label, options, key=key, format_func=format_func, help=help)
    put(param, None if value is None else str(value))
    return value


def multiselect(
    label: str,
    options: Sequence[str],
    param: str,
    *,
    format_func: Callable[[Any], str] = str,
    default: Sequence[str] = (),
    max_selections: int | None = None,
    help: str | None = None,
) -> list[str]:
    """A multiselect bound to `?param=a,b`; unknown values in the URL are dropped."""
    key = f"qp_{param}"
    if key in st.session_state and not changed_outside(param):
        st.session_state[key] = [v for v in st.session_state[key] if v in options]
    else:
        wanted = [v for v in get_list(param) if v in options] or [
            v for v in default if v in options
        ]
        st.session_state[key] = wanted[:max_selections] if max_selections else wanted
    value = st.multiselect(
        label,
        options,
        key=key,
        format_func=format_func,
        max_selections=max_selections,
        help=help,
    )
    put(param, value)
    return list(value)


def text_input(label: str, param: str, *, placeholder: str = "", help: str | None = None) -> str:
    """A text input bound to `?param=`."""
    key = f"qp_{param}"
    if changed_outside(param) or key not in st.session_state:
        st.session_state[key] = get(param)
    else:
        st.session_state[key] = st.session_state[key]
    value = st.text_input(label, key=key, placeholder=placeholder, help=help) or ""
    put(param, value.strip())
    return value.strip()
