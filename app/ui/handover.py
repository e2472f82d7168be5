"""The page's side of the session cookie: it posts to the server, which sets or clears it.

A script in the page can make the request but can never read the cookie (HttpOnly). The post
goes to this server only (same origin, with the app's own header); the grant it carries is
single-use and valid for two minutes. See app.web.session_cookie for the server's side.
"""

from __future__ import annotations

import json
from typing import Any

import streamlit as st

from app.entities import SESSION_END_PATH, SESSION_HEADER, SESSION_ISSUE_PATH


def _js(value: str) -> str:
    """A JavaScript string literal that cannot close the script element."""
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e")


def _post(path: str, body: str, where: Any) -> None:
    base = str(st.get_option("server.baseUrlPath") or "").strip("/")
    url = f"/{base}/{path}" if base else f"/{path}"
    where.html(
        "<script>fetch("
        f"{_js(url)}, {{method: 'POST', credentials: 'same-origin', cache: 'no-store', "
        f"headers: {{{_js(SESSION_HEADER)}: '1', 'Content-Type': 'text/plain'}}, "
        f"body: {_js(body)}}});</script>",
        unsafe_allow_javascript=True,
        width="content",
    )


def collect_cookie(grant: str, where: Any) -> None:
    """Have the browser exchange the session's one-time grant for its HttpOnly cookie, so that
    a reload, a new tab or a link opened later resumes the session.

    Args:
        where: The `st.empty()` slot to draw the (invisible) element in.
    """
    _post(SESSION_ISSUE_PATH, grant, where)


def clear_cookie(where: Any) -> None:
    """Have the browser drop its session cookie (the session itself already ended)."""
    _post(SESSION_END_PATH, "", where)
