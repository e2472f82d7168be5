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

from app.ui import errors, navigation  # noqa: E402

st.set_page_config(
    page_title="Countersign",
    page_icon=":material/verified:",
    layout="wide",
    initial_sidebar_state="expanded",
)

# The sign-in gate (identity) goes here, before the navigation, and passes the user's roles.
current = st.navigation(navigation.sections(navigation.visible_pages()), position="sidebar")
with errors.guard():
    current.run()
