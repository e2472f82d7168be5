"""The Monitoring page, a batch's Drift view and the alert panels: AppTest on a copy of the demo
store with scored batches, and Debian's Chromium clicking a batch on the timeline.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

import app.deps as deps
from app.entities import SignedInUser
from app.ui.guard import SESSION_KEY
from tests import browser_support
from tests.browser_support import ROOT, chromium, serve_app
from tests.e2e.gov_env import PASSWORDS
from tests.e2e.monitoring_env import DAYS, MODEL, build
from tests.markdown_text import shown

pytestmark = pytest.mark.slow
TIMEOUT = 120
USERS = {"erin": ("approver",), "vic": ("viewer",)}


@pytest.fixture(scope="module")
def store(demo_data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Three dated batches for v2 (the champion) and one for v3 (the challenger)."""
    from app.batch_monitoring import sources
    from app.bootstrap import build_batch_monitoring, build_governance
    from app.settings import Settings

    root = tmp_path_factory.mktemp("monitor-pages")
    env = build(demo_data_dir, root)
    facade = build_governance(Settings.from_env(env=env))
    service = build_batch_monitoring(Settings.from_env(env=env), facade)
    ids = []
    for found in sources.expand([str(root / "batches")]):
        outcome = service.run(
            "system:cli", MODEL, "2", found, label="target", prediction="prediction"
        )
        ids.append(outcome.batch.batch_id)
    gone = root / "gone-2026-11-09.parquet"
    frame = service.read_source(sources.expand([str(root / "batches")])[0]).head(60)
    frame.to_parquet(gone, index=False)
    ids.append(service.run("system:cli", MODEL, "3", sources.parse(str(gone))).batch.batch_id)
    gone.unlink()  # its verdict stays; the data to rebuild a report does not
    findings = service.findings("system:cli", MODEL)
    facade.dispose()
    return {"env": env, "ids": ids, "findings": findings}


@pytest.fixture
def as_user(store: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for key, value in store["env"].items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    deps.clear_caches()

    def page(user: str, name: str, **query: str) -> AppTest:
        at = AppTest.from_file(str(ROOT / "pages" / f"{name}.py"), default_timeout=TIMEOUT)
        now = datetime.now(UTC)
        at.session_state[SESSION_KEY] = SignedInUser(user, USERS[user], "local", now, now)
        at.query_params.update(query)
        return at.run(timeout=TIMEOUT)

    yield page
    deps.clear_caches()


def texts(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption]
    parts += [s.value for s in at.subheader] + [i.value for i in at.info]
    return shown("\n".join(str(p) for p in parts))  # the text as read, escapes resolved


def test_the_timeline_shows_every_batch_with_the_policys_lines_and_alerts(
    store: dict[str, Any], as_user: Any
) -> None:
    at = as_user("vic", "monitoring", model=MODEL, version="2")
    assert not at.exception, [e.value for e in at.exception]
    assert "Timeline" in [s.value for s in at.subheader]
    charts = at.get("plotly_chart")
    assert len(charts) == 2  # the timeline and v2's heatmap
    assert "models: 'tumor-*'" in texts(at)
    assert len(at.dataframe[0].value) == len(DAYS)
    box = at.selectbox(key="batch_v2")
    assert box.options == [
        f"{d} 00:00 · {b}" for d, b in zip(reversed(DAYS), reversed(store["ids"][:3]), strict=True)
    ]
    for batch_id in store["ids"][:3]:  # every batch is one choice and one link from Drift
        box = at.selectbox(key="batch_v2").set_value(batch_id)
        at.run(timeout=TIMEOUT)
        assert f"batch={batch_id})" in texts(at)
    open_v2 = [f for f in store["findings"] if f.version == "2"]
    assert open_v2
    assert [e.value for e in at.error if "Monitoring alert" in e.value]
    assert not at.get("form")  # a viewer may neither score batches nor close findings


def test_overlaying_champion_and_challenger_draws_both(store: dict[str, Any], as_user: Any) -> None:
    at = as_user("vic", "monitoring", model=MODEL, version="2", overlay="1")
    assert not at.exception
    figure = at.get("plotly_chart")[0].proto.spec
    assert '"name":"v2"' in figure.replace(" ", "")
    assert '"name":"v3"' in figure.replace(" ", "")
    assert "v3: per-column drift (top drifting columns first)" in texts(at)


def test_a_person_closes_an_alert_with_a_comment_on_overview(
    store: dict[str, Any], as_user: Any
) -> None:
    finding = next(f for f in store["findings"] if f.version == "2")
    at = as_user("erin", "overview")
    assert any(finding.id in e.value for e in at.error)
    field = next(t for t in at.text_input if t.label == f"Comment closing finding {finding.id}")
    field.input("scanner recalibrated")
    next(b for b in at.button if b.label == f"Close finding {finding.id}").click()
    at.run(timeout=TIMEOUT)
    assert f"Finding {finding.id} closed." in [shown(s.value) for s in at.success]
    at = as_user("erin", "models", model=MODEL)
    assert not any(finding.id in e.value for e in at.error)


def test_a_batch_opens_in_drift_with_its_stored_verdict(
    store: dict[str, Any], as_user: Any
) -> None:
    batch_id = store["ids"][0]
    at = as_user("vic", "drift", model=MODEL, version="2", batch=batch_id)
    assert not at.exception, [e.value for e in at.exception]
    assert f"Batch {batch_id} of tumor\\-classifier v2" in [s.value for s in at.subheader]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Drifted columns"].endswith("of 31")
    assert "Back to the monitoring timeline" in texts(at)


def test_a_batch_whose_data_is_gone_keeps_its_verdict(store: dict[str, Any], as_user: Any) -> None:
    at = as_user("vic", "drift", model=MODEL, version="3", batch=store["ids"][-1])
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error
    assert "cannot be read again" in texts(at)
    assert at.metric  # the verdict is shown from the database


@pytest.mark.browser
def test_clicking_a_batch_on_the_timeline_opens_its_drift_view(
    store: dict[str, Any], tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    env = {**os.environ, **store["env"], "PYTHONPATH": str(ROOT)}
    with serve_app(env, tmp_path) as url, chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        expect.set_options(timeout=90_000)
        with browser_support.screenshot_on_failure(page, "monitoring-click-batch"):
            page.goto(f"{url}/monitoring?model={MODEL}&version=2")
            browser_support.sign_in(page, "erin", PASSWORDS["erin"])
            expect(page.get_by_text("Timeline", exact=True)).to_be_visible()
            point = page.locator(".js-plotly-plot .scatterlayer .trace .points path").first
            expect(point).to_be_attached()
            point.scroll_into_view_if_needed()
            box = point.bounding_box()
            assert box is not None
            page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            expect(page).to_have_url(f"{url}/drift?model={MODEL}&version=2&batch={store['ids'][0]}")
            heading = f"Batch {store['ids'][0]} of {MODEL} v2"
            expect(page.get_by_role("heading", name=heading)).to_be_visible()
            expect(page.get_by_text("Data set drift")).to_be_visible()
