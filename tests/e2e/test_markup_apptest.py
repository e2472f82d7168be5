"""Names and texts from MLflow and from people reach every page as escaped Markdown (AppTest).

A hostile model (tests/e2e/hostile_store.py: its name, author, descriptions, tags, data set
columns and importance artifact are Markdown and HTML payloads) is requested for promotion with
a hostile justification and signed by an approver whose display name and comment are hostile
too. Every element that Streamlit renders as Markdown must then hold the escaped form and never
the raw payload; multi-line texts are shown as plain text.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from app.ui.text import md_escape
from tests.e2e import hostile_store as hostile
from tests.e2e.gov_env import page, prepare, store_env, using, workflow_policy

_fixtures = pytest.importorskip("tests.fixtures_mlflow")
demo_data_dir = _fixtures.demo_data_dir

pytestmark = pytest.mark.slow
SIGNER = "mallory"
SIGNER_DISPLAY = "**Chief Risk Officer** :white_check_mark: [verified](https://evil.example)"
COMMENT = "LGTM <img src=x onerror=alert(1)> [details](javascript:alert(1)) $\\pi$ :red[ok]"
RAW = (
    hostile.MODEL,
    hostile.AUTHOR,
    hostile.MARKDOWN,
    hostile.FEATURE,
    SIGNER_DISPLAY,
    COMMENT,
    "**everyone**",
    "[docs](javascript:alert(2))",
)


@pytest.fixture(scope="module")
def world(demo_data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from app.bootstrap import build_governance
    from app.settings import Settings
    from governance.domain import CLI_OPERATOR

    root = tmp_path_factory.mktemp("markup")
    env = store_env(demo_data_dir, root) | {"COUNTERSIGN_POLICY": str(workflow_policy(root))}
    hostile.add_hostile_model(env["MLFLOW_TRACKING_URI"], root / "hostile-artifacts")
    prepare(env)
    facade = build_governance(Settings.from_env(env=env))
    try:
        facade.create_user(CLI_OPERATOR, SIGNER, ["approver"], "mallory-pass-123", SIGNER_DISPLAY)
        req = facade.request_promotion("alice", hostile.MODEL, "1", "champion", hostile.MARKDOWN)
        facade.sign_off(
            SIGNER,
            req.id,
            decision="approve",
            comment=COMMENT,
            content_hash=req.content_hash,
            password="mallory-pass-123",
        )
    finally:
        facade.dispose()
    return {"env": env, "request": req}


@pytest.fixture
def env(world: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    for _ in using(world["env"], monkeypatch):
        yield world


def markdown_bodies(at: AppTest) -> list[str]:
    """Every string of the page that Streamlit renders as Markdown."""
    kinds = ("markdown", "caption", "title", "header", "subheader", "success", "info", "warning")
    bodies = [str(e.value) for kind in (*kinds, "error") for e in getattr(at, kind)]
    for table in at.table:
        frame = table.value
        bodies += [str(c) for c in frame.columns] + [str(v) for v in frame.to_numpy().ravel()]
    bodies += [str(m.label) for m in at.metric] + [str(b.label) for b in at.button]
    bodies += [str(e.label) for e in at.expander] + [str(t.label) for t in at.tabs]
    return bodies


def assert_nothing_raw(at: AppTest) -> list[str]:
    assert not at.exception, [e.value for e in at.exception]
    bodies = markdown_bodies(at)
    for body in bodies:
        for raw in RAW:
            assert raw not in body, f"{raw!r} reaches Markdown unescaped in {body!r}"
        # Countersign writes no HTML into Markdown: every `<` there is an escaped value's.
        assert re.search(r"(?<!\\)<", body) is None, body
    return bodies


def test_the_review_packet_escapes_names_comments_signers_and_evidence(env: dict) -> None:
    at = page("approvals", "erin", request=env["request"].id)
    bodies = assert_nothing_raw(at)
    assert md_escape(hostile.MODEL) in at.subheader[0].value
    assert any(f"run author {md_escape(hostile.AUTHOR)}" in b for b in bodies)
    assert any(md_escape(hostile.IMG) in b and b.startswith("**Drift:**") for b in bodies)
    assert any(md_escape(hostile.FEATURE) in b and "Top features" in b for b in bodies)
    votes = next(t.value for t in at.table if "signer" in t.value.columns)
    assert list(votes["signer"]) == [md_escape(SIGNER_DISPLAY)]
    assert list(votes["comment"]) == [md_escape(COMMENT)]
    assert hostile.MARKDOWN in [t.value for t in at.text]  # the justification, as typed


def test_the_model_page_escapes_name_author_and_shows_descriptions_as_text(env: dict) -> None:
    at = page("models", "alice", model=hostile.MODEL, version="1")
    bodies = assert_nothing_raw(at)
    assert at.header[0].value == md_escape(hostile.MODEL)
    assert f"**Author:** {md_escape(hostile.AUTHOR)}" in bodies
    assert [t.value for t in at.text] == [hostile.DESCRIPTION, hostile.DESCRIPTION]


def test_the_requester_s_list_escapes_the_request_title(env: dict) -> None:
    at = page("promotions", "alice", model=hostile.MODEL, version="1", target="champion")
    bodies = assert_nothing_raw(at)
    assert any(md_escape(hostile.MODEL) in b and "pending" in b for b in bodies)


def test_a_refusal_quoting_a_typed_target_is_escaped(env: dict) -> None:
    at = page("promotions", "admin", model=hostile.MODEL)
    at.text_input(key="bg_version").input("1")
    at.text_input(key="bg_target").input("[x](javascript:alert(1))")
    at.text_area(key="bg_justification").input("incident")
    at.checkbox(key="bg_sure").check()
    at = next(b for b in at.button if b.label == "Break glass and promote now").click().run()
    assert_nothing_raw(at)
    assert any(
        e.value.startswith(md_escape("invalid target '[x](javascript:alert(1))'")) for e in at.error
    )


def test_drift_and_importance_pages_escape_column_feature_and_method_names(env: dict) -> None:
    drift = page("drift", "alice", model=hostile.MODEL, version="1")
    bodies = assert_nothing_raw(drift)
    assert f"Only in the current data, left out: {md_escape(hostile.EXTRA_COLUMN)}" in bodies
    importance = page("feature_importance", "alice", model=hostile.MODEL, versions="1")
    bodies = assert_nothing_raw(importance)
    assert any(md_escape(hostile.MARKDOWN) in b for b in bodies)  # the logged method name
