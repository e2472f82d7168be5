"""A database insider with SQL access but no seal key cannot subvert a sign-off or its record.

On a real SQLite file and a real PostgreSQL database, through the service facade and the CLI:
a vote row inserted for an approver who never signed does not complete the quorum; a request
flipped to approved with a forged decision is not executed; a role granted with SQL signs
nothing; an entry appended at the head with recomputed hashes is named by `audit verify` and
stops `audit checkpoint`. Each attack is written the way a SQL client would write it (the
tables as the database describes them), so the same tests run against the code from before
sealed records, where every one of them succeeds.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, text

from app.bootstrap import build_governance
from app.facade import GovernanceFacade
from governance.db import make_engine
from governance.domain import CLI_OPERATOR
from governance.errors import GovernanceError
from tests.integration.insider import append_entry, insert_row
from tests.integration.test_checkpoint_rewrite import World, make_world
from tests.unit.fakes import PASSWORD, FakeHasher, FakeRegistry

QUORUM_2 = "version: 1\ndefaults: {approver_roles: [approver], quorum: 2, expires_after: 7d}\n"
SIGNED_AT = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)


@dataclass
class Office:
    world: World
    facade: GovernanceFacade
    registry: FakeRegistry
    engine: Engine

    def events(self, action: str) -> list[dict[str, object]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                text("SELECT seq, actor, object_id, payload FROM audit_events WHERE action = :a"),
                {"a": action},
            ).all()
        return [{"seq": s, "actor": a, "object_id": o, **json.loads(p)} for s, a, o, p in rows]


@pytest.fixture
def office(
    empty_db_url: str, tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Office]:
    """Requester rita, approvers ann and bob, viewer vic; a quorum of two; iris 1 and 2."""
    world = make_world(empty_db_url, tmp_path, monkeypatch)  # type: ignore[arg-type]
    world.settings.policy_path.write_text(QUORUM_2, encoding="utf-8")
    registry = FakeRegistry()
    registry.add("iris", "1", author="carl", metrics={"accuracy": 0.9})
    registry.add("iris", "2", author="carl", metrics={"accuracy": 0.93})
    facade = build_governance(world.settings, registry=registry, hasher=FakeHasher())
    for name, roles in (
        ("rita", ["requester"]),
        ("ann", ["approver"]),
        ("bob", ["approver"]),
        ("vic", ["viewer"]),
    ):
        facade.create_user(CLI_OPERATOR, name, roles, PASSWORD)
    engine = make_engine(world.url)
    try:
        yield Office(world, facade, registry, engine)
    finally:
        engine.dispose()
        facade.dispose()


def approve(office: Office, who: str, request_id: str, content_hash: str) -> object:
    return office.facade.sign_off(
        who,
        request_id,
        decision="approve",
        comment="checked the evidence",
        content_hash=content_hash,
        password=PASSWORD,
    )


def test_a_vote_row_inserted_for_an_approver_who_never_signed_does_not_count(
    office: Office,
) -> None:
    request = office.facade.request_promotion("rita", "iris", "2", "champion", "more accurate")
    with office.engine.begin() as conn:  # the insider signs for ann
        insert_row(
            conn,
            "votes",
            {
                "request_id": request.id,
                "approver": "ann",
                "decision": "approve",
                "comment": "checked the evidence",
                "role_at_signing": "approver",
                "signed_at": SIGNED_AT,
                "meaning": "Approval of the promotion",
                "reauth_method": "password",
                "content_hash": request.content_hash,
                "signer_name": "ann",
            },
        )
    result = approve(office, "bob", request.id, request.content_hash)

    # bob's signature is recorded; ann's forged one does not complete the quorum of two.
    assert result.request.state == "pending"  # type: ignore[attr-defined]
    assert office.registry.alias_holder("iris", "champion") is None
    assert result.approvals == 1  # type: ignore[attr-defined]
    assert result.unsealed_votes == ("ann",)  # type: ignore[attr-defined]
    assert "not counted: the stored vote of ann, which fails its seal" in result.message  # type: ignore[attr-defined]
    (seen,) = office.events("tampering_detected")
    assert seen["object_id"] == request.id
    assert seen["approver"] == "ann"
    assert seen["outcome"] == "not counted"
    assert "is not sealed: it was written outside Countersign" in str(seen["reason"])

    # ann cannot sign for real while the forged row stands: refused, and audited again.
    with pytest.raises(GovernanceError, match=f"the stored vote of ann on {request.id} is not"):
        approve(office, "ann", request.id, request.content_hash)
    assert len(office.events("tampering_detected")) == 2
    details = office.facade.get_request(CLI_OPERATOR, request.id)
    assert details.request.state == "pending"
    assert office.registry.alias_holder("iris", "champion") is None


def test_a_request_flipped_to_approved_with_a_forged_decision_is_not_executed(
    office: Office,
) -> None:
    request = office.facade.request_promotion("rita", "iris", "2", "champion", "more accurate")
    with office.engine.begin() as conn:  # the insider decides the request
        conn.execute(
            text("UPDATE promotion_requests SET state = 'approved' WHERE id = :id"),
            {"id": request.id},
        )
        insert_row(
            conn,
            "decisions",
            {
                "request_id": request.id,
                "outcome": "approved",
                "decided_at": SIGNED_AT,
                "decided_by": "bob",
                "approvers": '["ann","bob"]',
                "quorum": 2,
                "policy_hash": request.policy_hash,
                "content_hash": request.content_hash,
            },
        )
    with pytest.raises(GovernanceError, match=f"request {request.id} fails its seal"):
        office.facade.execute(CLI_OPERATOR, request.id)
    assert office.registry.alias_holder("iris", "champion") is None
    (seen,) = office.events("tampering_detected")
    assert seen["attempted"] == "execute"
    with office.engine.connect() as conn:
        executions = conn.execute(text("SELECT count(*) FROM executions")).scalar()
    assert executions == 0


def test_roles_and_users_written_with_sql_sign_nothing(office: Office) -> None:
    request = office.facade.request_promotion("rita", "iris", "2", "champion", "more accurate")
    approve(office, "ann", request.id, request.content_hash)
    with office.engine.begin() as conn:  # vic the viewer becomes an approver
        conn.execute(text("""UPDATE users SET roles = '["approver"]' WHERE name = 'vic'"""))
    with pytest.raises(GovernanceError, match="the record of user 'vic' fails its seal"):
        approve(office, "vic", request.id, request.content_hash)
    with office.engine.begin() as conn:  # a new approver whose password the insider knows
        conn.execute(
            text(
                "INSERT INTO users (name, display_name, roles, password_hash, disabled, "
                "failed_logins, created_at) SELECT 'mallory', 'Mallory', roles, password_hash, "
                "disabled, 0, created_at FROM users WHERE name = 'ann'"
            )
        )
    with pytest.raises(GovernanceError, match="the record of user 'mallory' is not sealed"):
        approve(office, "mallory", request.id, request.content_hash)
    with pytest.raises(GovernanceError, match="the record of user 'mallory' is not sealed"):
        office.facade.authenticate("mallory", PASSWORD)
    assert office.facade.get_request(CLI_OPERATOR, request.id).request.state == "pending"
    assert office.registry.alias_holder("iris", "champion") is None
    refused = office.events("tampering_detected")
    assert [e["object_id"] for e in refused] == [request.id, request.id, "mallory"]


def test_an_entry_appended_with_sql_is_named_by_verify_and_never_vouched_for(
    office: Office, capsys: pytest.CaptureFixture[str]
) -> None:
    world = office.world
    job = (
        "audit",
        "checkpoint",
        "--previous-dir",
        str(world.folder),
        "--out-dir",
        str(world.folder),
    )
    request = office.facade.request_promotion("rita", "iris", "2", "champion", "more accurate")
    code, _, err = world.cli(capsys, *job)
    assert code == 0, err
    signed = sorted(world.folder.glob("*.json"))
    with office.engine.begin() as conn:  # the insider records ann's approval in the chain
        forged = append_entry(
            conn,
            moment=SIGNED_AT,
            actor="ann",
            action="vote_recorded",
            object_type="request",
            object_id=request.id,
            payload={"state": "pending", "decision": "approve", "comment": "checked"},
        )
    # The app writes on after it: the forged entry sits inside the chain, not only at its head.
    approve(office, "bob", request.id, request.content_hash)

    code, out, err = world.cli(capsys, "audit", "verify")
    assert code == 1
    assert err.startswith(f"audit chain broken at seq {forged.seq}: the entry's seal fails")
    code, out, _ = world.cli(capsys, "audit", "verify", "--json")
    assert code == 1
    assert json.loads(out)["first_broken_seq"] == forged.seq
    parallel = office.facade.store.verify(workers=2)  # the path large chains take
    assert (parallel.ok, parallel.first_broken_seq) == (False, forged.seq)

    code, out, err = world.cli(capsys, *job)
    assert (code, out) == (1, "")
    assert f"first broken seq {forged.seq}: the entry's seal fails" in err
    assert "nothing signed" in err
    assert sorted(world.folder.glob("*.json")) == signed
