"""Browser sessions on real SQLite and PostgreSQL: hashes only, one use per grant, revocation.

The facade runs over a migrated database with a FixedClock, so expiry is tested without
waiting. The race test has two facades claim the same grant at once: exactly one wins.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from app.bootstrap import build_governance
from app.facade import GovernanceFacade
from app.settings import Settings
from governance.db import make_engine, upgrade
from governance.domain import CLI_OPERATOR
from governance.errors import NotAllowed, SessionEnded
from tests.unit.fakes import PASSWORD, FakeHasher, FakeRegistry, FixedClock

UA = "Mozilla/5.0 <script>alert(1)</script>"


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


def _facade(url: str, folder: Path, clock: FixedClock) -> GovernanceFacade:
    env = {"COUNTERSIGN_DB_URL": url, "COUNTERSIGN_DATA_DIR": str(folder)}
    settings = Settings.from_env(env, secrets_path=folder / "none.toml")
    return build_governance(settings, registry=FakeRegistry(), hasher=FakeHasher(), clock=clock)


@pytest.fixture
def facade(empty_db_url: str, tmp_path: Path, clock: FixedClock) -> Iterator[GovernanceFacade]:
    engine = make_engine(empty_db_url)
    upgrade(engine)
    engine.dispose()
    built = _facade(empty_db_url, tmp_path, clock)
    built.create_user(CLI_OPERATOR, "root", ["admin"], PASSWORD)
    built.create_user(CLI_OPERATOR, "ann", ["approver"], PASSWORD)
    yield built
    built.dispose()


def _rows(facade: GovernanceFacade) -> list[dict[str, object]]:
    with facade.store.engine.connect() as conn:
        result = conn.execute(text("SELECT * FROM browser_sessions"))
        return [dict(row._mapping) for row in result]


def test_the_table_holds_hashes_never_the_grant_or_the_cookie(facade: GovernanceFacade) -> None:
    _, session, grant = facade.start_session("ann", PASSWORD, UA)
    claimed, secret = facade.claim_cookie(grant)
    assert claimed.id == session.id
    [row] = _rows(facade)
    assert row["secret_hash"] == hashlib.sha256(secret.encode()).hexdigest()
    assert row["grant_hash"] is None
    assert row["user_agent"] == UA  # stored as data; the Admin page shows it as text
    dumped = repr(row)
    assert secret not in dumped
    assert grant not in dumped
    resumed, user = facade.resume_session(secret)
    assert (resumed.id, user.name) == (session.id, "ann")


def test_sessions_end_by_logout_revocation_and_account_changes(
    facade: GovernanceFacade, clock: FixedClock
) -> None:
    sessions = []
    for _ in range(3):
        _, _, grant = facade.start_session("ann", PASSWORD, UA)
        sessions.append(facade.claim_cookie(grant))
        clock.advance(seconds=1)
    (own, _), (revoked, _), (remaining, secret) = sessions
    facade.end_session("ann", own.id)
    facade.end_session("root", revoked.id)
    live = facade.list_sessions("root")
    assert [s.id for s in live] == [remaining.id]
    with pytest.raises(NotAllowed):
        facade.list_sessions("ann")
    facade.set_roles(CLI_OPERATOR, "ann", ["approver", "auditor"])
    with pytest.raises(SessionEnded) as caught:
        facade.resume_session(secret)
    assert caught.value.reason == "roles_changed"
    reasons = {r["id"]: r["revoke_reason"] for r in _rows(facade)}
    assert reasons == {own.id: "logout", revoked.id: "admin", remaining.id: "roles_changed"}


def test_idle_and_absolute_ends_hold_in_sql(facade: GovernanceFacade, clock: FixedClock) -> None:
    _, _, grant = facade.start_session("ann", PASSWORD, UA)
    session, secret = facade.claim_cookie(grant)
    clock.advance(minutes=29)
    facade.resume_session(secret)  # activity moves the idle end
    clock.advance(minutes=29)
    facade.check_session(session.id)
    assert [s.id for s in facade.list_sessions("root")] == [session.id]
    clock.advance(minutes=31)
    with pytest.raises(SessionEnded, match="idle"):
        facade.check_session(session.id)
    assert facade.list_sessions("root") == ()
    clock.advance(days=2)
    facade.start_session("root", PASSWORD, UA)  # prunes what ended over a day ago
    assert [r["user_name"] for r in _rows(facade)] == ["root"]


def test_a_grant_raced_by_two_replicas_is_claimed_once(
    facade: GovernanceFacade, empty_db_url: str, tmp_path: Path, clock: FixedClock
) -> None:
    other = _facade(empty_db_url, tmp_path, clock)
    try:
        _, _, grant = facade.start_session("ann", PASSWORD, UA)
        start = threading.Barrier(2)
        outcomes: list[object] = []

        def claim(replica: GovernanceFacade) -> None:
            start.wait()
            try:
                outcomes.append(replica.claim_cookie(grant)[1])
            except NotAllowed as exc:
                outcomes.append(exc)

        threads = [threading.Thread(target=claim, args=(f,)) for f in (facade, other)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        other.dispose()
    secrets_won = [o for o in outcomes if isinstance(o, str)]
    assert len(secrets_won) == 1, outcomes
    assert sum(isinstance(o, NotAllowed) for o in outcomes) == 1
    [row] = _rows(facade)
    assert row["secret_hash"] == hashlib.sha256(secrets_won[0].encode()).hexdigest()


def test_the_idle_setting_reaches_the_sessions(facade: GovernanceFacade) -> None:
    assert facade.context.session_idle == timedelta(minutes=30)
    assert facade.context.session_lifetime == timedelta(minutes=720)
