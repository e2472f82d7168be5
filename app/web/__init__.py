"""The HTTP side of the app that Streamlit does not provide: the session cookie endpoints.

`app/main.py` mounts `routes()` through `st.App` (Streamlit 1.67's ASGI app), so
`streamlit run app/main.py` serves them beside Streamlit's own routes. No Streamlit here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from starlette.routing import BaseRoute


def routes(base_url_path: str = "") -> list[BaseRoute]:
    """Everything the app serves besides Streamlit, under Streamlit's `server.baseUrlPath`;
    also the process's start-up (log redaction)."""
    from app.log_redaction import install_log_redaction
    from app.web import session_cookie

    install_log_redaction()
    return session_cookie.routes(base_url_path)
