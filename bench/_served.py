"""A served app for the browser benchmarks: `streamlit run app/main.py` on a free 127.0.0.1 port,
Debian's Chromium driven by Playwright, and a clock read in the browser itself.

A page switch is timed from the click in the navigation (a capturing click listener notes
`performance.now()`) until Streamlit's script state, the `data-test-script-state` attribute that
Streamlit 1.67 puts on `[data-testid="stApp"]`, has gone through `running` and is back to
`notRunning` with nothing else happening for `QUIET_MS`: a page that reruns itself (a query
parameter written back, `st.rerun`) is timed until its last run ends, as a user sees it. A run
so short that the app renders both states at once is timed until the app had handled the last
message of the run (see SETTLED_JS).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]
QUIET_MS = 400
TIMEOUT_S = 120

# Installed before the app's own scripts: notes when each websocket message from the server has
# been handled (a zero-delay timer runs after the task that processed it).
WEBSOCKET_JS = """(() => {
  const Native = window.WebSocket;
  window.__benchWs = {handled: 0};
  window.WebSocket = function (...args) {
    const ws = new Native(...args);
    ws.addEventListener('message', () => setTimeout(() => {
      window.__benchWs.handled = performance.now();
    }, 0));
    return ws;
  };
  window.WebSocket.prototype = Native.prototype;
  Object.assign(window.WebSocket, Native);
})()"""

# Installed once per document: records every script-state change with the browser's own clock.
OBSERVE_JS = """() => {
  if (window.__bench) return;
  const app = document.querySelector('[data-testid="stApp"]');
  const b = {clicks: [], dom: 0,
             states: [[performance.now(), app.getAttribute('data-test-script-state')]]};
  window.__bench = b;
  document.addEventListener('click', () => b.clicks.push(performance.now()), true);
  new MutationObserver(() => b.states.push(
      [performance.now(), app.getAttribute('data-test-script-state')]
  )).observe(app, {attributes: true, attributeFilter: ['data-test-script-state']});
  new MutationObserver(() => { b.dom = performance.now(); })
      .observe(app, {childList: true, subtree: true, characterData: true});
}"""

# [seconds, how] from the last click to the end of the last script run after it, or null while a
# run is still going, none has been seen yet, or the page has not been quiet for `quiet` ms.
# A run whose messages the app handles in one go never shows `running` in the DOM (React renders
# both states at once): its end is when the app had handled the last message of the run, once
# neither messages nor the page have changed for three times as long.
SETTLED_JS = """(quiet) => {
  const b = window.__bench, now = performance.now(), handled = window.__benchWs.handled;
  const t0 = b.clicks[b.clicks.length - 1];
  const after = b.states.filter(s => s[0] >= t0);
  const last = after.length ? after[after.length - 1] : b.states[b.states.length - 1];
  if (last[1] !== 'notRunning') return null;
  if (after.some(s => s[1] !== 'notRunning'))
    return now - Math.max(last[0], handled) < quiet ? null : [(last[0] - t0) / 1000, 'state'];
  if (handled < t0 || now - Math.max(handled, b.dom) < 3 * quiet) return null;
  return [(handled - t0) / 1000, 'message'];
}"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def load_average() -> str:
    """`cat /proc/loadavg`: the machine is shared, so every figure carries its load."""
    try:
        return Path("/proc/loadavg").read_text().strip()
    except OSError:
        return ""


def peak_rss_mib(pid: int) -> float | None:
    """The process's peak resident set (VmHWM) in MiB, or None where /proc cannot tell."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


class Server:
    """One `streamlit run app/main.py` process; `url` once it answers its health check."""

    def __init__(self, env: Mapping[str, str], log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        argv = [
            *(sys.executable, "-m", "streamlit", "run", "app/main.py"),
            *("--server.port", str(self.port), "--server.address", "127.0.0.1"),
            *("--server.headless", "true", "--browser.gatherUsageStats", "false"),
            *("--server.fileWatcherType", "none"),
        ]
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                argv, cwd=ROOT, env=dict(env), stdout=out, stderr=subprocess.STDOUT
            )

    def wait_healthy(self) -> float:
        """Seconds until /_stcore/health answered."""
        start = time.perf_counter()
        while time.perf_counter() - start < TIMEOUT_S:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"the app exited: {self.log.read_text(errors='replace')[-2000:]}"
                )
            try:
                with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2) as r:  # noqa: S310
                    if r.status == 200:
                        return time.perf_counter() - start
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(
            f"the app did not answer: {self.log.read_text(errors='replace')[-2000:]}"
        )

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@contextmanager
def served(env: Mapping[str, str], log: Path) -> Iterator[Server]:
    server = Server(env, log)
    try:
        server.wait_healthy()
        yield server
    finally:
        server.stop()


@contextmanager
def chromium_page() -> Iterator[Any]:
    """A Playwright page in Debian's Chromium (never a downloaded browser)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            context.add_init_script(WEBSOCKET_JS)
            page = context.new_page()
            page.set_default_timeout(TIMEOUT_S * 1000)
            yield page
        finally:
            browser.close()


def settle(page: Any) -> tuple[float, str]:
    """Seconds from the last click until the app's script runs ended (see the module doc), and
    which signal told: "state" (the script state) or "message" (a run too short to show it)."""
    handle = page.wait_for_function(SETTLED_JS, arg=QUIET_MS, timeout=TIMEOUT_S * 1000, polling=50)
    took, how = handle.json_value()
    return float(took), str(how)


def observe(page: Any) -> None:
    page.wait_for_selector('[data-testid="stApp"]')
    page.evaluate(OBSERVE_JS)


# Open findings are shown in an error box on purpose (the demo holds a monitoring alert).
FINDINGS = ("Monitoring alert:", "Out-of-band change:")


def errors_shown(page: Any) -> list[str]:
    """Exceptions and error boxes on the page: a fast page that fails is not a fast page.

    Open findings are left out: they are what the page is for, not a failure of it.
    """
    found = page.locator('[data-testid="stException"], [data-testid="stAlertContentError"]')
    texts = [text.strip() for text in found.all_inner_texts()]
    # The finding banner's icon is a ligature whose name comes first in the inner text.
    return [t[:200] for t in texts if not t.removeprefix("warning").strip().startswith(FINDINGS)]


def environment(extra: Mapping[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "COUNTERSIGN_"))}
    env.update(extra)
    return env
