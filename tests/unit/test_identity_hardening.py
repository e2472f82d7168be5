"""Identity details that were real bypasses or leaks: equal argon2 work for every sign-in,
anchored name checks, admins who may not sign, admin password resets, break-glass re-authentication.

On the fakes of tests/unit/fakes.py, except the hasher: the argon2 tests count the calls that
reach a real argon2-cffi hasher (with cheap parameters).
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import replace
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from app.demo_users import DEMO_USERS
from app.governance_views import eligibility
from app.mlflow_gateway._sql import _in_list
from governance import service
from governance.context import Reauthentication
from governance.domain import (
    ADMIN,
    ADMIN_MAY_NOT_SIGN,
    APPROVER,
    CLI_OPERATOR,
    AuditAction,
    User,
    validate_user_name,
)
from governance.errors import (
    AuthenticationFailed,
    InvalidInput,
    NotAllowed,
    PasswordChangeRequired,
    PolicyError,
)
from governance.passwords import Argon2PasswordHasher
from governance.policy import parse_policy
from governance.signin import dummy_hash
from tests.unit.fakes import PASSWORD, T0, World, make_world, open_request, reauth, vote

# --- the same argon2 work whoever signs in ------------------------------------------------------


class CountingHasher:
    """The production argon2id hasher (cheap parameters), counting what reaches it."""

    def __init__(self) -> None:
        self.real = Argon2PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
        self.calls: list[tuple[str, str]] = []  # (method, the hash's parameter prefix)

    def hash(self, password: str) -> str:
        self.calls.append(("hash", ""))
        return self.real.hash(password)

    def verify(self, password_hash: str, password: str) -> bool:
        self.calls.append(("verify", password_hash.rsplit("$", 2)[0]))
        return self.real.verify(password_hash, password)

    def needs_rehash(self, password_hash: str) -> bool:
        return self.real.needs_rehash(password_hash)


@pytest.fixture(scope="module")
def counting() -> CountingHasher:
    return CountingHasher()


@pytest.fixture
def argon_world(counting: CountingHasher) -> World:
    world = make_world()
    world.ctx = replace(world.ctx, hasher=counting)
    real_hash = counting.real.hash(PASSWORD)
    for name, user in list(world.uow.committed.users.items()):
        world.uow.committed.users[name] = replace(user, password_hash=real_hash)
    disabled = world.uow.committed.users["dave"]
    world.uow.committed.users["dave"] = replace(disabled, disabled=True)
    dummy_hash(counting)  # made once per hasher (and process), before anyone signs in
    counting.calls.clear()
    return world


@pytest.mark.parametrize(
    ("name", "password"),
    [
        ("carol", PASSWORD),  # the right password
        ("carol", "wrong password"),
        ("carol", ""),  # an empty password used to skip the hash check
        ("nobody", PASSWORD),  # an unknown user used to be hashed, not verified
        ("nobody", ""),
        ("dave", PASSWORD),  # a disabled user
        ("", ""),
    ],
)
def test_every_sign_in_runs_exactly_one_argon2_verification_with_the_same_parameters(
    argon_world: World, counting: CountingHasher, name: str, password: str
) -> None:
    with contextlib.suppress(AuthenticationFailed):
        service.authenticate(argon_world.uow, argon_world.ctx, name, password)
    real_params = argon_world.uow.committed.users["carol"].password_hash.rsplit("$", 2)[0]
    assert counting.calls == [("verify", real_params)]


def test_an_empty_password_never_signs_in_even_against_a_hash_of_the_empty_string(
    argon_world: World, counting: CountingHasher
) -> None:
    carol = argon_world.uow.committed.users["carol"]
    argon_world.uow.committed.users["carol"] = replace(carol, password_hash=counting.hash(""))
    with pytest.raises(AuthenticationFailed):
        service.authenticate(argon_world.uow, argon_world.ctx, "carol", "")


# --- names that print like another --------------------------------------------------------------


@pytest.mark.parametrize("name", ["erin\n", "erin\r\n", "\nerin", "er\nin", "erin ", ""])
def test_a_user_name_with_a_line_break_or_a_space_is_refused(name: str) -> None:
    with pytest.raises(InvalidInput):
        validate_user_name(name)


def test_a_user_named_like_another_with_a_trailing_newline_cannot_be_created() -> None:
    world = make_world()
    with pytest.raises(InvalidInput):
        service.create_user(world.uow, world.ctx, "erin", "carol\n", ["approver"], "long enough")
    assert "carol\n" not in world.uow.committed.users


def test_a_run_id_with_a_trailing_newline_never_reaches_sql() -> None:
    assert _in_list(["1"], ["abc123"])["runs"] == "'abc123'"
    with pytest.raises(ValueError, match="unexpected run id"):
        _in_list(["1"], ["abc123\n"])


# --- administering and signing are separate duties ----------------------------------------------


def _with_admin_approver(world: World) -> World:
    carol = world.uow.committed.users["carol"]
    world.uow.committed.users["ada"] = replace(carol, name="ada", roles=(ADMIN, APPROVER))
    return world


@pytest.mark.parametrize("decision", ["approve", "reject"])
def test_an_admin_may_not_sign_by_default_and_the_refusal_is_audited(decision: str) -> None:
    world = _with_admin_approver(make_world())
    request = open_request(world)
    with pytest.raises(NotAllowed, match="administering and signing are separate duties"):
        vote(world, request, "ada", decision=decision)
    assert world.uow.committed.votes == {} or all(
        v.approver != "ada" for v in world.uow.committed.votes.values()
    )
    refusal = world.uow.events(AuditAction.ACTION_REFUSED)[-1]
    assert refusal.actor == "ada"
    assert ADMIN_MAY_NOT_SIGN in json.loads(refusal.payload)["reason"]


ALLOWING = """
version: 1
defaults: {approver_roles: [approver], quorum: 1, admins_may_sign: true}
"""


def test_a_policy_can_let_admins_sign() -> None:
    world = _with_admin_approver(make_world()).with_policy(ALLOWING)
    request = open_request(world, target="challenger")
    assert vote(world, request, "ada").vote.approver == "ada"


def test_the_page_says_why_an_admin_may_not_sign() -> None:
    world = _with_admin_approver(make_world())
    request = open_request(world)
    details = service.get_request(world.uow, world.ctx, "ada", request.id)
    facade: Any = SimpleNamespace(policy=world.ctx.policy)
    verdict = eligibility(facade, "ada", (ADMIN, APPROVER), details)
    assert (verdict.may_sign, verdict.reason) == (False, ADMIN_MAY_NOT_SIGN)
    allowed: Any = SimpleNamespace(policy=parse_policy(ALLOWING))
    assert eligibility(allowed, "ada", (ADMIN, APPROVER), details).may_sign


def test_admins_may_sign_must_be_true_or_false() -> None:
    with pytest.raises(PolicyError, match=r"defaults\.admins_may_sign must be true or false"):
        parse_policy("version: 1\ndefaults: {admins_may_sign: 'yes'}\n")


def test_the_default_policy_keeps_admins_from_signing_and_no_demo_admin_is_an_approver() -> None:
    rule = make_world().ctx.policy.rule_for("any-model", "champion")
    assert rule.admins_may_sign is False
    assert make_world().ctx.policy.document["defaults"]["admins_may_sign"] is False
    admins = {a.username for a in DEMO_USERS if a.role == ADMIN}
    approvers = {a.username for a in DEMO_USERS if a.role == APPROVER}
    assert admins
    assert approvers
    assert not admins & approvers


# --- an admin's password reset ------------------------------------------------------------------


def _reset(world: World, actor: str = "erin", name: str = "carol") -> None:
    service.reset_password(world.uow, world.ctx, actor, name, "set by the admin")


def test_after_an_admin_reset_the_password_only_serves_to_choose_a_new_one() -> None:
    world = make_world()
    request = open_request(world)
    _reset(world)
    assert world.uow.committed.users["carol"].must_change_password
    event = world.uow.events(AuditAction.PASSWORD_RESET)[-1]
    assert json.loads(event.payload) == {"must_change_password": True}
    with pytest.raises(PasswordChangeRequired):
        service.authenticate(world.uow, world.ctx, "carol", "set by the admin")
    assert not world.uow.events(AuditAction.LOGIN_SUCCEEDED)
    with pytest.raises(PasswordChangeRequired):
        vote(world, request, "carol", comment="fine", password="set by the admin")
    assert world.uow.committed.votes == {} or not world.uow.committed.votes
    changed = service.change_password(
        world.uow, world.ctx, "carol", "set by the admin", "carol chose this"
    )
    assert not changed.must_change_password
    assert world.uow.events(AuditAction.PASSWORD_CHANGED)[-1].actor == "carol"
    assert service.authenticate(world.uow, world.ctx, "carol", "carol chose this").name == "carol"


def test_resetting_ones_own_password_asks_for_no_change() -> None:
    world = make_world()
    _reset(world, actor="erin", name="erin")
    assert not world.uow.committed.users["erin"].must_change_password
    assert service.authenticate(world.uow, world.ctx, "erin", "set by the admin").name == "erin"


@pytest.mark.parametrize(
    ("current", "new", "error"),
    [
        ("wrong", "carol chose this", AuthenticationFailed),
        ("set by the admin", "short", InvalidInput),
        ("set by the admin", "set by the admin", InvalidInput),
    ],
)
def test_a_password_change_needs_the_current_password_and_a_new_usable_one(
    current: str, new: str, error: type
) -> None:
    world = make_world()
    _reset(world)
    with pytest.raises(error):
        service.change_password(world.uow, world.ctx, "carol", current, new)
    assert world.uow.committed.users["carol"].must_change_password


def test_a_wrong_current_password_counts_towards_the_lockout() -> None:
    world = make_world()
    _reset(world)
    for _ in range(world.ctx.lockout_attempts):
        with pytest.raises(AuthenticationFailed):
            service.change_password(world.uow, world.ctx, "carol", "wrong", "carol chose this")
    assert world.uow.committed.users["carol"].locked_until is not None


@pytest.mark.parametrize(("days", "noticed"), [(2, True), (6, True), (8, False)])
def test_a_vote_soon_after_an_admin_reset_carries_the_reset_on_the_packet(
    days: int, noticed: bool
) -> None:
    world = make_world()
    _reset(world)
    reset_at = world.clock.now()
    service.change_password(world.uow, world.ctx, "carol", "set by the admin", "carol chose this")
    world.clock.advance(days=days)
    request = open_request(world)
    vote(world, request, "carol", comment="checked", password="carol chose this")
    details = service.get_request(world.uow, world.ctx, "vic", request.id)
    notices = [(n.user, n.reset_by, n.reset_at) for n in details.password_resets]
    assert notices == ([("carol", "erin", reset_at)] if noticed else [])


def test_a_vote_after_resetting_ones_own_password_carries_no_notice() -> None:
    world = _with_admin_approver(make_world()).with_policy(ALLOWING)
    service.reset_password(world.uow, world.ctx, "ada", "ada", "carol chose this")
    request = open_request(world, target="challenger")
    vote_result = vote(
        world, request, "ada", decision="reject", comment="no", password="carol chose this"
    )
    assert vote_result.vote.approver == "ada"
    assert service.get_request(world.uow, world.ctx, "vic", request.id).password_resets == ()


def test_the_reset_notice_period_comes_from_the_context() -> None:
    world = make_world()
    world.ctx = replace(world.ctx, reset_notice_period=timedelta(days=30))
    _reset(world)
    service.change_password(world.uow, world.ctx, "carol", "set by the admin", "carol chose this")
    world.clock.advance(days=20)
    request = open_request(world)
    vote(world, request, "carol", comment="checked", password="carol chose this")
    details = service.get_request(world.uow, world.ctx, "vic", request.id)
    assert [n.reset_at for n in details.password_resets] == [T0]


# --- break-glass asks for the admin's password again --------------------------------------------


def _break_glass(world: World, proof: Reauthentication) -> Any:
    return service.break_glass(
        world.uow, world.ctx, "erin", "iris", "3", "champion", "outage", proof
    )


@pytest.mark.parametrize(
    ("proof", "error"),
    [
        (reauth("not the password"), AuthenticationFailed),
        (reauth(""), AuthenticationFailed),
        (Reauthentication("", None), InvalidInput),
    ],
)
def test_break_glass_without_the_admins_password_moves_nothing(
    proof: Reauthentication, error: type
) -> None:
    world = make_world()
    with pytest.raises(error):
        _break_glass(world, proof)
    assert world.registry.aliases[("iris", "champion")] == "1"
    assert not world.uow.events(AuditAction.BREAK_GLASS)


def test_a_wrong_break_glass_password_counts_towards_the_lockout() -> None:
    world = make_world()
    for _ in range(world.ctx.lockout_attempts):
        with pytest.raises(AuthenticationFailed):
            _break_glass(world, reauth("not the password"))
    assert world.uow.committed.users["erin"].locked_until is not None
    failed = json.loads(world.uow.events(AuditAction.LOGIN_FAILED)[-1].payload)
    assert failed["purpose"] == "break glass"


def test_break_glass_with_the_password_promotes() -> None:
    world = make_world()
    assert _break_glass(world, reauth()).request.state == "executed"


def test_break_glass_with_a_password_an_admin_set_is_refused_until_it_is_changed() -> None:
    world = make_world()
    erin = world.uow.committed.users["erin"]
    world.uow.committed.users["root"] = replace(erin, name="root")
    service.reset_password(world.uow, world.ctx, "root", "erin", "set by root!")
    with pytest.raises(PasswordChangeRequired):
        _break_glass(world, reauth("set by root!"))
    assert world.registry.aliases[("iris", "champion")] == "1"


def test_users_outside_the_fakes_default_to_no_password_change() -> None:
    assert User("x", "X", ("viewer",), "h").must_change_password is False


def _approve(world: Any, name: str, password: str) -> Any:
    request = open_request(world)
    return vote(world, request, name, comment="checked", password=password)


def test_an_account_an_admin_made_signs_nothing_until_its_owner_chooses_a_password() -> None:
    world = make_world()
    service.create_user(world.uow, world.ctx, "erin", "nora", [APPROVER], "set by the admin")
    assert world.uow.committed.users["nora"].must_change_password
    assert json.loads(world.uow.events(AuditAction.USER_CREATED)[-1].payload)[
        "must_change_password"
    ]
    with pytest.raises(PasswordChangeRequired):
        _approve(world, "nora", "set by the admin")
    service.change_password(world.uow, world.ctx, "nora", "set by the admin", "nora chose this")
    assert _approve(world, "nora", "nora chose this").vote.approver == "nora"


def test_an_account_the_operator_made_is_ready_and_carries_no_notice() -> None:
    world = make_world()
    service.create_user(world.uow, world.ctx, CLI_OPERATOR, "nora", [APPROVER], "operator's")
    assert not world.uow.committed.users["nora"].must_change_password
    result = _approve(world, "nora", "operator's")
    details = service.get_request(world.uow, world.ctx, "vic", result.request.id)
    assert details.password_resets == ()


@pytest.mark.parametrize(("days", "noticed"), [(1, True), (8, False)])
def test_a_vote_soon_after_an_admin_made_the_account_carries_it_on_the_packet(
    days: int, noticed: bool
) -> None:
    """The admin who made an account knew its first password and could have chosen the next
    one: reviewers see such a vote, as they see one after a reset."""
    world = make_world()
    service.create_user(world.uow, world.ctx, "erin", "nora", [APPROVER], "set by the admin")
    created_at = world.clock.now()
    service.change_password(world.uow, world.ctx, "nora", "set by the admin", "nora chose this")
    world.clock.advance(days=days)
    result = _approve(world, "nora", "nora chose this")
    details = service.get_request(world.uow, world.ctx, "vic", result.request.id)
    notices = [(n.user, n.reset_by, n.reset_at, n.event) for n in details.password_resets]
    assert notices == ([("nora", "erin", created_at, "account created")] if noticed else [])
