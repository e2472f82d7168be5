"""The SQL layer of the workflow on a real SQLite file and a real PostgreSQL database.

Each test gets a brand-new database (`empty_db_url`), migrated with the shipped Alembic scripts.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, text

from governance.audit import GENESIS_HASH, verify_chain
from governance.db import (
    VERSION_TABLE,
    DatabaseUnavailable,
    check_schema,
    make_engine,
    translate_errors,
    upgrade,
)
from governance.domain import (
    Decision,
    Execution,
    PromotionRequest,
    RequestKind,
    State,
    User,
    Vote,
    transition,
)
from governance.errors import Conflict, DuplicateVote, NotFound, SchemaOutOfDate
from governance.orm import Base
from governance.seals import Sealer, SealKey
from governance.unit_of_work import SqlStore

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
SEALER = Sealer(SealKey(b"store-test-seal-key-32-bytes-long!"))


@pytest.fixture
def store(empty_db_url: str) -> Iterator[SqlStore]:
    engine = make_engine(empty_db_url)
    upgrade(engine)
    yield SqlStore(engine, SEALER)
    engine.dispose()


def a_request(request_id: str = "r1", **changes: object) -> PromotionRequest:
    base = PromotionRequest(
        id=request_id,
        model="iris",
        version="3",
        target="champion",
        target_kind="alias",
        requester="rita",
        justification="better accuracy",
        state=State.PENDING.value,
        created_at=NOW,
        expires_at=NOW + timedelta(days=7),
        policy_hash="p" * 64,
        evidence='{"metrics":{}}',
        evidence_hash="e" * 64,
        content_hash="c" * 64,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def a_vote(request_id: str, approver: str, decision: str = "approve") -> Vote:
    return Vote(
        request_id=request_id,
        approver=approver,
        decision=decision,
        comment="looks right",
        role_at_signing="approver",
        signed_at=NOW,
        meaning=f"Approval of request {request_id}",
        reauth_method="password",
        content_hash="c" * 64,
        signer_name=approver.title(),
    )


def test_the_migration_builds_exactly_the_schema_the_orm_describes(store: SqlStore) -> None:
    check_schema(store.engine)
    with store.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
        diffs = compare_metadata(context, Base.metadata)
    assert diffs == []


def test_an_empty_database_is_refused_with_the_db_upgrade_message(empty_db_url: str) -> None:
    engine = make_engine(empty_db_url)
    try:
        with pytest.raises(SchemaOutOfDate, match=r"python -m app\.cli db upgrade"):
            check_schema(engine)
        upgrade(engine)
        with engine.begin() as conn:
            conn.execute(text(f"UPDATE {VERSION_TABLE} SET version_num = 'older'"))
        with pytest.raises(SchemaOutOfDate, match="db upgrade"):
            check_schema(engine)
    finally:
        engine.dispose()


def test_users_round_trip_and_a_duplicate_name_is_refused(store: SqlStore) -> None:
    user = User("ann", "Ann A.", ("approver", "risk"), "$argon2id$x", created_at=NOW)
    with store.unit_of_work() as uow:
        uow.users.add(user)
        uow.commit()
    with store.unit_of_work() as uow:
        with pytest.raises(Conflict, match="already exists"):
            uow.users.add(replace(user, display_name="Other"))
        uow.users.update(replace(user, disabled=True, failed_logins=2, locked_until=NOW))
        uow.commit()
    with store.unit_of_work(read_only=True) as uow:
        stored = uow.users.find("ann")
        assert stored == replace(user, disabled=True, failed_logins=2, locked_until=NOW)
        assert stored is not None
        assert stored.locked_until is not None
        assert stored.locked_until.tzinfo is not None
        assert [u.name for u in uow.users.list()] == ["ann"]
        assert uow.users.find("ANN") is None
        with pytest.raises(NotFound):
            uow.users.update(replace(user, name="nobody"))


def test_requests_round_trip_with_optimistic_concurrency(store: SqlStore) -> None:
    with store.unit_of_work() as uow:
        uow.requests.add(a_request())
        uow.commit()
    with store.unit_of_work() as uow:
        loaded = uow.lock_request("r1")
        assert loaded == a_request()
        approved = transition(loaded, State.APPROVED, NOW)
        uow.requests.update(approved)
        with pytest.raises(Conflict, match="changed by someone else"):
            uow.requests.update(approved)  # row_version already moved on
        uow.commit()
    with store.unit_of_work(read_only=True) as uow:
        assert uow.requests.get("r1").state == "approved"
        assert uow.requests.get("r1").row_version == 2
        assert uow.requests.find(state="approved") == (uow.requests.get("r1"),)
        assert uow.requests.find(state="pending") == ()
        with pytest.raises(NotFound):
            uow.requests.get("missing")
        with pytest.raises(NotFound):
            uow.lock_request("missing")


def test_one_pending_request_per_target_but_follow_ups_are_exempt(store: SqlStore) -> None:
    with store.unit_of_work() as uow:
        uow.requests.add(a_request("r1"))
        uow.requests.add(a_request("r2", target="challenger"))
        uow.requests.add(a_request("f1", kind=RequestKind.FOLLOW_UP.value))
        uow.requests.add(a_request("f2", kind=RequestKind.FOLLOW_UP.value))
        with pytest.raises(Conflict, match="open request for this model and target"):
            uow.requests.add(a_request("r3"))
        # the savepoint kept the transaction usable
        assert uow.requests.pending_for_target("iris", "alias", "champion") == a_request("r1")
        uow.commit()
    with store.unit_of_work() as uow:
        uow.requests.update(transition(a_request("r1"), State.CANCELLED, NOW))
        uow.requests.add(a_request("r3"))
        uow.commit()
    with store.unit_of_work(read_only=True) as uow:
        assert {r.id for r in uow.requests.find(state="pending")} == {"r2", "r3", "f1", "f2"}
        assert uow.requests.due_for_expiry(NOW + timedelta(days=8))[0].state == "pending"
        assert uow.requests.due_for_expiry(NOW) == ()


def test_votes_decisions_and_executions_round_trip(store: SqlStore) -> None:
    with store.unit_of_work() as uow:
        uow.requests.add(a_request())
        uow.votes.add(a_vote("r1", "ann"), audit_seq=1)
        with pytest.raises(DuplicateVote, match="already"):
            uow.votes.add(a_vote("r1", "ann", "reject"), audit_seq=2)
        uow.votes.add(a_vote("r1", "bob"), audit_seq=3)
        decision = Decision("r1", "approved", NOW, "bob", ("ann", "bob"), 2, "p" * 64, "c" * 64)
        uow.decisions.add(decision, audit_seq=4)
        with pytest.raises(Conflict):
            uow.decisions.add(decision, audit_seq=5)
        failed = Execution("r1", 1, "failed", NOW, "bob", "iris", "3", "champion", "alias", "2")
        uow.executions.add(failed, audit_seq=6)
        uow.executions.add(replace(failed, attempt=2, outcome="succeeded"), audit_seq=7)
        with pytest.raises(Conflict):
            uow.executions.add(failed, audit_seq=8)
        uow.commit()
    with store.unit_of_work(read_only=True) as uow:
        assert uow.votes.for_request("r1") == (a_vote("r1", "ann"), a_vote("r1", "bob"))
        assert uow.votes.get("r1", "ann") == a_vote("r1", "ann")
        assert uow.votes.get("r1", "carl") is None
        assert uow.decisions.get("r1") == decision
        assert [e.attempt for e in uow.executions.for_request("r1")] == [1, 2]
        assert [e.attempt for e in uow.executions.successes("iris")] == [2]
        assert uow.executions.successes("other") == ()


def test_reading_waits_for_no_writer_and_refuses_to_write(store: SqlStore) -> None:
    with store.unit_of_work() as uow:
        uow.requests.add(a_request())
        uow.commit()
    seen: list[str] = []

    def read() -> None:
        with store.unit_of_work().reading() as uow:
            seen.append(uow.requests.get("r1").state)

    with store.unit_of_work() as writer:
        writer.lock_request("r1")  # holds the write lock (SQLite), chain head and row (PostgreSQL)
        reader = threading.Thread(target=read)
        reader.start()
        reader.join(timeout=10)
        assert seen == ["pending"]  # read while the writer still holds its locks
    uow = store.unit_of_work()
    with uow.reading():
        uow.requests.get("r1")
        if store.engine.dialect.name == "postgresql":  # no BEGIN and ROLLBACK round trips
            raw: Any = uow.session.connection().connection.dbapi_connection
            assert raw.info.transaction_status.name == "IDLE"  # not inside a transaction block
        with pytest.raises(RuntimeError, match="nothing is written"):
            uow.votes.add(a_vote("r1", "ann"), audit_seq=1)
        with pytest.raises(RuntimeError, match="no lock"):
            uow.lock_request("r1")
        with pytest.raises(RuntimeError, match="nothing is committed"):
            uow.commit()
    with store.unit_of_work(read_only=True) as check:
        assert check.votes.for_request("r1") == ()


def test_leaving_without_commit_rolls_everything_back(store: SqlStore) -> None:
    with store.unit_of_work() as uow:
        uow.requests.add(a_request())
        uow.audit.append(
            actor="rita", action="request_created", object_type="request", object_id="r1",
            payload={}, at=NOW,
        )  # fmt: skip

    def fail_midway() -> None:
        with store.unit_of_work() as uow:
            uow.users.add(User("ann", "Ann", ("approver",), "h"))
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        fail_midway()
    with store.unit_of_work(read_only=True) as uow:
        assert uow.requests.find() == ()
        assert uow.users.list() == ()
        assert uow.audit.head() is None
    assert store.verify().ok
    assert store.verify().count == 0


def _append(store: SqlStore, n: int, actor: str) -> None:
    for i in range(n):
        with store.unit_of_work() as uow:
            uow.audit.append(
                actor=actor, action="vote_recorded", object_type="request", object_id=str(i),
                payload={"i": i, "comment": "ünïcode ok"}, at=NOW,
            )  # fmt: skip
            uow.commit()


def test_concurrent_appends_form_one_gap_free_chain(store: SqlStore) -> None:
    threads = [threading.Thread(target=_append, args=(store, 5, f"u{k}")) for k in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result = store.verify(workers=1)
    assert result.ok, result.reason
    assert result.count == 100
    with store.unit_of_work(read_only=True) as uow:
        records = list(uow.audit.iterate())
        assert verify_chain(records).ok
        assert records[0].prev_hash == GENESIS_HASH
        assert uow.audit.head() == records[-1]
        assert len(uow.audit.for_object("request", "4")) == 20


def test_audit_rows_refuse_update_and_delete_and_tampering_is_found_at_its_seq(
    store: SqlStore,
) -> None:
    _append(store, 12, "ann")
    for statement in (
        "UPDATE audit_events SET actor = 'mallory' WHERE seq = 5",
        "DELETE FROM audit_events WHERE seq = 12",
        "UPDATE audit_chain_head SET seq = 3",
        "DELETE FROM audit_chain_head",
    ):
        with pytest.raises(Exception, match="append-only"), store.engine.begin() as conn:
            conn.execute(text(statement))
    assert store.verify().ok

    with store.engine.begin() as conn:
        if store.engine.dialect.name == "postgresql":
            conn.execute(text("ALTER TABLE audit_events DISABLE TRIGGER USER"))
        else:
            conn.execute(text("DROP TRIGGER audit_events_no_update"))
            conn.execute(text("DROP TRIGGER audit_events_no_delete"))
        conn.execute(text("UPDATE audit_events SET payload = :p WHERE seq = 7"), {"p": '{"i":99}'})
    for workers in (1, 3):
        result = store.verify(workers=workers)
        assert not result.ok
        assert result.first_broken_seq == 7
        assert "payload" in result.reason

    with store.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_events WHERE seq >= 7"))
    result = store.verify(workers=1)
    assert (result.ok, result.first_broken_seq) == (False, 7)
    assert "chain head" in result.reason


@pytest.mark.parametrize(
    "url",
    ["postgresql+psycopg://nobody@127.0.0.1:1/none", "sqlite:////proc/no-such-dir/g.db"],
    ids=["postgresql-unreachable", "sqlite-unopenable"],
)
def test_an_unreachable_database_is_one_clear_domain_error(url: str) -> None:
    def start() -> None:
        check_schema(make_engine(url))

    with pytest.raises(DatabaseUnavailable, match="governance database") as caught:
        start()
    assert "\n" not in str(caught.value)


def _backend_pid(engine: Engine) -> int:
    with translate_errors(), engine.connect() as conn:
        return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())


def _terminate(url: str, pid: int) -> None:
    import psycopg

    admin = url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(%s)", (pid,))


@pytest.mark.postgres
def test_a_connection_that_died_idle_in_the_pool_is_replaced_before_use(pg_url: str) -> None:
    engine = make_engine(pg_url, pool_size=1, max_overflow=0, ping_after_idle_s=0.2)
    try:
        first = _backend_pid(engine)
        _terminate(pg_url, first)
        time.sleep(0.3)
        assert _backend_pid(engine) != first  # pinged, found dead, replaced: no error
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_a_connection_used_a_moment_ago_is_not_pinged_and_the_pool_recovers(pg_url: str) -> None:
    engine = make_engine(pg_url, pool_size=1, max_overflow=0, ping_after_idle_s=60)
    try:
        first = _backend_pid(engine)
        _terminate(pg_url, first)
        with pytest.raises(DatabaseUnavailable):
            _backend_pid(engine)  # trusted without a ping: the dead connection fails once
        assert _backend_pid(engine) != first
    finally:
        engine.dispose()


def test_the_audit_search_filters_by_model_actor_action_and_time_newest_first(
    store: SqlStore,
) -> None:
    with store.unit_of_work() as uow:
        uow.requests.add(a_request("r1"))
        uow.requests.add(a_request("r2", model="credit_risk", target="t2"))
        appended = [
            uow.audit.append(actor=who, action=act, object_type=kind, object_id=oid,
                             payload={"k": i}, at=NOW + timedelta(minutes=i))
            for i, (who, act, kind, oid) in enumerate([
                ("rita", "request_created", "request", "r1"),
                ("rita", "request_created", "request", "r2"),
                ("ann", "vote_recorded", "request", "r1"),
                ("system:reconcile", "out_of_band_change", "target", "iris/alias/champion"),
                ("system:reconcile", "out_of_band_change", "target", "creditXrisk/alias/a"),
                ("ann", "user_created", "user", "bob"),
            ])
        ]  # fmt: skip
        uow.commit()
    with store.unit_of_work(read_only=True) as uow:
        search = uow.audit.search

        def seqs(found: tuple[object, ...]) -> list[int]:
            return [r.seq for r in found]  # type: ignore[attr-defined]

        s = [r.seq for r in appended]
        assert seqs(search()) == s[::-1]
        assert seqs(search(model="iris")) == [s[3], s[2], s[0]]
        assert seqs(search(model="credit_risk")) == [s[1]]  # `_` is not a LIKE wildcard
        assert seqs(search(actor="ann")) == [s[5], s[2]]
        assert seqs(search(actions=("request_created", "vote_recorded"), limit=2)) == [s[2], s[1]]
        assert seqs(search(object_types=("target",))) == [s[4], s[3]]
        assert seqs(search(since=appended[2].ts, until=appended[4].ts)) == [s[4], s[3], s[2]]
        assert seqs(search(before_seq=s[2], limit=None)) == [s[1], s[0]]
        assert search(actor="nobody") == ()
