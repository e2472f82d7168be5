"""Server-side browser sessions through the service layer, on the fakes."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from datetime import timedelta

import pytest

from governance import service
from governance.domain import AuditAction, BrowserSession
from governance.errors import AuthenticationFailed, NotAllowed, SessionEnded
from tests.unit.fakes import PASSWORD, T0, World, make_world

UA = "Mozilla/5.0 (X11; Linux x86_64)\r\n  Chrome/131"


@pytest.fixture
def world() -> World:
    return make_world()


def _signed_in(world: World, name: str = "carol") -> tuple[BrowserSession, str]:
    """A session whose browser collected its cookie: (session, cookie secret)."""
    _, _, grant = service.start_session(world.uow, world.ctx, name, PASSWORD, UA)
    return service.claim_cookie(world.uow, world.ctx, grant)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_a_sign_in_opens_a_session_that_stores_only_hashes(world: World) -> None:
    user, session, grant = service.start_session(world.uow, world.ctx, "carol", PASSWORD, UA)
    assert user.name == "carol"
    stored = world.uow.committed.sessions[session.id]
    assert (stored.grant_hash, stored.secret_hash) == (_sha(grant), "")
    assert stored.user_agent == "Mozilla/5.0 (X11; Linux x86_64) Chrome/131"
    assert (stored.expires_at, stored.idle_expires_at) == (
        T0 + timedelta(hours=12),
        T0 + timedelta(minutes=30),
    )
    claimed, secret = service.claim_cookie(world.uow, world.ctx, grant)
    stored = world.uow.committed.sessions[session.id]
    assert (stored.secret_hash, stored.grant_hash, stored.grant_expires_at) == (
        _sha(secret),
        "",
        None,
    )
    assert len(secret) >= 40
    everything = repr(world.uow.committed)
    assert secret not in everything
    assert grant not in everything
    started = world.uow.events(AuditAction.SESSION_STARTED)[-1]
    assert (started.actor, started.object_type, started.object_id) == (
        "carol",
        "session",
        claimed.id,
    )
    assert world.uow.events(AuditAction.LOGIN_SUCCEEDED)[-1].actor == "carol"


def test_a_wrong_password_opens_no_session(world: World) -> None:
    with pytest.raises(AuthenticationFailed):
        service.start_session(world.uow, world.ctx, "carol", "wrong", UA)
    assert world.uow.committed.sessions == {}


@pytest.mark.parametrize("later", [timedelta(0), timedelta(minutes=3)])
def test_a_grant_serves_once_and_only_for_two_minutes(world: World, later: timedelta) -> None:
    _, _, grant = service.start_session(world.uow, world.ctx, "carol", PASSWORD, UA)
    world.clock.advance(seconds=later.total_seconds())
    if later:
        with pytest.raises(NotAllowed):
            service.claim_cookie(world.uow, world.ctx, grant)
        return
    service.claim_cookie(world.uow, world.ctx, grant)
    with pytest.raises(NotAllowed):
        service.claim_cookie(world.uow, world.ctx, grant)  # replayed
    with pytest.raises(NotAllowed):
        service.claim_cookie(world.uow, world.ctx, "made-up")


def test_a_cookie_resumes_its_session_and_nothing_else_does(world: World) -> None:
    session, secret = _signed_in(world)
    resumed, user = service.resume_session(world.uow, world.ctx, secret)
    assert (resumed.id, user.name) == (session.id, "carol")
    for wrong in ("", "made-up", secret[:-1], session.id, session.secret_hash):
        with pytest.raises(SessionEnded) as caught:
            service.resume_session(world.uow, world.ctx, wrong)
        assert caught.value.reason == "unknown"


def test_a_session_ends_after_the_idle_timeout_unless_used(world: World) -> None:
    session, secret = _signed_in(world)
    for _ in range(5):  # 100 minutes of activity every 20 minutes
        world.clock.advance(minutes=20)
        service.check_session(world.uow, world.ctx, session.id)
    world.clock.advance(minutes=31)
    with pytest.raises(SessionEnded) as caught:
        service.resume_session(world.uow, world.ctx, secret)
    assert caught.value.reason == "idle"


def test_a_session_ends_at_its_absolute_end_whatever_the_activity(world: World) -> None:
    session, _ = _signed_in(world)
    for _ in range(12 * 3 - 1):  # activity every 20 minutes, for 11 hours 40 minutes
        world.clock.advance(minutes=20)
        service.check_session(world.uow, world.ctx, session.id)
    world.clock.advance(minutes=20)
    with pytest.raises(SessionEnded, match="absolute"):
        service.check_session(world.uow, world.ctx, session.id)


def test_an_idle_timeout_of_zero_leaves_only_the_absolute_end(world: World) -> None:
    world.ctx = replace(world.ctx, session_idle=timedelta(0))
    session, _ = _signed_in(world)
    world.clock.advance(hours=11)
    service.check_session(world.uow, world.ctx, session.id)
    world.clock.advance(hours=1)
    with pytest.raises(SessionEnded, match="absolute"):
        service.check_session(world.uow, world.ctx, session.id)


def test_checks_write_the_last_seen_time_at_most_once_a_minute(world: World) -> None:
    session, _ = _signed_in(world)
    commits = world.uow.commits
    world.clock.advance(seconds=30)
    service.check_session(world.uow, world.ctx, session.id)
    assert world.uow.commits == commits
    world.clock.advance(seconds=40)
    seen, _ = service.check_session(world.uow, world.ctx, session.id)
    assert world.uow.commits == commits + 1
    assert seen.last_seen_at == world.clock.now()
    assert seen.idle_expires_at == world.clock.now() + timedelta(minutes=30)


def test_logging_out_ends_the_session_for_every_tab_and_is_audited(world: World) -> None:
    session, secret = _signed_in(world)
    ended = service.end_session(world.uow, world.ctx, "carol", session.id)
    assert (ended.revoke_reason, ended.revoked_by, ended.revoked_at) == ("logout", "carol", T0)
    for check in (
        lambda: service.check_session(world.uow, world.ctx, session.id),  # another open tab
        lambda: service.resume_session(world.uow, world.ctx, secret),  # a reload, a new tab
    ):
        with pytest.raises(SessionEnded) as caught:
            check()
        assert caught.value.reason == "logout"
    event = world.uow.events(AuditAction.SESSION_REVOKED)[-1]
    assert (event.actor, event.object_id) == ("carol", session.id)
    assert json.loads(event.payload) == {"user": "carol", "reason": "logout"}
    assert service.end_session(world.uow, world.ctx, "carol", session.id) == ended  # again: no-op
    assert len(world.uow.events(AuditAction.SESSION_REVOKED)) == 1


def test_an_admin_lists_and_revokes_sessions_and_nobody_else_may(world: World) -> None:
    carol, _ = _signed_in(world, "carol")
    world.clock.advance(minutes=1)
    dave, _ = _signed_in(world, "dave")
    listed = service.list_sessions(world.uow, world.ctx, "erin")
    assert [s.id for s in listed] == [dave.id, carol.id]  # newest first
    with pytest.raises(NotAllowed):
        service.list_sessions(world.uow, world.ctx, "dave")
    with pytest.raises(NotAllowed):
        service.end_session(world.uow, world.ctx, "dave", carol.id)
    refusal = world.uow.events(AuditAction.ACTION_REFUSED)[-1]
    assert (refusal.actor, refusal.object_id) == ("dave", carol.id)
    revoked = service.end_session(world.uow, world.ctx, "erin", carol.id)
    assert (revoked.revoke_reason, revoked.revoked_by) == ("admin", "erin")
    assert [s.id for s in service.list_sessions(world.uow, world.ctx, "erin")] == [dave.id]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda w: service.disable_user(w.uow, w.ctx, "erin", "carol"), "user_disabled"),
        (
            lambda w: service.reset_password(w.uow, w.ctx, "erin", "carol", "set by erin"),
            "password_reset",
        ),
        (lambda w: service.set_roles(w.uow, w.ctx, "erin", "carol", ["viewer"]), "roles_changed"),
        (
            lambda w: service.change_password(w.uow, w.ctx, "carol", PASSWORD, "carol's new one"),
            "password_changed",
        ),
    ],
    ids=["disable", "reset", "roles", "own-change"],
)
def test_an_account_change_ends_every_session_of_that_user(
    world: World, change: object, reason: str
) -> None:
    first, _ = _signed_in(world, "carol")
    second, _ = _signed_in(world, "carol")
    other, _ = _signed_in(world, "dave")
    change(world)  # type: ignore[operator]
    for session in (first, second):
        with pytest.raises(SessionEnded) as caught:
            service.check_session(world.uow, world.ctx, session.id)
        assert caught.value.reason == reason
    service.check_session(world.uow, world.ctx, other.id)
    revoked = {e.object_id for e in world.uow.events(AuditAction.SESSION_REVOKED)}
    assert revoked == {first.id, second.id}


def test_enabling_or_an_unchanged_role_list_ends_nothing(world: World) -> None:
    session, _ = _signed_in(world, "carol")
    service.set_roles(world.uow, world.ctx, "erin", "carol", ["approver"])
    service.check_session(world.uow, world.ctx, session.id)


def test_a_user_disabled_behind_the_services_back_is_refused(world: World) -> None:
    _, secret = _signed_in(world)
    carol = world.uow.committed.users["carol"]
    world.uow.committed.users["carol"] = replace(carol, disabled=True)
    with pytest.raises(SessionEnded, match="user_disabled"):
        service.resume_session(world.uow, world.ctx, secret)


def test_ended_sessions_are_pruned_a_day_later_at_the_next_sign_in(world: World) -> None:
    old, _ = _signed_in(world)
    world.clock.advance(hours=13)
    _signed_in(world, "dave")
    assert old.id in world.uow.committed.sessions  # ended, still listed for a day
    world.clock.advance(hours=25)
    _signed_in(world, "dave")
    assert old.id not in world.uow.committed.sessions
