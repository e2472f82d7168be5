"""The drift and feature-importance pages in Chromium against `streamlit run` on a copy of the
demo store that also holds a hostile model (tests/e2e/hostile_store.py): its column names and
values try to run script in a reviewer's session through Evidently's report.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.browser_support import (
    chromium,
    require_chromium,
    screenshot_on_failure,
    serve_app,
    sign_in,
)
from tests.e2e import hostile_store as hostile
from tests.e2e.identity_env import ACCOUNTS, build_governance_db

pytestmark = [pytest.mark.browser, pytest.mark.slow]
WAIT_MS = 180_000  # the first drift view imports mlflow and reads artifacts on a busy machine
VIEWER = next((name, password) for name, role, password in ACCOUNTS if role == "viewer")


@pytest.fixture(scope="module")
def server(demo_data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    require_chromium()
    folder = tmp_path_factory.mktemp("drift-browser")
    env = {**os.environ, **build_governance_db(folder)}
    shutil.copy(demo_data_dir / "mlflow.db", folder / "mlflow.db")
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{folder / 'mlflow.db'}"
    env.pop("MLFLOW_REGISTRY_URI", None)
    hostile.add_hostile_model(env["MLFLOW_TRACKING_URI"], folder / "hostile-artifacts")
    with serve_app(env, folder, timeout_s=120) as url:
        yield url


@pytest.fixture
def tab(server: str) -> Iterator[object]:
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(WAIT_MS)
        yield page


def _open_signed_in(tab, url: str) -> None:
    tab.goto(url)  # the page in the URL survives signing in
    sign_in(tab, *VIEWER)


def _no_error(tab) -> None:
    assert tab.locator('[data-testid="stAlertContentError"]').count() == 0
    assert tab.locator('[data-testid="stException"]').count() == 0


def test_drift_page_shows_the_verdict_and_then_evidently_s_report(server: str, tab) -> None:
    _open_signed_in(tab, f"{server}/drift?model=diabetes-progression&version=2")
    tab.get_by_role("heading", name="Drift", exact=True).wait_for()
    tab.get_by_text("Drifted columns").first.wait_for()
    tab.get_by_text("Share drifted").first.wait_for()  # table cells live on a canvas
    tab.get_by_role("tab", name="Evidently report").click()
    # Evidently builds in the background; the fragment polls every 2 s
    with screenshot_on_failure(tab, "drift-browser"):
        tab.get_by_text("Download report (HTML)").first.wait_for(timeout=2 * WAIT_MS)
    tab.locator("iframe").first.wait_for()
    _no_error(tab)


def test_feature_importance_page_compares_versions(server: str, tab) -> None:
    _open_signed_in(tab, f"{server}/feature_importance?model=tumor-classifier&versions=1,3")
    tab.get_by_role("heading", name="Feature importance", exact=True).wait_for()
    tab.get_by_text("v1: artifact (impurity)").first.wait_for()  # logged, never loaded
    tab.get_by_role("tab", name="Drift by importance").click()
    tab.get_by_text("features of v3 that drifted").first.wait_for()
    _no_error(tab)


# ---- hostile data: nothing an MLflow writer logs may run as script in a reviewer's session ----

TITLE_AND_GLOBALS = "() => [window.top.document.title, window.top.__pwned, window.__ran]"


def _nothing_ran(tab, title: str) -> None:
    """The top page keeps its title and no frame saw a payload run (any frame may be asked)."""
    for frame in tab.frames:
        seen = frame.evaluate("() => [window.__ran, window.__pwned]")
        assert seen == [None, None], f"a payload ran in {frame.url}: {seen}"
    assert tab.evaluate(TITLE_AND_GLOBALS) == [title, None, None]


def _loaded_frame(locator):
    frame = locator.first.element_handle().content_frame()
    frame.wait_for_load_state("load")
    return frame


def _data_block(html: str) -> str:
    """The text of the report's first script block (Evidently's data, escaped)."""
    start = html.index("<script>")
    return html[start : html.index("</script>", start)]


def _assert_safe_report(html: str) -> None:
    for payload in hostile.SCRIPT_PAYLOADS:
        assert payload not in html, f"raw payload in the report: {payload!r}"
    assert "\\u003c/script\\u003e\\u003cscript\\u003ewindow.top.__pwned" in _data_block(html)
    # A javascript: URL has no markup to escape: it may only stand inside the JSON strings.
    assert html.count(hostile.JS_URL) == _data_block(html).count(hostile.JS_URL) > 0
    assert re.search(r"<head>\s*<meta http-equiv=\"Content-Security-Policy\"", html)


def test_hostile_data_never_runs_as_script_in_evidently_s_report(server: str, tab) -> None:
    _open_signed_in(tab, f"{server}/drift?model={quote(hostile.MODEL)}&version=1")
    tab.get_by_role("heading", name="Drift", exact=True).wait_for()
    tab.get_by_text("Drifted columns").first.wait_for()
    title = tab.title()
    assert title != "PWNED"
    tab.get_by_role("tab", name="Evidently report").click()
    with screenshot_on_failure(tab, "drift-hostile-report"):
        tab.get_by_text("Download report (HTML)").first.wait_for(timeout=2 * WAIT_MS)
        outer = _loaded_frame(tab.locator('[data-testid="stIFrame"]'))
        _nothing_ran(tab, title)  # a payload runs while the page is parsed, before "load"
        inner = _loaded_frame(outer.locator("iframe"))
        _nothing_ran(tab, title)
        # Evidently's own code still runs: its tables and charts are drawn, payloads as text.
        inner.get_by_text("Dataset Drift").first.wait_for()
        inner.locator("svg.main-svg").first.wait_for()
        inner.get_by_text(hostile.CLOSE_SCRIPT).first.wait_for()
        _nothing_ran(tab, title)
    # The report's frame has an opaque origin: it cannot read the app's document.
    reach = "() => { try { return !!window.top.document; } catch { return 'refused'; } }"
    assert inner.evaluate(reach) == "refused"
    assert outer.locator("script").count() == 0
    with tab.expect_download() as download:
        tab.get_by_text("Download report (HTML)").first.click()
    _assert_safe_report(Path(download.value.path()).read_text(encoding="utf-8"))


def test_values_in_captions_render_as_plain_text(server: str, tab) -> None:
    _open_signed_in(tab, f"{server}/drift?model={quote(hostile.MODEL)}&version=1")
    caption = tab.locator('[data-testid="stCaptionContainer"]', has_text="left out").first
    caption.wait_for()
    shown = caption.inner_text().replace("\u2060", "")
    assert shown == f"Only in the current data, left out: {hostile.EXTRA_COLUMN}"
    for markup in ("a", "strong", "b", "img", ".katex", "del", "span[class*=color]"):
        assert caption.locator(markup).count() == 0, markup


def test_link_labels_render_as_plain_text(server: str, tab) -> None:
    _open_signed_in(tab, f"{server}/")  # Overview, the default page
    link = tab.get_by_role("link", name=f"Open {hostile.MODEL}", exact=True)
    link.wait_for()
    assert link.locator("a, strong, img, .katex, del").count() == 0


def test_cli_writes_the_same_safe_report(tab, tmp_path: Path, monkeypatch) -> None:
    from app.cli import main

    monkeypatch.setenv("COUNTERSIGN_DATA_DIR", str(tmp_path / "data"))
    reference, current = hostile.hostile_frames()
    reference.to_parquet(tmp_path / "reference.parquet")
    current.drop(columns=[hostile.EXTRA_COLUMN]).to_parquet(tmp_path / "current.parquet")
    out = tmp_path / "report.html"
    args = ["drift", "--reference", str(tmp_path / "reference.parquet")]
    args += ["--current", str(tmp_path / "current.parquet"), "--json", str(tmp_path / "v.json")]
    assert main([*args, "--html", str(out)]) == 0
    _assert_safe_report(out.read_text(encoding="utf-8"))
    tab.goto(out.as_uri())  # the file on its own, as a person who downloaded it opens it
    with screenshot_on_failure(tab, "drift-hostile-cli"):
        tab.get_by_text("Dataset Drift").first.wait_for()
        tab.locator("svg.main-svg").first.wait_for()
        tab.get_by_text(hostile.IMG).first.wait_for()
    title = tab.title()
    assert title != "PWNED"
    assert tab.evaluate("() => [window.__pwned, window.__ran]") == [None, None]


# ---- hostile names in Plotly charts: text, never a link, a style or a hover template ----------

SHOWN = "(el) => el.textContent"


def _chart_has_no_markup_from_the_data(chart) -> None:
    assert chart.locator("a").count() == 0  # Plotly draws <a href> as an SVG link
    assert chart.locator('[style*="100px"]').count() == 0  # nor restyles with <span style>
    assert chart.locator('[style*="font-weight:bold"]').count() == 0  # nor bolds with <b>


def test_names_in_charts_are_shown_as_text_not_plotly_markup(server: str, tab) -> None:
    _open_signed_in(tab, f"{server}/drift?model={quote(hostile.MODEL)}&version=1")
    tab.get_by_role("heading", name="Drift", exact=True).wait_for()
    tab.get_by_role("tab", name="Scores").click()
    scores = tab.locator('[data-testid="stPlotlyChart"]').first
    with screenshot_on_failure(tab, "drift-hostile-chart"):
        tick = scores.locator(".xtick text", has_text="evil link").first
        tick.wait_for()
        _chart_has_no_markup_from_the_data(scores)
        assert tick.evaluate(SHOWN) == hostile.PLOTLY
        # A column's distribution: its name is the axis title and part of Plotly's hover template.
        tab.get_by_role("tab", name="Distributions").click()
        column = tab.get_by_role("combobox", name="Column")
        column.click()
        tab.get_by_role("option", name=hostile.PLOTLY, exact=True).click()
        chart = tab.locator('[data-testid="stPlotlyChart"]:visible').first
        title = chart.locator(".g-xtitle text", has_text="evil link").first
        title.wait_for()
        _chart_has_no_markup_from_the_data(chart)
        assert title.evaluate(SHOWN) == hostile.PLOTLY
        bars = chart.locator(".trace.bars .point path")
        heights = bars.evaluate_all("(els) => els.map((el) => el.getBBox().height)")
        tallest = bars.nth(heights.index(max(heights)))
        tallest.scroll_into_view_if_needed()
        bar = tallest.bounding_box()  # the drag layer above it takes the pointer events
        tab.mouse.move(bar["x"] + bar["width"] / 2, bar["y"] + bar["height"] / 2, steps=4)
        hover = chart.locator(".hoverlayer .hovertext").first
        hover.wait_for()
        assert f"{hostile.PLOTLY}=" in hover.evaluate(SHOWN)  # "%{y}" stays as typed
        _chart_has_no_markup_from_the_data(chart)  # the hover label too
    _no_error(tab)
