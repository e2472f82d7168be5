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
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests import browser_support
from tests.browser_support import ROOT, chromium, failed_since, require_chromium, serve_app
from tests.e2e.gov_env import PASSWORDS, prepare, store_env

_fixtures = pytest.importorskip("tests.fixtures_mlflow")
demo_data_dir = _fixtures.demo_data_dir

pytestmark = pytest.mark.browser

MODEL = "diabetes-progression"  # the first model: every picker starts on it
WAIT_MS = 90_000  # the first page that reads the registry imports MLflow in the server
expect.set_options(timeout=WAIT_MS)


@pytest.fixture(scope="module")
def served(
    demo_data_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, dict[str, str]]]:
    require_chromium()
    root = tmp_path_factory.mktemp("gov-journey")
    env = {**os.environ, **store_env(demo_data_dir, root)}
    env.pop("MLFLOW_REGISTRY_URI", None)
    subprocess.run(
        [sys.executable, "-m", "app.cli", "db", "upgrade"], cwd=ROOT, env=env, check=True
    )
    prepare(env, upgrade=False)
    with serve_app(env, root, timeout_s=120) as url:
        yield url, env


@pytest.fixture
def session(request: pytest.FixtureRequest) -> Iterator[Callable[[str], Page]]:
    """Opens one browser context per person (their own sign-in); screenshots on failure."""
    with chromium() as browser:
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
            if failed_since(request, failed_before) or sys.exc_info()[0] is not None:
                for name, pg in pages.items():
                    browser_support.screenshot(pg, f"{request.node.name}-{name}")


def sign_in(pg: Page, url: str, name: str) -> None:
    pg.goto(url)
    browser_support.sign_in(pg, name, PASSWORDS[name])


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
    # diabetes-progression is governed by stages, so the form proposes Production; the journey
    # moves an alias, so alice picks champion.
    target = alice.get_by_role("combobox", name="Target")
    expect(target).to_have_value("Production")
    target.click()
    alice.get_by_role("option", name="champion", exact=True).click()
    expect(target).to_have_value("champion")
    expect(alice.get_by_text("current holder")).to_be_visible()
    # One request form on the page, also while the rerun for the new target is still drawing.
    expect(alice.get_by_role("button", name="Submit request")).to_have_count(1)
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
