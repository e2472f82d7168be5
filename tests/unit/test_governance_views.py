"""Who may sign what, as the approval inbox and the review packet explain it, and how audit
entries read in the activity feeds. The service decides again at signing; these are the hints."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from app.governance_views import eligibility, summarise
from governance.audit import GENESIS_HASH, seal
from governance.domain import PromotionRequest, RequestDetails, Vote
from governance.policy import Policy, load_policy_file

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
DEFAULT_POLICY = Path(__file__).resolve().parents[2] / "governance" / "default_policy.yaml"


@dataclass
class PolicyOnly:
    """The one facade attribute `eligibility` reads."""

    policy: Policy


def details(state: str = "pending", votes: tuple[Vote, ...] = ()) -> RequestDetails:
    request = PromotionRequest(
        id="r1",
        model="tumor-classifier",
        version="3",
        target="champion",
        target_kind="alias",
        requester="alice",
        justification="better",
        state=state,
        created_at=NOW,
        expires_at=NOW + timedelta(days=7),
        policy_hash="p",
        evidence='{"candidate":{"run_author":"carol"}}',
        evidence_hash="e",
        content_hash="c",
    )
    return RequestDetails(request, votes, None, (), 2, 0, ("approver",))


def vote(approver: str) -> Vote:
    return Vote("r1", approver, "approve", "ok", "approver", NOW, "Approval", "password", "c")


@pytest.mark.parametrize(
    ("actor", "roles", "state", "votes", "may_sign", "may_approve", "reason"),
    [
        ("erin", ("approver",), "pending", (), True, True, "you hold the role approver"),
        ("alice", ("requester", "approver"), "pending", (), True, False, "you requested it"),
        ("carol", ("approver",), "pending", (), True, False, "you authored the version's run"),
        ("vic", ("viewer",), "pending", (), False, False, "signing needs the role approver"),
        ("erin", ("approver",), "pending", ("erin",), False, False, "already recorded"),
        ("erin", ("approver",), "executed", (), False, False, "the request is executed"),
    ],
)
def test_eligibility_says_who_may_sign_and_why(
    actor: str,
    roles: tuple[str, ...],
    state: str,
    votes: tuple[str, ...],
    may_sign: bool,
    may_approve: bool,
    reason: str,
) -> None:
    facade = PolicyOnly(load_policy_file(DEFAULT_POLICY))
    found = eligibility(facade, actor, roles, details(state, tuple(vote(v) for v in votes)))  # type: ignore[arg-type]
    assert (found.may_sign, found.may_approve) == (may_sign, may_approve)
    assert reason in found.reason


@pytest.mark.parametrize(
    ("action", "payload", "expected"),
    [
        (
            "request_created",
            {"model": "m", "version": "3", "target": "champion", "justification": "why"},
            "alice requested m v3 → champion: why",
        ),
        ("vote_recorded", {"decision": "reject", "comment": "no"}, "alice rejected request r1: no"),
        (
            "execution_succeeded",
            {"model": "m", "version": "3", "target": "champion", "detail": ""},
            "execution succeeded for request r1: m v3 → champion",
        ),
    ],
)
def test_audit_entries_read_as_one_sentence(action: str, payload: dict, expected: str) -> None:
    record = seal(
        prev_hash=GENESIS_HASH,
        seq=1,
        moment=NOW,
        actor="alice",
        action=action,
        object_type="request",
        object_id="r1",
        payload=payload,
    )
    assert summarise(record) == expected


def test_an_out_of_band_change_reads_loudly() -> None:
    record = seal(
        prev_hash=GENESIS_HASH,
        seq=1,
        moment=NOW,
        actor="system:cli",
        action="out_of_band_change",
        object_type="target",
        object_id="m/alias/champion",
        payload={"target_kind": "alias", "target": "champion", "registry_versions": ["2"]},
    )
    assert summarise(record).startswith("OUT-OF-BAND: alias champion is held by v2")
