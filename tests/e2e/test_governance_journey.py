"""The governance journey in Debian's Chromium against `streamlit run app/main.py`.

A requester asks to make diabetes-progression v3 the champion, two approvers each sign it in their
own browser session, the MLflow alias moves, and the activity feed and the audit page show it.
The store is built by the test: a copy of the demo MLflow store and a governance database
upgraded with `python -m app.cli db upgrade`. A failing step leaves a screenshot in
test-artifacts/.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from tests.e2e.gov_env import PASSWORDS, prepare, store_env

_fixtures = pytest.importorskip("tests.fixtures_mlflow")
demo_data_dir = _fixtures.demo_data_dir

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
MODEL = "diabetes-progression"  # the first model: every picker starts on it
ARTIFACTS = ROOT / "test-artifacts"
WAIT_MS = 90_000  # the first page that reads the registry imports MLflow in the server
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]
expect.set_options(timeout=WAIT_MS)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"streamlit exited: {log.read_text(errors='replace')[-2000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as resp:  # noqa: S310
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    pytest.fail("streamlit did not become healthy")


@pytest.fixture(scope="module")
def served(
    demo_data_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, dict[str, str]]]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed")
    root = tmp_path_factory.mktemp("gov-journey")
    env = {**os.environ, **store_env(demo_data_dir, root)}
    env.pop("MLFLOW_REGISTRY_URI", None)
    subprocess.run(
        [sys.executable, "-m", "app.cli", "db", "upgrade"], cwd=ROOT, env=env, check=True
    )
    prepare(env, upgrade=False)
    port, log = free_port(), root / "streamlit.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "streamlit", "run", "app/main.py"),
                *("--server.port", str(port), "--server.address", "127.0.0.1"),
                *("--server.headless", "true", "--browser.gatherUsageStats", "false"),
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc, log)
        yield url, env
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture
def session(request: pytest.FixtureRequest) -> Iterator[Callable[[str], Page]]:
    """Opens one browser context per person (their own sign-in); screenshots on failure."""
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        pages: dict[str, Page] = {}

        def open_as(name: str) -> Page:
            pg = browser.new_context().new_page()
            pg.set_default_timeout(WAIT_MS)
            pages[name] = pg
            return pg

        failed_before = request.session.testsfailed
        try:
            yield open_as
        finally:
            if request.session.testsfailed > failed_before or sys.exc_info()[0] is not None:
                ARTIFACTS.mkdir(exist_ok=True)
                for name, pg in pages.items():
                    shot = ARTIFACTS / f"{request.node.name}-{name}.png"
                    pg.screenshot(path=str(shot), full_page=True)
            browser.close()


def sign_in(pg: Page, url: str, name: str) -> None:
    pg.goto(url)
    pg.get_by_role("textbox", name="Username").fill(name)
    pg.get_by_role("textbox", name="Password", exact=True).fill(PASSWORDS[name])
    pg.get_by_role("button", name="Log in").click()


def approve(pg: Page, server: str, name: str, request_id: str, comment: str) -> None:
    sign_in(pg, server, name)
    pg.get_by_role("link", name="Approvals").click()
    pg.get_by_role("button", name=f"Open request {request_id}").click()
    expect(pg.get_by_text("Why you may sign")).to_be_visible()
    pg.get_by_label("Comment", exact=True).fill(comment)
    pg.get_by_role("textbox", name="Password", exact=True).fill(PASSWORDS[name])
    pg.get_by_role("button", name="Approve").click()


def test_request_two_signatures_alias_moves_and_the_audit_shows_it(
    served: tuple[str, dict[str, str]], session: Callable[[str], Page]
) -> None:
    server, env = served

    alice = session("alice")
    sign_in(alice, server, "alice")
    # Compare versions (the first model, its two latest versions) -> one click to the request.
    alice.get_by_role("link", name="Compare versions").click()
    alice.get_by_role("link", name="Request promotion of the candidate").click()
    expect(alice.get_by_text("current holder")).to_be_visible()
    alice.get_by_label("Justification", exact=True).fill("v3 generalises better")
    alice.get_by_role("button", name="Submit request").click()
    done = alice.get_by_text(re.compile(r"Request [0-9a-f]{12} submitted"))
    expect(done).to_be_visible()
    request_id = re.search(r"Request ([0-9a-f]{12})", done.inner_text()).group(1)

    erin = session("erin")
    approve(erin, server, "erin", request_id, "deltas and gates checked")
    expect(erin.get_by_text("approve recorded (1 of 2 approvals)")).to_be_visible()

    frank = session("frank")
    approve(frank, server, "frank", request_id, "agreed")
    expect(frank.get_by_text(f"Executed: {MODEL} v3 now holds champion")).to_be_visible()

    from app.bootstrap import build_gateway
    from app.settings import Settings

    gateway = build_gateway(Settings.from_env(env=env))
    assert gateway.version_by_alias(MODEL, "champion").version == "3"

    audrey = session("audrey")
    sign_in(audrey, server, "audrey")
    expect(audrey.get_by_text(f"frank approved request {request_id}").first).to_be_visible()
    audrey.get_by_role("link", name="Audit log").click()
    expect(audrey.get_by_text(re.compile(r"Chain verified up to seq \d+"))).to_be_visible()
    expect(
        audrey.get_by_text(f"execution succeeded for request {request_id}").first
    ).to_be_visible()
