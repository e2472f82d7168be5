"""`streamlit run app/main.py`: the server, then page config, login gate and navigation per run.

This file plays two parts. `streamlit run` first finds the `st.App` below (Streamlit 1.67
serves a file holding one as an ASGI app) and imports this file as a module: that adds the
session cookie endpoints (app.web) beside Streamlit's own routes. Streamlit then runs this same
file as the script of every session, as `__main__`: `serve()` below.

Streamlit puts app/ first on sys.path; modules in app/ would then shadow packages with the same
top-level names, so app/ is taken off the path and the repository root put first instead.
"""

import sys
from pathlib import Path

APP_DIR = Path(__file__).resolve().parent
ROOT = APP_DIR.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != APP_DIR]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402


def serve() -> None:
    """One run of the app for one session: the sign-in gate, then the page asked for."""
    import app.deps as deps
    from app.ui import errors, login, navigation

    st.set_page_config(
        page_title="Countersign",
        page_icon=":material/verified:",
        layout="wide",
        initial_sidebar_state="expanded",
    )
    # MLflow, scipy and plotly load in the background while the sign-in page is on screen.
    deps.warm_up()
    # The sign-in gate: nothing below runs until someone is signed in. Pages the user's roles may
    # not open stay registered but hidden, so a URL to one shows its guard's refusal, not a blank
    # page.
    user = login.gate(
        keep_page=lambda: st.navigation(
            navigation.sections(navigation.visible_pages()), position="hidden"
        )
    )
    allowed = {spec.file for spec in navigation.visible_pages(roles=user.roles)}
    hidden = {spec.file for spec in navigation.visible_pages()} - allowed
    current = st.navigation(
        navigation.sections(navigation.visible_pages(), hidden=hidden), position="sidebar"
    )
    login.return_to_target(current)
    with errors.guard():
        current.run()


if __name__ == "__main__":  # a session's run (Streamlit executes this file as __main__)
    serve()
else:  # `streamlit run` imports this file once, at start-up, to find the ASGI app
    from app.web import routes

    app = st.App(__file__, routes=routes(str(st.get_option("server.baseUrlPath") or "")))
