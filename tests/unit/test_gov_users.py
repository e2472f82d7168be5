"""Users, passwords, sign-in and lockout through the service layer."""

from __future__ import annotations

import json

import pytest

from governance import service
from governance.domain import CLI_OPERATOR, OIDC_SIGN_IN, AuditAction
from governance.errors import (
    AuthenticationFailed,
    Conflict,
    InvalidInput,
    NotAllowed,
    NotFound,
    PasswordChangeRequired,
)
from governance.passwords import Argon2PasswordHasher
from tests.unit.fakes import PASSWORD, FakeUsers, World, make_world


@pytest.fixture
def world() -> World:
    return make_world()


@pytest.mark.parametrize("actor", ["erin", CLI_OPERATOR])
def test_an_admin_or_the_cli_operator_creates_a_user_with_a_hashed_password(
    world: World, actor: str
) -> None:
    user = service.create_user(world.uow, world.ctx, actor, "nina", ["approver"], "long enough")
    assert user.password_hash != "long enough"
    assert world.ctx.hasher.verify(user.password_hash, "long enough")
    event = world.uow.events(AuditAction.USER_CREATED)[-1]
    assert (event.actor, event.object_id) == (actor, "nina")
    assert "long enough" not in event.payload
    assert "hash" not in event.payload


@pytest.mark.parametrize(
    ("actor", "name", "roles", "password", "error"),
    [
        ("rita", "nina", ["approver"], "long enough", NotAllowed),
        ("vic", "nina", ["approver"], "long enough", NotAllowed),
        ("frank", "nina", ["approver"], "long enough", NotAllowed),
        ("ghost", "nina", ["approver"], "long enough", NotAllowed),
        ("system:nobody", "nina", ["approver"], "long enough", NotAllowed),
        ("erin", "carol", ["approver"], "long enough", Conflict),
        ("erin", "bad name", ["approver"], "long enough", InvalidInput),
        ("erin", "nina", ["wizard"], "long enough", InvalidInput),
        ("erin", "nina", ["approver"], "short", InvalidInput),
    ],
)
def test_a_refused_user_creation_is_audited_and_changes_nothing(
    world: World, actor: str, name: str, roles: list[str], password: str, error: type
) -> None:
    before = len(world.uow.committed.users)
    with pytest.raises(error):
        service.create_user(world.uow, world.ctx, actor, name, roles, password)
    assert len(world.uow.committed.users) == before
    assert world.uow.events()[-1].action == AuditAction.ACTION_REFUSED


def test_a_disabled_user_is_kept_and_can_no_longer_sign_in(world: World) -> None:
    service.disable_user(world.uow, world.ctx, "erin", "carol")
    assert world.uow.committed.users["carol"].disabled
    with pytest.raises(AuthenticationFailed):
        service.authenticate(world.uow, world.ctx, "carol", PASSWORD)


@pytest.mark.parametrize(
    ("actor", "name", "error"),
    [("erin", "erin", NotAllowed), ("erin", "nobody", NotFound), ("carol", "dave", NotAllowed)],
)
def test_disabling_oneself_an_unknown_user_or_without_the_admin_role_is_refused(
    world: World, actor: str, name: str, error: type
) -> None:
    with pytest.raises(error):
        service.disable_user(world.uow, world.ctx, actor, name)


def test_a_password_reset_replaces_the_hash_and_lifts_a_lockout(world: World) -> None:
    for _ in range(3):
        with pytest.raises(AuthenticationFailed):
            service.authenticate(world.uow, world.ctx, "carol", "wrong")
    service.reset_password(world.uow, world.ctx, "erin", "carol", "brand new pass")
    assert world.uow.committed.users["carol"].locked_until is None
    # The lockout is lifted: the right (admin-set) password is accepted, and asks for a change.
    with pytest.raises(PasswordChangeRequired):
        service.authenticate(world.uow, world.ctx, "carol", "brand new pass")
    service.change_password(world.uow, world.ctx, "carol", "brand new pass", "carol's own pass")
    assert service.authenticate(world.uow, world.ctx, "carol", "carol's own pass").name == "carol"
    assert world.uow.events(AuditAction.PASSWORD_RESET)


@pytest.mark.parametrize(
    ("name", "password"), [("nobody", PASSWORD), ("carol", "wrong"), ("carol", "")]
)
def test_unknown_user_and_wrong_password_get_the_same_answer(
    world: World, name: str, password: str
) -> None:
    with pytest.raises(AuthenticationFailed) as caught:
        service.authenticate(world.uow, world.ctx, name, password)
    assert str(caught.value) == "invalid user name or password"
    assert world.uow.events()[-1].action == AuditAction.LOGIN_FAILED


def test_a_correct_password_signs_in_and_is_audited(world: World) -> None:
    assert service.authenticate(world.uow, world.ctx, "carol", PASSWORD).name == "carol"
    assert world.uow.events()[-1].action == AuditAction.LOGIN_SUCCEEDED


def test_the_account_locks_after_repeated_failures_until_the_lockout_ends(world: World) -> None:
    for _ in range(3):
        with pytest.raises(AuthenticationFailed):
            service.authenticate(world.uow, world.ctx, "carol", "wrong")
    assert world.uow.events(AuditAction.USER_LOCKED)
    with pytest.raises(AuthenticationFailed):
        service.authenticate(world.uow, world.ctx, "carol", PASSWORD)  # locked: right password
    world.clock.advance(minutes=16)
    assert service.authenticate(world.uow, world.ctx, "carol", PASSWORD).failed_logins == 0


def test_a_success_resets_the_failure_count(world: World) -> None:
    for _ in range(2):
        with pytest.raises(AuthenticationFailed):
            service.authenticate(world.uow, world.ctx, "carol", "wrong")
    service.authenticate(world.uow, world.ctx, "carol", PASSWORD)
    assert world.uow.committed.users["carol"].failed_logins == 0


def test_listing_users_needs_the_admin_role(world: World) -> None:
    assert [u.name for u in service.list_users(world.uow, world.ctx, "erin")][:2] == [
        "bob",
        "carol",
    ]
    with pytest.raises(NotAllowed):
        service.list_users(world.uow, world.ctx, "carol")


def test_the_argon2_hasher_round_trips_and_refuses_wrong_or_malformed_input() -> None:
    hasher = Argon2PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    digest = hasher.hash("s3cret pass")
    assert digest.startswith("$argon2id$")
    assert hasher.verify(digest, "s3cret pass")
    assert not hasher.verify(digest, "other")
    assert not hasher.verify("not a hash", "s3cret pass")
    assert Argon2PasswordHasher().needs_rehash(digest)


def test_the_production_hasher_uses_two_lanes_and_upgrades_one_lane_hashes() -> None:
    from app.bootstrap import password_hasher

    hasher = password_hasher()
    digest = hasher.hash("s3cret pass")
    assert "$m=19456,t=2,p=2$" in digest
    assert not hasher.needs_rehash(digest)
    one_lane = Argon2PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)
    older = one_lane.hash("s3cret pass")
    assert hasher.verify(older, "s3cret pass")  # existing users still sign in...
    assert hasher.needs_rehash(older)  # ...and get the current parameters at that sign-in


def test_an_admin_changes_roles_and_the_change_is_audited(world: World) -> None:
    user = service.set_roles(world.uow, world.ctx, "erin", "vic", ["approver", "viewer"])
    assert user.roles == ("approver", "viewer")
    event = world.uow.events(AuditAction.USER_ROLES_CHANGED)[-1]
    assert event.payload == '{"after":["approver","viewer"],"before":["viewer"]}'


@pytest.mark.parametrize(
    ("actor", "name", "roles", "error"),
    [
        ("erin", "erin", ["approver"], NotAllowed),  # would lock the admins out
        ("erin", "vic", [], InvalidInput),
        ("erin", "vic", ["wizard"], InvalidInput),
        ("carol", "vic", ["approver"], NotAllowed),
        ("erin", "nobody", ["viewer"], NotFound),
    ],
)
def test_a_refused_role_change_changes_nothing(
    world: World, actor: str, name: str, roles: list[str], error: type
) -> None:
    with pytest.raises(error):
        service.set_roles(world.uow, world.ctx, actor, name, roles)
    assert world.uow.committed.users["vic"].roles == ("viewer",)
    assert world.uow.events()[-1].action == AuditAction.ACTION_REFUSED


def test_setting_the_same_roles_in_another_order_changes_and_records_nothing(
    world: World,
) -> None:
    service.set_roles(world.uow, world.ctx, "erin", "vic", ["approver", "viewer"])
    before = len(world.uow.events())
    user = service.set_roles(world.uow, world.ctx, "erin", "vic", ["viewer", "approver"])
    assert user.roles == ("approver", "viewer")
    assert len(world.uow.events()) == before


def _refusal_reason(world: World) -> str:
    event = world.uow.events()[-1]
    assert event.action == AuditAction.ACTION_REFUSED
    return str(json.loads(event.payload)["reason"])


LAST_ADMIN = "'erin' is the last active admin: give another user the admin role first"


def test_the_operator_cannot_take_the_admin_role_from_the_last_active_admin(
    world: World,
) -> None:
    with pytest.raises(NotAllowed, match="last active admin"):
        service.set_roles(world.uow, world.ctx, CLI_OPERATOR, "erin", ["approver"])
    assert world.uow.committed.users["erin"].roles == ("admin",)
    assert _refusal_reason(world) == LAST_ADMIN
    assert not world.uow.events(AuditAction.USER_ROLES_CHANGED)


def test_the_operator_cannot_disable_the_last_active_admin(world: World) -> None:
    with pytest.raises(NotAllowed, match="last active admin"):
        service.disable_user(world.uow, world.ctx, CLI_OPERATOR, "erin")
    assert not world.uow.committed.users["erin"].disabled
    assert _refusal_reason(world) == LAST_ADMIN
    assert not world.uow.events(AuditAction.USER_DISABLED)


@pytest.mark.parametrize(("second_admin_disabled", "allowed"), [(False, True), (True, False)])
@pytest.mark.parametrize("change", ["demote", "disable"])
def test_an_admin_may_be_demoted_or_disabled_only_while_another_active_admin_remains(
    world: World, change: str, second_admin_disabled: bool, allowed: bool
) -> None:
    service.set_roles(world.uow, world.ctx, "erin", "dave", ["approver", "admin"])
    if second_admin_disabled:
        service.disable_user(world.uow, world.ctx, "erin", "dave")
    erin = world.uow.committed.users["erin"]

    def act() -> None:
        if change == "demote":
            service.set_roles(world.uow, world.ctx, CLI_OPERATOR, "erin", ["auditor"])
        else:
            service.disable_user(world.uow, world.ctx, CLI_OPERATOR, "erin")

    if allowed:
        act()
        action = AuditAction.USER_ROLES_CHANGED if change == "demote" else AuditAction.USER_DISABLED
        event = world.uow.events()[-1]
        assert (event.action, event.actor, event.object_id) == (action, CLI_OPERATOR, "erin")
    else:
        with pytest.raises(NotAllowed, match="last active admin"):
            act()
        assert world.uow.committed.users["erin"] == erin
        assert _refusal_reason(world) == LAST_ADMIN


def test_a_disabled_user_can_be_enabled_again(world: World) -> None:
    service.disable_user(world.uow, world.ctx, "erin", "carol")
    service.enable_user(world.uow, world.ctx, "erin", "carol")
    assert service.authenticate(world.uow, world.ctx, "carol", PASSWORD).name == "carol"
    event = world.uow.events(AuditAction.USER_ENABLED)[-1]
    assert (event.actor, event.object_id, event.payload) == ("erin", "carol", "{}")


def test_enabling_lifts_a_lockout_and_enabling_an_active_user_records_nothing(
    world: World,
) -> None:
    for _ in range(3):
        with pytest.raises(AuthenticationFailed):
            service.authenticate(world.uow, world.ctx, "carol", "wrong")
    service.disable_user(world.uow, world.ctx, "erin", "carol")
    user = service.enable_user(world.uow, world.ctx, CLI_OPERATOR, "carol")
    assert (user.disabled, user.failed_logins, user.locked_until) == (False, 0, None)
    before = len(world.uow.events())
    service.enable_user(world.uow, world.ctx, "erin", "carol")
    assert len(world.uow.events()) == before


@pytest.mark.parametrize(
    ("actor", "name", "error"),
    [("carol", "dave", NotAllowed), ("vic", "dave", NotAllowed), ("erin", "nobody", NotFound)],
)
def test_a_refused_enable_is_audited_and_changes_nothing(
    world: World, actor: str, name: str, error: type
) -> None:
    service.disable_user(world.uow, world.ctx, "erin", "dave")
    with pytest.raises(error):
        service.enable_user(world.uow, world.ctx, actor, name)
    assert world.uow.committed.users["dave"].disabled
    event = world.uow.events()[-1]
    assert (event.action, event.actor, event.object_id) == (AuditAction.ACTION_REFUSED, actor, name)
    assert not world.uow.events(AuditAction.USER_ENABLED)


def test_audit_events_carry_the_clock_time_of_the_action(world: World) -> None:
    world.clock.advance(hours=5)
    service.authenticate(world.uow, world.ctx, "carol", PASSWORD)
    assert world.uow.events()[-1].ts == "2026-11-01T14:00:00.000000Z"


def test_an_identity_vouched_for_by_the_provider_gets_an_audited_viewer_account(
    world: World,
) -> None:
    user = service.admit_viewer(world.uow, world.ctx, "ann@example.org", "Ann Example")
    assert (user.roles, user.display_name, user.disabled) == (("viewer",), "Ann Example", False)
    assert world.uow.committed.users["ann@example.org"] == user
    event = world.uow.events(AuditAction.USER_CREATED)[-1]
    assert (event.actor, event.object_id) == (OIDC_SIGN_IN, "ann@example.org")
    assert '"roles":["viewer"]' in event.payload
    with pytest.raises(AuthenticationFailed):  # nobody knows the password of such an account
        service.authenticate(world.uow, world.ctx, "ann@example.org", PASSWORD)


@pytest.mark.parametrize("name", ["carol", "erin"])
def test_admitting_an_existing_user_changes_nothing(world: World, name: str) -> None:
    service.disable_user(world.uow, world.ctx, "erin", "carol")
    before = world.uow.committed.users[name]
    events = len(world.uow.events())
    assert service.admit_viewer(world.uow, world.ctx, name, "Someone Else") == before
    assert world.uow.committed.users[name] == before  # still disabled, roles kept
    assert len(world.uow.events()) == events


def test_an_identity_that_cannot_be_a_user_name_is_not_admitted(world: World) -> None:
    before = dict(world.uow.committed.users)
    with pytest.raises(InvalidInput, match="invalid user name"):
        service.admit_viewer(world.uow, world.ctx, "auth0|12345", "")
    assert world.uow.committed.users == before


def test_an_identity_admitted_meanwhile_by_another_session_is_returned(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = service.admit_viewer(world.uow, world.ctx, "ann@example.org", "Ann")
    real_find = FakeUsers.find
    calls: list[str] = []

    def find_missing_once(self: FakeUsers, name: str) -> object:
        calls.append(name)
        return None if len(calls) == 1 else real_find(self, name)

    monkeypatch.setattr(FakeUsers, "find", find_missing_once)
    assert service.admit_viewer(world.uow, world.ctx, "ann@example.org", "Ann") == first
    assert len(world.uow.events(AuditAction.USER_CREATED)) == 1
