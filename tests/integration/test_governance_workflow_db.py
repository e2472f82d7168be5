"""The whole workflow through the facade on real SQLite and PostgreSQL: races, faults, tampering.

The model registry is the in-memory fake (these tests are about the database); the CLI end to
end on a real MLflow store lives in tests/e2e/test_cli_governance.py.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from app.bootstrap import build_governance
from app.facade import GovernanceFacade
from app.settings import Settings
from governance.db import make_engine, upgrade
from governance.domain import CLI_OPERATOR, AuditAction
from governance.errors import (
    AuthenticationFailed,
    GovernanceError,
    InvalidTransition,
    SchemaOutOfDate,
)
from tests.integration.locks import race_a_user_change
from tests.unit.fakes import PASSWORD, FakeHasher, FakeRegistry

QUORUM = 30
POLICY = f"""
version: 1
defaults: {{approver_roles: [approver], quorum: 1, expires_after: 7d}}
targets:
  champion: {{quorum: {QUORUM}}}
  challenger: {{quorum: 2}}
"""


def settings_for(url: str, tmp_path: Path) -> Settings:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY, encoding="utf-8")
    env = {
        "COUNTERSIGN_DB_URL": url,
        "COUNTERSIGN_DATA_DIR": str(tmp_path),
        "COUNTERSIGN_POLICY": str(policy),
    }
    return Settings.from_env(env, secrets_path=tmp_path / "none.toml")


@pytest.fixture
def world(empty_db_url: str, tmp_path: Path) -> Iterator[tuple[GovernanceFacade, FakeRegistry]]:
    engine = make_engine(empty_db_url)
    upgrade(engine)
    engine.dispose()
    registry = FakeRegistry()
    registry.add("iris", "1", author="carl", metrics={"accuracy": 0.9})
    registry.add("iris", "2", author="carl", metrics={"accuracy": 0.93})
    registry.aliases[("iris", "champion")] = "1"
    facade = build_governance(
        settings_for(empty_db_url, tmp_path), registry=registry, hasher=FakeHasher()
    )
    facade.create_user(CLI_OPERATOR, "rita", ["requester"], PASSWORD)
    for k in range(3):
        facade.create_user(CLI_OPERATOR, f"a{k:02d}", ["approver"], PASSWORD)
    yield facade, registry
    facade.dispose()


def approve(facade: GovernanceFacade, approver: str, request_id: str, content_hash: str) -> str:
    result = facade.sign_off(
        approver,
        request_id,
        decision="approve",
        comment="reviewed",
        content_hash=content_hash,
        password=PASSWORD,
    )
    return "repeat" if result.already_recorded else "recorded"


def events(facade: GovernanceFacade, request_id: str) -> Counter[str]:
    with facade.store.unit_of_work(read_only=True) as uow:
        return Counter(r.action for r in uow.audit.for_object("request", request_id))


def test_build_governance_refuses_an_out_of_date_schema(empty_db_url: str, tmp_path: Path) -> None:
    with pytest.raises(SchemaOutOfDate, match=r"run `python -m app\.cli db upgrade`"):
        build_governance(settings_for(empty_db_url, tmp_path), registry=FakeRegistry())


def test_fifty_racing_approvers_and_double_submits_execute_exactly_once(
    world: tuple[GovernanceFacade, FakeRegistry],
) -> None:
    facade, registry = world
    for k in range(3, 50):
        facade.create_user(CLI_OPERATOR, f"a{k:02d}", ["approver"], PASSWORD)
    request = facade.request_promotion("rita", "iris", "2", "champion", "more accurate")
    signers = [f"a{k:02d}" for k in range(50)] + [f"a{k:02d}" for k in range(10)]
    barrier = threading.Barrier(len(signers))
    outcomes: list[str] = []
    failures: list[BaseException] = []

    def sign(name: str) -> None:
        barrier.wait()
        try:
            outcomes.append(approve(facade, name, request.id, request.content_hash))
        except InvalidTransition:
            outcomes.append("closed")  # the quorum was reached before this vote
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=sign, args=(name,)) for name in signers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert failures == []
    details = facade.get_request(CLI_OPERATOR, request.id)
    assert details.request.state == "executed"
    approvers = [v.approver for v in details.votes]
    assert len(approvers) == len(set(approvers)) == QUORUM
    assert Counter(outcomes)["recorded"] == QUORUM
    assert [e.outcome for e in details.executions] == ["succeeded"]
    assert registry.calls.count(("set_alias", "iris", "champion", "2")) == 1
    assert registry.aliases[("iris", "champion")] == "2"
    counted = events(facade, request.id)
    assert counted[AuditAction.VOTE_RECORDED] == QUORUM
    assert counted[AuditAction.REQUEST_APPROVED] == 1
    assert counted[AuditAction.EXECUTION_SUCCEEDED] == 1
    verified = facade.verify_audit()
    assert verified.ok, verified.reason


def test_racing_first_oidc_sign_ins_of_one_identity_make_one_viewer_account(
    world: tuple[GovernanceFacade, FakeRegistry],
) -> None:
    facade, _ = world
    name = "new.person@example.org"
    barrier = threading.Barrier(8)
    admitted: list[tuple[str, ...]] = []
    failures: list[BaseException] = []

    def sign_in() -> None:
        barrier.wait()
        try:
            admitted.append(facade.admit_viewer(name, "New Person").roles)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=sign_in) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert failures == []
    assert admitted == [("viewer",)] * 8
    with facade.store.unit_of_work(read_only=True) as uow:
        created = uow.audit.search(actions=(AuditAction.USER_CREATED,), limit=None)
    assert [(e.actor, e.object_id) for e in created if e.object_id == name] == [
        ("system:oidc", name)
    ]
    assert facade.verify_audit().ok


def test_an_unreachable_registry_leaves_execution_failed_and_the_retry_executes_once(
    world: tuple[GovernanceFacade, FakeRegistry],
) -> None:
    facade, registry = world
    request = facade.request_promotion("rita", "iris", "2", "challenger", "try it")
    approve(facade, "a01", request.id, request.content_hash)
    registry.writes_fail = True
    result = facade.sign_off(
        "a02", request.id, decision="approve", comment="ok", content_hash=request.content_hash,
        password=PASSWORD,
    )  # fmt: skip
    assert result.request.state == "execution_failed"
    registry.writes_fail = False
    assert facade.execute(CLI_OPERATOR, request.id).executed_now
    again = facade.execute(CLI_OPERATOR, request.id)
    assert (again.executed_now, again.request.state) == (False, "executed")
    counted = events(facade, request.id)
    assert counted[AuditAction.EXECUTION_FAILED] == 1
    assert counted[AuditAction.EXECUTION_SUCCEEDED] == 1
    assert counted[AuditAction.REQUEST_APPROVED] == 1
    assert registry.calls.count(("set_alias", "iris", "challenger", "2")) == 1
    assert facade.verify_audit().ok


def _break_decisions(facade: GovernanceFacade, broken: bool) -> None:
    postgres = facade.store.engine.dialect.name == "postgresql"
    with facade.store.engine.begin() as conn:
        if postgres and broken:
            conn.execute(
                text(
                    "CREATE FUNCTION fail_decision() RETURNS trigger LANGUAGE plpgsql AS "
                    "$$ BEGIN RAISE EXCEPTION 'disk full'; END $$"
                )
            )
            conn.execute(
                text(
                    "CREATE TRIGGER fail_decision BEFORE INSERT ON decisions "
                    "FOR EACH ROW EXECUTE FUNCTION fail_decision()"
                )
            )
        elif broken:
            conn.execute(
                text(
                    "CREATE TRIGGER fail_decision BEFORE INSERT ON decisions "
                    "BEGIN SELECT RAISE(ABORT, 'disk full'); END"
                )
            )
        else:
            conn.execute(text("DROP TRIGGER fail_decision" + (" ON decisions" if postgres else "")))


def test_a_database_error_mid_vote_leaves_no_partial_state(
    world: tuple[GovernanceFacade, FakeRegistry],
) -> None:
    facade, registry = world
    request = facade.request_promotion("rita", "iris", "2", "challenger", "try it")
    approve(facade, "a01", request.id, request.content_hash)
    before = facade.store.verify()
    _break_decisions(facade, broken=True)
    with pytest.raises(GovernanceError):
        approve(facade, "a02", request.id, request.content_hash)
    details = facade.get_request(CLI_OPERATOR, request.id)
    assert details.request.state == "pending"
    assert [v.approver for v in details.votes] == ["a01"]
    assert details.decision is None
    after = facade.store.verify()
    assert after.ok
    assert (after.last_seq, after.head_hash) == (before.last_seq, before.head_hash)
    assert registry.calls == []

    _break_decisions(facade, broken=False)
    assert approve(facade, "a02", request.id, request.content_hash) == "recorded"
    assert facade.get_request(CLI_OPERATOR, request.id).request.state == "executed"
    assert facade.verify_audit().ok


def test_audit_verify_names_the_seq_of_a_row_altered_behind_the_triggers(
    world: tuple[GovernanceFacade, FakeRegistry],
) -> None:
    facade, _ = world
    facade.request_promotion("rita", "iris", "2", "challenger", "try it")
    assert facade.verify_audit().ok
    engine = facade.store.engine
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("ALTER TABLE audit_events DISABLE TRIGGER USER"))
        else:
            conn.execute(text("DROP TRIGGER audit_events_no_update"))
        conn.execute(text("UPDATE audit_events SET actor = 'mallory' WHERE seq = 3"))
    result = facade.verify_audit()
    assert (result.ok, result.first_broken_seq) == (False, 3)
    assert "entry_hash" in result.reason


RISK_POLICY = """
version: 1
defaults: {approver_roles: [approver], quorum: 1, expires_after: 7d}
models:
  "credit-*":
    targets:
      champion: {quorum: 1, approver_roles: [approver, risk]}
"""


def test_a_policy_defined_approver_role_is_held_sees_its_inbox_and_signs(
    empty_db_url: str, tmp_path: Path
) -> None:
    from app import governance_views
    from governance.errors import InvalidInput, NotAllowed

    upgrade_engine = make_engine(empty_db_url)
    upgrade(upgrade_engine)
    upgrade_engine.dispose()
    registry = FakeRegistry()
    for model in ("credit-score", "iris"):
        registry.add(model, "1", author="carl", metrics={"accuracy": 0.9})
    settings = settings_for(empty_db_url, tmp_path)
    settings.policy_path.write_text(RISK_POLICY, encoding="utf-8")
    facade = build_governance(settings, registry=registry, hasher=FakeHasher())
    try:
        facade.create_user(CLI_OPERATOR, "rita", ["requester"], PASSWORD)
        facade.create_user(CLI_OPERATOR, "rick", ["risk"], PASSWORD)
        with pytest.raises(InvalidInput, match="unknown role 'quant'"):
            facade.create_user(CLI_OPERATOR, "quinn", ["quant"], PASSWORD)
        credit = facade.request_promotion("rita", "credit-score", "1", "champion", "why")
        other = facade.request_promotion("rita", "iris", "1", "champion", "why")
        inbox = governance_views.inbox(facade, "rick", ("risk",))
        assert [d.request.id for d, _ in inbox] == [credit.id]
        assert inbox[0][1].role == "risk"
        with pytest.raises(NotAllowed):
            facade.sign_off(
                "rick", other.id, decision="approve", comment="ok",
                content_hash=other.content_hash, password=PASSWORD,
            )  # fmt: skip
        result = facade.sign_off(
            "rick", credit.id, decision="approve", comment="risk reviewed",
            content_hash=credit.content_hash, password=PASSWORD,
        )  # fmt: skip
        assert result.request.state == "executed"
        assert result.vote.role_at_signing == "risk"
    finally:
        facade.dispose()


def test_a_wrong_signing_password_racing_another_failure_still_locks_the_signer(
    world: tuple[GovernanceFacade, FakeRegistry], empty_db_url: str
) -> None:
    """The re-authentication at signing counts failures under the write lock, like sign-in."""
    facade, _ = world
    request = facade.request_promotion("rita", "iris", "2", "champion", "more accurate")
    # Another failure of a00 is being recorded right now.
    refused = race_a_user_change(
        facade, empty_db_url, "a00", {"failed_logins": 4},
        lambda: facade.sign_off("a00", request.id, decision="approve", comment="ok",
                                content_hash=request.content_hash, password="wrong"),
    )  # fmt: skip
    assert isinstance(refused, AuthenticationFailed), refused
    with facade.store.unit_of_work(read_only=True) as uow:
        signer = uow.users.find("a00")
        locked = [e.object_id for e in uow.audit.search(actions=("user_locked",))]
    assert signer is not None
    assert signer.locked_until is not None
    assert locked == ["a00"]
