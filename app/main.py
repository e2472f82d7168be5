"""`streamlit run app/main.py`: page config once, then the navigation over pages/.

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

from app.log_redaction import install_log_redaction  # noqa: E402
from app.ui import errors, login, navigation  # noqa: E402

install_log_redaction()  # idempotent: the first run of the process installs it

st.set_page_config(
    page_title="Countersign",
    page_icon=":material/verified:",
    layout="wide",
    initial_sidebar_state="expanded",
)

# The sign-in gate: nothing below runs until someone is signed in. Pages the user's roles may not
# open stay registered but hidden, so a URL to one shows its guard's refusal, not a blank page.
user = login.gate(
    keep_page=lambda: st.navigation(
        navigation.sections(navigation.visible_pages()), position="hidden"
    )
)
_allowed = {spec.file for spec in navigation.visible_pages(roles=user.roles)}
_hidden = {spec.file for spec in navigation.visible_pages()} - _allowed
current = st.navigation(
    navigation.sections(navigation.visible_pages(), hidden=_hidden), position="sidebar"
)
with errors.guard():
    current.run()
