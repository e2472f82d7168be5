"""Warm a server process: import what the pages need in a background thread, then freeze it.

Streamlit runs a page's script only when someone opens it, so without this the first person to
open a page after a restart waits for `import mlflow` (1-5 s on this two-core machine), scipy and
plotly. `start()` is called once per process by app/main.py (through `app.deps.warm_up`) while
the sign-in page is on screen; it only imports modules and opens nothing. When the imports are
done, `gc.freeze()` moves the objects they created (about 200,000) out of the cyclic garbage
collector's reach: they live as long as the process anyway, and a full collection that walks
them holds the interpreter lock for 0.15-0.5 s in the middle of somebody's page.
"""

from __future__ import annotations

import gc
import logging
import threading
import time

from app.settings import Settings

log = logging.getLogger(__name__)
THREAD_NAME = "countersign-warm-up"


def warm(settings: Settings) -> dict[str, float]:
    """Import the modules the pages need; returns seconds per group. Never raises."""
    took: dict[str, float] = {}
    steps = (
        ("mlflow", lambda: _mlflow(settings)),
        ("charts", _charts),
        ("drift", _drift),
    )
    for name, step in steps:
        start = time.perf_counter()
        try:
            step()
        except Exception as exc:  # a missing optional module must not stop the server
            log.warning("warm-up: %s failed: %s", name, exc)
        took[name] = round(time.perf_counter() - start, 3)
    gc.freeze()
    return took


def start(settings: Settings) -> threading.Thread:
    """Run `warm` in a daemon thread and return it (the caller keeps one per process)."""

    def run() -> None:
        log.info("warm-up done in %s", warm(settings))

    thread = threading.Thread(target=run, name=THREAD_NAME, daemon=True)
    thread.start()
    return thread


def _mlflow(settings: Settings) -> None:
    from app.mlflow_gateway.warm import import_client

    import_client(settings.tracking_uri, settings.registry_uri)


def _charts() -> None:
    import plotly.express  # noqa: F401


def _drift() -> None:
    # The drift verdict's tests (app.reports.stattests imports scipy where it is used).
    import scipy.spatial.distance
    import scipy.stats  # noqa: F401

    import app.reports.cache  # noqa: F401
