"""The governance journey in Debian's Chromium against `streamlit run app/main.py`.

A requester asks to make a model version the champion, two approvers each sign it in their own
browser session, the MLflow alias moves, and the activity feed and the audit page show it. It
runs twice: on a copy of the demo MLflow store (diabetes-progression v3, a stage-governed model)
and on a store this test builds itself with MLflow's client (credit-risk v2 against the champion
v1). The governance database is upgraded with `python -m app.cli db upgrade`; on the demo store,
`python -m app.cli seed-demo --if-missing` then writes the demo history as `make run` does, so
erin first finds the seeded request for diabetes-progression v3 -> champion in Approvals with
its drift gate, and the requester's new request for the same target supersedes it. A failing
step leaves a screenshot in test-artifacts/.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, expect

from governance.domain import CLI_OPERATOR, PromotionRequest
from tests import browser_support
from tests.browser_support import ROOT, chromium, failed_since, require_chromium, serve_app
from tests.e2e.gov_env import PASSWORDS, app_env, prepare, store_env

_fixtures = pytest.importorskip("tests.fixtures_mlflow")
demo_data_dir = _fixtures.demo_data_dir

pytestmark = pytest.mark.browser

WAIT_MS = 90_000  # the first page that reads the registry imports MLflow in the server
expect.set_options(timeout=WAIT_MS)
BUILT_MODEL = "credit-risk"


@dataclass(frozen=True)
class Store:
    """A served app and the promotion the journey makes on its store."""

    url: str
    env: dict[str, str]
    model: str  # the first model: every picker starts on it
    version: str  # the candidate that Compare versions proposes (the latest)
    proposed_target: str  # what the request form proposes for this model
    waiting: str = ""  # the seeded request waiting for erin and frank (demo store only)


def build_store(root: Path) -> None:
    """A registry written with MLflow's own client: two versions of a classifier by dora, v1
    holding champion, each from a run with parameters and metrics."""
    from mlflow import MlflowClient

    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = client.create_experiment(
        "credit-scoring", artifact_location=(root / "artifacts").as_uri()
    )
    client.create_registered_model(BUILT_MODEL, description="Scores credit applications")
    for depth, accuracy in ((3, 0.90), (5, 0.92)):
        run = client.create_run(experiment, tags={"mlflow.user": "dora"})
        client.log_param(run.info.run_id, "max_depth", str(depth))
        client.log_metric(run.info.run_id, "accuracy", accuracy)
        client.set_terminated(run.info.run_id)
        client.create_model_version(BUILT_MODEL, f"{run.info.artifact_uri}/model", run.info.run_id)
    client.set_registered_model_alias(BUILT_MODEL, "champion", "1")


@pytest.fixture(scope="module", params=["demo store", "built store"])
def served(
    request: pytest.FixtureRequest, demo_data_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Store]:
    require_chromium()
    root = tmp_path_factory.mktemp("gov-journey")
    if request.param == "demo store":
        env = {**os.environ, **store_env(demo_data_dir, root)}
        promotion = ("diabetes-progression", "3", "Production")
    else:
        build_store(root)
        env = {**os.environ, **app_env(root)}
        promotion = (BUILT_MODEL, "2", "champion")
    env.pop("MLFLOW_REGISTRY_URI", None)
    subprocess.run(
        [sys.executable, "-m", "app.cli", "db", "upgrade"], cwd=ROOT, env=env, check=True
    )
    waiting = ""
    if request.param == "demo store":
        subprocess.run(
            [sys.executable, "-m", "app.cli", "seed-demo", "--if-missing"],
            cwd=ROOT,
            env=env,
            check=True,
        )
        [seeded] = pending_requests(env)
        waiting = seeded.id
    prepare(env, upgrade=False)
    with serve_app(env, root, timeout_s=120) as url:
        yield Store(url, env, *promotion, waiting=waiting)


def pending_requests(env: dict[str, str]) -> tuple[PromotionRequest, ...]:
    from app.bootstrap import build_governance
    from app.settings import Settings

    facade = build_governance(Settings.from_env(env=env))
    try:
        return facade.list_requests(CLI_OPERATOR, state="pending")
    finally:
        facade.dispose()


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


def inbox_buttons(pg: Page) -> Locator:
    return pg.get_by_role("button", name=re.compile(r"^Open request [0-9a-f]{12}$"))


def approve(pg: Page, server: str, name: str, request_id: str, comment: str) -> None:
    sign_in(pg, server, name)
    pg.get_by_role("link", name="Approvals").click()
    expect(inbox_buttons(pg)).to_have_count(1)
    pg.get_by_role("button", name=f"Open request {request_id}").click()
    expect(pg.get_by_text("Why you may sign")).to_be_visible()
    pg.get_by_label("Comment", exact=True).fill(comment)
    pg.get_by_role("textbox", name="Password", exact=True).fill(PASSWORDS[name])
    pg.get_by_role("button", name="Approve").click()


def test_request_two_signatures_alias_moves_and_the_audit_shows_it(
    served: Store, session: Callable[[str], Page]
) -> None:
    server = served.url
    if served.waiting:
        # The seeded demo: erin's inbox holds the request alice made hours ago, gates shown.
        reviewer = session("erin-seeded")
        sign_in(reviewer, server, "erin")
        reviewer.get_by_role("link", name="Approvals").click()
        expect(inbox_buttons(reviewer)).to_have_count(1)
        reviewer.get_by_role("button", name=f"Open request {served.waiting}").click()
        expect(reviewer.get_by_text("Why you may sign")).to_be_visible()
        # st.table shows the gate's "<=" as "≤"
        gate = re.compile(r"^drift share (<=|≤) 0\.5$")
        expect(reviewer.get_by_role("cell", name=gate)).to_be_visible()
        expect(reviewer.get_by_role("cell", name=re.compile(r"^drift share 0\.36"))).to_be_visible()

    alice = session("alice")
    sign_in(alice, server, "alice")
    # Compare versions (the first model, its two latest versions) -> one click to the request.
    alice.get_by_role("link", name="Compare versions").click()
    alice.get_by_role("link", name="Request promotion of the candidate").click()
    # A stage-governed model gets Production proposed; the journey moves an alias, so alice picks
    # champion there.
    target = alice.get_by_role("combobox", name="Target")
    expect(target).to_have_value(served.proposed_target)
    if served.proposed_target != "champion":
        target.click()
        alice.get_by_role("option", name="champion", exact=True).click()
        expect(target).to_have_value("champion")
    expect(alice.get_by_text("current holder")).to_be_visible()
    # One request form on the page, also while the rerun for the new target is still drawing.
    expect(alice.get_by_role("button", name="Submit request")).to_have_count(1)
    alice.get_by_label("Justification", exact=True).fill(f"v{served.version} generalises better")
    alice.get_by_role("button", name="Submit request").click()
    done = alice.get_by_text(re.compile(r"Request [0-9a-f]{12} submitted"))
    expect(done).to_be_visible()
    found = re.search(r"Request ([0-9a-f]{12})", done.inner_text())
    assert found is not None
    request_id = found.group(1)
    if served.waiting:
        # Same model and target: the new request supersedes the seeded one.
        assert [r.id for r in pending_requests(served.env)] == [request_id]

    erin = session("erin")
    approve(erin, server, "erin", request_id, "deltas and gates checked")
    expect(erin.get_by_text("approve recorded (1 of 2 approvals)")).to_be_visible()

    frank = session("frank")
    approve(frank, server, "frank", request_id, "agreed")
    executed = f"Executed: {served.model} v{served.version} now holds champion"
    expect(frank.get_by_text(executed)).to_be_visible()

    from app.bootstrap import build_gateway
    from app.settings import Settings

    gateway = build_gateway(Settings.from_env(env=served.env))
    holder = gateway.version_by_alias(served.model, "champion")
    assert holder is not None
    assert holder.version == served.version

    audrey = session("audrey")
    sign_in(audrey, server, "audrey")
    expect(audrey.get_by_text(f"frank approved request {request_id}").first).to_be_visible()
    audrey.get_by_role("link", name="Audit log").click()
    expect(audrey.get_by_text(re.compile(r"Chain verified up to seq \d+"))).to_be_visible()
    expect(
        audrey.get_by_text(f"execution succeeded for request {request_id}").first
    ).to_be_visible()
