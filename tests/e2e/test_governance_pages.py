"""The governance pages in Streamlit's AppTest over a real MLflow store and governance database.

Pages run in this process: the environment set here is what `Settings.from_env()` reads, and the
caches of `app.deps` are cleared around each test. The signed-in user is put in the session the
way the sign-in gate does; the gate itself is tested by the identity suite.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

import app.deps as deps
from tests.e2e.gov_env import (
    CLASSIFIER,
    PASSWORDS,
    page,
    prepare,
    store_env,
    using,
    workflow_policy,
)
from tests.markdown_text import shown

_fixtures = pytest.importorskip("tests.fixtures_mlflow")
demo_data_dir = _fixtures.demo_data_dir


@pytest.fixture(scope="module")
def gov_env(demo_data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("gov-pages")
    env = store_env(demo_data_dir, root) | {"COUNTERSIGN_POLICY": str(workflow_policy(root))}
    prepare(env)
    return env


@pytest.fixture
def env(gov_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    for _ in using(gov_env, monkeypatch):
        yield gov_env


def request(user: str, target: str, version: str = "3", why: str = "better") -> str:
    """Open a request through the facade (the promotions page is tested on its own)."""
    return deps.get_governance().request_promotion(user, CLASSIFIER, version, target, why).id


def button(at: AppTest, label: str) -> Any:
    return next(b for b in at.button if b.label == label)


def sign(at: AppTest, decision: str, comment: str, password: str) -> AppTest:
    next(t for t in at.text_area if t.label == "Comment").input(comment)
    next(t for t in at.text_input if t.label == "Password").input(password)
    return button(at, decision).click().run()


def texts(at: AppTest, kind: str) -> list[str]:
    return [str(e.value) for e in getattr(at, kind)]


def clean(at: AppTest) -> None:
    assert not at.exception, texts(at, "exception")
    assert not at.error, texts(at, "error")


def test_promotion_page_shows_evidence_and_submits_a_request(env: dict[str, str]) -> None:
    at = page("promotions", "alice", model=CLASSIFIER, version="3", target="champion")
    clean(at)
    assert any("current holder** of champion: v2" in m for m in texts(at, "markdown"))
    assert any("gate(s) pass" in s for s in texts(at, "success"))
    assert any("Evidence SHA-256" in c for c in texts(at, "caption"))
    next(t for t in at.text_area if t.label == "Justification").input("v3 is more accurate")
    at = button(at, "Submit request").click().run()
    clean(at)
    assert any("submitted" in s for s in texts(at, "success"))
    mine = [r for r in deps.requests("alice") if r.requester == "alice"]
    assert (mine[0].target, mine[0].state) == ("champion", "pending")
    assert "Cancel" in [b.label for b in at.button]


@pytest.mark.parametrize(
    ("model", "target"),
    [("tumor-classifier", "champion"), ("diabetes-progression", "Production")],
)
def test_the_target_defaults_to_what_the_model_is_governed_by(
    env: dict[str, str], model: str, target: str
) -> None:
    at = page("promotions", "alice", model=model, version="3")
    clean(at)
    assert next(s for s in at.selectbox if s.label == "Target").value == target


def test_a_blank_justification_is_refused_with_one_line(env: dict[str, str]) -> None:
    at = page("promotions", "alice", model=CLASSIFIER, version="3", target="t-blank")
    at = button(at, "Submit request").click().run()
    assert texts(at, "error") == ["a justification is mandatory"]
    assert not at.exception


def test_compare_versions_links_to_the_request_form_with_the_selection(
    env: dict[str, str],
) -> None:
    at = page("compare_versions", "alice", model=CLASSIFIER, mode="alias", alias="champion")
    links = [m for m in texts(at, "markdown") if "Request promotion" in m]
    assert "promotions?model=tumor-classifier&version=3&target=champion" in links[0]


def test_requester_cancels_an_own_request(env: dict[str, str]) -> None:
    rid = request("alice", "t-cancel")
    at = page("promotions", "alice", model=CLASSIFIER)
    at = at.button(key=f"cancel_{rid}").click().run()
    clean(at)
    assert deps.request_details("alice", rid).request.state == "cancelled"


@pytest.mark.parametrize(
    ("name", "user", "needed"),
    [
        ("promotions", "erin", "admin or requester"),
        ("approvals", "alice", "approver"),
        ("audit", "vic", "admin or auditor"),
    ],
)
def test_a_page_refuses_a_user_without_the_role(
    env: dict[str, str], name: str, user: str, needed: str
) -> None:
    at = page(name, user)
    assert texts(at, "error") == [f"You need the {needed} role to open this page."]
    assert not at.exception


def test_inbox_opens_the_review_packet_and_a_wrong_password_records_nothing(
    env: dict[str, str],
) -> None:
    rid = request("alice", "t-packet")
    at = page("approvals", "erin")
    clean(at)
    at = button(at, f"Open request {rid}").click().run()
    clean(at)
    details = deps.request_details("erin", rid)
    assert any(details.request.evidence_hash in c for c in texts(at, "caption"))
    assert any("Why you may sign" in i for i in texts(at, "info"))
    assert {"Approve", "Reject"} <= {b.label for b in at.button}
    at = sign(at, "Approve", "looks fine", "not-her-password")
    assert texts(at, "error") == ["invalid user name or password"]
    assert deps.request_details("erin", rid).votes == ()
    at = sign(at, "Approve", "", PASSWORDS["erin"])
    assert texts(at, "error") == ["a comment is mandatory"]
    assert deps.request_details("erin", rid).votes == ()


def test_self_approval_is_refused(env: dict[str, str]) -> None:
    rid = request("sam", "t-self")
    at = page("approvals", "sam", request=rid)
    assert any("you requested it" in w for w in texts(at, "warning"))
    at = sign(at, "Approve", "my own", PASSWORDS["sam"])
    assert texts(at, "error") == ["separation of duties: the requester may not approve the request"]
    assert deps.request_details("sam", rid).votes == ()


def test_a_double_submit_records_one_vote_and_the_deciding_vote_executes(
    env: dict[str, str],
) -> None:
    rid = request("alice", "champion")
    first, second = page("approvals", "erin", request=rid), page("approvals", "erin", request=rid)
    first = sign(first, "Approve", "checked", PASSWORDS["erin"])
    clean(first)
    assert "approve recorded (1 of 2 approvals)" in map(shown, texts(first, "success"))
    # A second delivery of the click (a stale tab with the same form) records nothing more.
    second = sign(second, "Approve", "checked", PASSWORDS["erin"])
    assert "already recorded: you signed this request (approve)" in map(
        shown, texts(second, "warning")
    )
    assert len(deps.request_details("erin", rid).votes) == 1
    at = sign(page("approvals", "frank", request=rid), "Approve", "ok", PASSWORDS["frank"])
    clean(at)
    assert any(
        "Executed: tumor-classifier v3 now holds champion" in shown(s) for s in texts(at, "success")
    )
    assert deps.get_gateway().version_by_alias(CLASSIFIER, "champion").version == "3"
    feed = shown("\n".join(texts(page("models", "alice", model=CLASSIFIER), "markdown")))
    assert f"frank approved request {rid}" in feed
    assert "execution succeeded" in feed


def test_a_rejection_closes_the_request(env: dict[str, str]) -> None:
    rid = request("alice", "t-reject")
    at = sign(page("approvals", "frank", request=rid), "Reject", "no", PASSWORDS["frank"])
    clean(at)
    assert deps.request_details("frank", rid).request.state == "rejected"
    assert any("rejected" in w for w in texts(at, "warning"))


def test_audit_page_verifies_filters_and_builds_the_bundle(env: dict[str, str]) -> None:
    request("alice", "t-audit")
    at = page("audit", "audrey", actor="alice", action="request_created")
    clean(at)
    assert any(s.startswith("Chain verified up to seq") for s in texts(at, "success"))
    feed = "\n".join(texts(at, "markdown"))
    assert "t\\-audit" in feed
    assert "user created" not in feed
    at = button(at, "Build the audit bundle (every model)").click().run()
    clean(at)
    assert at.session_state["audit_bundle_bytes"][:2] == b"PK"


def test_the_audit_log_opened_from_the_menu_shows_every_model(env: dict[str, str]) -> None:
    # What the Models page leaves behind after a reviewer looked at the classifier.
    left = {"qp_model": CLASSIFIER, "_qp_written_model": CLASSIFIER}
    at = page("audit", "audrey", state=left)
    clean(at)
    assert at.selectbox(key="audit_model").value == ""
    assert "model" not in at.query_params
    at = page("audit", "audrey", model=CLASSIFIER)
    assert at.selectbox(key="audit_model").value == CLASSIFIER


def test_break_glass_is_admin_only_and_loudly_marked(env: dict[str, str]) -> None:
    assert "Break glass and promote now" not in [
        b.label for b in page("promotions", "alice").button
    ]
    at = page("promotions", "admin", model=CLASSIFIER)
    at.text_input(key="bg_version").input("1")
    at.text_input(key="bg_target").input("t-glass")
    at.text_area(key="bg_justification").input("incident 42")
    at.text_input(key="bg_password").input("not the admin's password")
    at.checkbox(key="bg_sure").check()
    at = button(at, "Break glass and promote now").click().run()
    assert "invalid user name or password" in texts(at, "error")  # nothing moved
    at.text_input(key="bg_password").input(PASSWORDS["admin"])
    at = button(at, "Break glass and promote now").click().run()
    assert any(e.startswith("BREAK-GLASS executed") for e in texts(at, "error"))
    assert deps.get_gateway().version_by_alias(CLASSIFIER, "t-glass").version == "1"


def test_reconcile_flags_out_of_band_changes_on_overview_and_models(env: dict[str, str]) -> None:
    at = page("overview", "admin")
    at = button(at, "Reconcile with MLflow").click().run()
    # Names from MLflow are escaped for Markdown in the banners; compare the text shown.
    banners = [shown(e) for e in texts(at, "error") if e.startswith("Out-of-band")]
    assert any("diabetes-progression stage Production" in b for b in banners)
    models = page("models", "alice", model="diabetes-progression")
    assert any("Out-of-band change" in e for e in texts(models, "error"))


def test_a_failed_execution_is_shown_and_the_retry_button_executes_it(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from governance.errors import RegistryUnavailable

    rid = request("alice", "t-retry")
    registry = deps.get_governance().context.registry

    def unreachable(model: str, alias: str, version: str) -> None:
        raise RegistryUnavailable("MLflow is unreachable")

    # The registry goes away between the decision and its execution (a fault, injected).
    with monkeypatch.context() as patched:
        patched.setattr(registry, "set_alias", unreachable)
        at = sign(page("approvals", "erin", request=rid), "Approve", "fine", PASSWORDS["erin"])
    assert any(e.startswith("Execution failed") for e in texts(at, "error"))
    assert deps.request_details("erin", rid).request.state == "execution_failed"
    at = button(at, "Retry").click().run()
    clean(at)
    assert deps.request_details("erin", rid).request.state == "executed"
    assert deps.get_gateway().version_by_alias(CLASSIFIER, "t-retry").version == "3"


def test_a_vote_soon_after_an_admin_reset_the_signers_password_is_flagged_on_the_packet(
    env: dict[str, str],
) -> None:
    gov = deps.get_governance()
    gov.reset_password("admin", "frank", "set-by-admin-1")
    gov.change_password("frank", "set-by-admin-1", PASSWORDS["frank"])  # his own again
    rid = request("alice", "t-reset")
    at = sign(page("approvals", "frank", request=rid), "Reject", "not yet", PASSWORDS["frank"])
    clean(at)
    warnings = texts(at, "warning")
    assert any(
        "password of **frank** was reset by **admin**" in w and "reject vote" in w for w in warnings
    ), warnings


def test_a_put_back_move_and_the_history_with_rollback_links_show_on_the_pages(
    env: dict[str, str],
) -> None:
    facade = deps.get_governance()
    admin = {"password": PASSWORDS["admin"]}
    facade.break_glass("admin", CLASSIFIER, "1", "t-hist", "first holder", **admin)
    facade.break_glass("admin", CLASSIFIER, "2", "t-hist", "second holder", **admin)
    facade.context.registry.set_alias(CLASSIFIER, "t-hist", "3")  # outside the ledger
    facade.put_back("admin", CLASSIFIER, "t-hist")
    assert deps.get_gateway().version_by_alias(CLASSIFIER, "t-hist").version == "2"

    overview = page("overview", "alice")  # earlier tests left open findings: banners, no failure
    assert not overview.exception
    notes = [shown(w) for w in texts(overview, "warning") if "put back" in w]
    assert any(f"{CLASSIFIER} alias t-hist" in n and "back on v2" in n for n in notes)

    models = page("models", "alice", model=CLASSIFIER)
    assert not models.exception
    body = shown(" ".join(texts(models, "markdown")))  # link labels are escaped Markdown
    assert "Request rollback to this version (v1 on t-hist)" in body
    assert "rollback_version=1" in body
    table = next(f.value for f in models.dataframe if "how" in f.value.columns)
    held = table[table["target"] == "alias t-hist"]
    # t-hist was set for the first time by the first break-glass: no holder before it
    assert list(held["how"]) == [
        "by request", "by request", "OUT OF BAND", "put back by Countersign",
    ]  # fmt: skip
    assert list(held["version"]) == ["v1", "v2", "v3", "v2"]

    link = {"model": CLASSIFIER, "rollback_target": "t-hist", "rollback_version": "1"}
    form = page("promotions", "alice", **link)
    next(t for t in form.text_area if t.label == "Rollback justification").input("v1 was better")
    form = button(form, "Request rollback").click().run()
    assert not form.exception
    assert any(
        "Rollback request" in s and "v1 → t-hist" in s for s in map(shown, texts(form, "success"))
    )
