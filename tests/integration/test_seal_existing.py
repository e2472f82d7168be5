"""An upgraded database: what was written before sealed records counts only once an operator
seals it, up to a signed checkpoint, with `audit seal-existing`.

The "upgrade" is simulated on a real SQLite file and PostgreSQL database: after a workflow with
signed checkpoints, every seal is removed (as a database migrated to sealed records holds none).
A vote row that an insider slipped in before the sealing is not recorded in the chain, so it
stays unsealed and still does not count.
"""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text

from app.bootstrap import build_governance
from governance.db import make_engine
from governance.errors import GovernanceError
from tests.integration.insider import insert_row, triggers_off
from tests.integration.test_checkpoint_rewrite import World, make_world, workflow
from tests.integration.test_sealed_records import SIGNED_AT
from tests.unit.fakes import PASSWORD, FakeHasher, FakeRegistry

SEALED_TABLES = ("users", "promotion_requests", "votes", "decisions", "executions")


def as_before_sealed_records(world: World) -> str:
    """Drop every seal (the state right after `db upgrade`); add an insider's vote row.

    Returns:
        The id of the pending request the insider voted on.
    """
    engine = make_engine(world.url)
    try:
        with engine.begin() as conn:
            with triggers_off(conn):
                conn.execute(text("UPDATE audit_events SET seal = NULL"))
            for table in SEALED_TABLES:
                bound = ", audit_seq = NULL" if table in SEALED_TABLES[2:] else ""
                conn.execute(text(f"UPDATE {table} SET seal = NULL{bound}"))
            pending = conn.execute(
                text("SELECT id, content_hash FROM promotion_requests WHERE state = 'pending'")
            ).one()
            insert_row(
                conn,
                "votes",
                {
                    "request_id": pending.id,
                    "approver": "ann",
                    "decision": "approve",
                    "comment": "slipped in",
                    "role_at_signing": "approver",
                    "signed_at": SIGNED_AT,
                    "meaning": "Approval",
                    "reauth_method": "password",
                    "content_hash": pending.content_hash,
                    "signer_name": "ann",
                },
            )
    finally:
        engine.dispose()
    return str(pending.id)


@pytest.fixture
def world(empty_db_url: str, tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> World:
    return make_world(empty_db_url, tmp_path, monkeypatch)  # type: ignore[arg-type]


def test_entries_and_rows_from_before_sealed_records_count_once_sealed_up_to_a_checkpoint(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    job = world.checkpoint_job()
    workflow(world, lambda: world.cli(capsys, *job))
    files = sorted(world.folder.glob("*.json"))
    first, newest = (json.loads(files[k].read_text())["checkpoint"] for k in (0, -1))
    head = int(newest["last_seq"])
    pending = as_before_sealed_records(world)
    key = ("--public-key", str(world.public))

    # Nothing unsealed counts: the chain does not verify, no checkpoint, no sign-in.
    code, _, err = world.cli(capsys, "audit", "verify")
    assert code == 1
    assert err.startswith("audit chain broken at seq 1: the entry is not sealed")
    assert "audit seal-existing" in err
    assert world.cli(capsys, *job)[0] == 1
    facade = build_governance(world.settings, registry=FakeRegistry(), hasher=FakeHasher())
    try:
        with pytest.raises(GovernanceError, match="the record of user 'ann' is not sealed"):
            facade.authenticate("ann", PASSWORD)
    finally:
        facade.dispose()

    # The operator must vouch: a signed checkpoint that covers every unsealed entry, or their word.
    code, out, err = world.cli(capsys, "audit", "seal-existing")
    assert (code, out) == (1, "")
    assert f"entries 1-{head} are not covered by any signed checkpoint" in err
    assert "nothing sealed" in err
    code, _, err = world.cli(capsys, "audit", "seal-existing", "--checkpoint", str(files[0]), *key)
    assert code == 1
    assert f"entries {int(first['last_seq']) + 1}-{head} are not covered by the checkpoint" in err
    code, out, err = world.cli(
        capsys, "audit", "seal-existing", "--checkpoint", str(files[-1]), *key
    )
    assert code == 0, err
    # Everything written since the upgrade (the refusals above) was sealed when written.
    assert out.startswith(f"sealed entries 1-{head} and ")
    assert "2 users, 2 requests, 1 votes, 1 decisions, 1 executions" in out
    assert f"left unsealed (does not count): vote of ann on {pending}" in err

    # Now the chain verifies, the job signs on, and ann signs in; the slipped-in vote still
    # does not count.
    code, out, _ = world.cli(capsys, "audit", "verify", "--json")
    assert code == 0, out
    assert world.cli(capsys, *job)[0] == 0
    facade = build_governance(world.settings, registry=FakeRegistry(), hasher=FakeHasher())
    try:
        assert facade.authenticate("ann", PASSWORD).name == "ann"
        with pytest.raises(GovernanceError, match=f"the stored vote of ann on {pending} is not"):
            facade.sign_off(
                "ann",
                pending,
                decision="reject",  # no evidence capture: straight to the locked vote
                comment="for real",
                content_hash=facade.get_request("system:cli", pending).request.content_hash,
                password=PASSWORD,
            )
    finally:
        facade.dispose()
    engine = make_engine(world.url)
    try:
        with engine.connect() as conn:
            (payload,) = conn.execute(
                text("SELECT payload FROM audit_events WHERE action = 'audit_sealed_existing'")
            ).one()
    finally:
        engine.dispose()
    record = json.loads(payload)
    assert record["checkpoint"]["last_seq"] == head
    assert record["checkpoint"]["signature_verified"] is True
    assert record["through_seq"] == head
    assert record["left_unsealed_count"] == 1
    assert sorted(u["name"] for u in record["users"]) == ["ann", "rita"]
