"""One place that turns user-facing errors into one clear line instead of a traceback."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import streamlit as st

from app.deps import USER_ERRORS
from app.errors import StoreSchemaMismatch, message_of
from app.ui.text import md_escape
from governance.errors import GovernanceError

NEEDS_MLFLOW = (
    "This part reads through MLflow's own client, which needs the store at the schema revision "
    "named above. Experiments and Compare runs read runs from the store as it is."
)
SHOWN_ERRORS: tuple[type[Exception], ...] = (*USER_ERRORS, GovernanceError)


def show_error(exc: BaseException) -> None:
    """The error banner: the message only, written for the person using the product.

    Messages quote names and values from MLflow and from people: shown escaped, never as Markdown.
    """
    st.error(md_escape(message_of(exc)), icon=":material/error:")


@contextmanager
def guard(*, stop: bool = True) -> Iterator[None]:
    """Show a user-facing error raised inside the block; stop the page unless `stop=False`."""
    try:
        yield
    except StoreSchemaMismatch:
        # The page's guard has shown the store's message at the top already: say what this
        # part needs instead of repeating it.
        st.caption(NEEDS_MLFLOW)
        if stop:
            st.stop()
    except SHOWN_ERRORS as exc:
        show_error(exc)
        if stop:
            st.stop()


def run_page(render: Callable[[], None]) -> None:
    """Run a page's body so that a user-facing error becomes the error banner."""
    with guard():
        render()
