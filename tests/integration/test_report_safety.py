"""Evidently's real report on hostile data: made safe, with the same data and the same code.

The browser side (the report renders, nothing from the data runs) is in
tests/e2e/test_drift_browser.py; this checks the transformation itself on Evidently's output.
"""

from __future__ import annotations

import json
import re

import pytest

from app.entities import DriftConfig
from app.reports.evidently_report import run_preset
from app.reports.safe_html import safe_report_html
from tests.e2e import hostile_store as hostile

pytestmark = pytest.mark.slow
SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)
DATA = re.compile(r"var (?:additional_graphs_)?metric_[0-9a-f]{32} = ")


@pytest.fixture(scope="module")
def pages() -> tuple[str, str]:
    reference, current = hostile.hostile_frames()
    current = current.drop(columns=[hostile.EXTRA_COLUMN])
    snapshot = run_preset(reference, current, DriftConfig(), with_summary=True)
    raw = snapshot.get_html_str(as_iframe=False)
    return raw, safe_report_html(raw)


def _data(html: str) -> list[object]:
    """The two JSON values of the data block, decoded."""
    block = html[html.index("<script>") :]
    decoder = json.JSONDecoder()
    return [decoder.raw_decode(block, m.end())[0] for m in DATA.finditer(block)][:2]


def test_evidently_s_raw_report_lets_the_data_close_its_script_block(pages) -> None:
    raw, _ = pages
    assert hostile.CLOSE_SCRIPT in raw  # what a browser would run without the escaping


def test_the_safe_report_holds_the_same_data_without_any_raw_payload(pages) -> None:
    raw, safe = pages
    for payload in hostile.SCRIPT_PAYLOADS:
        assert payload not in safe
    assert _data(safe) == _data(raw)
    assert len(_data(safe)) == 2


def test_evidently_s_own_scripts_are_unchanged_and_the_only_ones_allowed(pages) -> None:
    raw, safe = pages
    scripts = SCRIPT.findall(safe)
    assert len(scripts) == 4  # data, `global`, Evidently's library, the draw call
    assert scripts[1] in raw
    assert scripts[2] in raw
    assert scripts[3] in raw
    policy = re.search(r'Content-Security-Policy" content="([^"]+)"', safe)
    assert policy is not None
    allowed = re.findall(r"'sha256-[^']+'", policy.group(1))
    assert len(allowed) == 4
