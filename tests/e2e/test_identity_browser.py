"""Sign-in, sign-out, lockout and a direct URL without the role, in Debian's Chromium.

`streamlit run app/main.py` serves a real governance database on a free 127.0.0.1 port.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.e2e.identity_env import ACCOUNTS, ROOT, build_governance_db

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
PASSWORDS = {name: password for name, _, password in ACCOUNTS}
ARTIFACTS = ROOT / "test-artifacts"
WAIT_MS = 60_000  # the first page behind the gate imports MLflow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 90
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
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed")
    folder = tmp_path_factory.mktemp("identity-browser")
    env = {**os.environ, **build_governance_db(folder)}
    port = _free_port()
    log = folder / "streamlit.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streamlit",
                "run",
                "app/main.py",
                "--server.port",
                str(port),
                "--server.address",
                "127.0.0.1",
                "--server.headless",
                "true",
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, proc, log)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-dev-shm-usage",
            ],
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    context = browser.new_context()
    pg = context.new_page()
    pg.set_default_timeout(WAIT_MS)
    failed_before = request.session.testsfailed
    yield pg
    if request.session.testsfailed > failed_before:  # keep a screenshot of what went wrong
        ARTIFACTS.mkdir(exist_ok=True)
        pg.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    context.close()


def sign_in(pg: Page, username: str, password: str) -> None:
    pg.get_by_role("textbox", name="Username").fill(username)
    pg.get_by_role("textbox", name="Password").fill(password)
    pg.get_by_role("button", name="Log in").click()


def test_sign_in_then_sign_out(server: str, page: Page) -> None:
    page.goto(server)
    expect(page.get_by_role("button", name="Log in")).to_be_visible(timeout=WAIT_MS)
    sign_in(page, "vic", PASSWORDS["vic"])
    log_out = page.get_by_role("button", name="Log out")
    expect(log_out).to_be_visible(timeout=WAIT_MS)
    expect(page.get_by_text("Signed in as")).to_be_visible(timeout=WAIT_MS)
    log_out.click()
    expect(page.get_by_role("button", name="Log in")).to_be_visible(timeout=WAIT_MS)
    expect(page.get_by_text("You are signed out.")).to_be_visible(timeout=WAIT_MS)


def test_a_wrong_password_is_refused_and_the_account_locks(server: str, page: Page) -> None:
    page.goto(server)
    # Each answer differs, so every attempt is waited for before the next one is typed.
    for left in ("2 attempts left", "1 attempt left"):
        sign_in(page, "lee", "not-the-password")
        expect(page.get_by_text(left)).to_be_visible(timeout=WAIT_MS)
        expect(page.get_by_text("invalid user name or password")).to_be_visible(timeout=WAIT_MS)
    sign_in(page, "lee", "not-the-password")
    expect(page.get_by_text("(3 in a row here)")).to_be_visible(timeout=WAIT_MS)
    expect(page.get_by_text("locked for 15 minutes")).to_be_visible(timeout=WAIT_MS)
    sign_in(page, "lee", PASSWORDS["lee"])  # the right password, but the account is locked
    expect(page.get_by_text("(4 in a row here)")).to_be_visible(timeout=WAIT_MS)
    expect(page.get_by_text("invalid user name or password")).to_be_visible(timeout=WAIT_MS)
    expect(page.get_by_role("button", name="Log out")).to_have_count(0, timeout=WAIT_MS)


def test_a_direct_url_without_the_role_says_which_role_it_needs(server: str, page: Page) -> None:
    page.goto(f"{server}/admin")
    expect(page.get_by_role("button", name="Log in")).to_be_visible(timeout=WAIT_MS)
    sign_in(page, "vic", PASSWORDS["vic"])
    expect(page.get_by_text("You need the admin role to open this page.")).to_be_visible(
        timeout=WAIT_MS
    )
    nav = page.get_by_test_id("stSidebarNav")
    expect(nav.get_by_text("Overview")).to_be_visible(timeout=WAIT_MS)
    expect(nav.get_by_text("Admin")).to_have_count(0, timeout=WAIT_MS)
