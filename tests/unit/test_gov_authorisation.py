"""Every use case checks the matrix itself: calling the service directly grants nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from governance import service
from governance.domain import AuditAction
from governance.errors import NotAllowed
from tests.unit.fakes import World, make_world, open_request, reauth

# One person per role (see tests/unit/fakes.PEOPLE).
ROLE_HOLDER = {
    "viewer": "vic",
    "requester": "rita",
    "approver": "carol",
    "admin": "erin",
    "auditor": "frank",
}


def _request_promotion(w: World, actor: str) -> Any:
    return service.request_promotion(w.uow, w.ctx, actor, "iris", "2", "challenger", "why")


def _approve(w: World, actor: str) -> Any:
    pending = open_request(w, target="challenger", actor="dan")
    return service.sign_off(
        w.uow,
        w.ctx,
        actor,
        pending.id,
        decision="approve",
        comment="ok",
        reauth=reauth(),
        content_hash=pending.content_hash,
    )


def _execute(w: World, actor: str) -> Any:
    pending = open_request(w, target="challenger", actor="dan")
    w.registry.writes_fail = True
    service.sign_off(
        w.uow,
        w.ctx,
        "dave",
        pending.id,
        decision="approve",
        comment="ok",
        reauth=reauth(),
        content_hash=pending.content_hash,
    )
    w.registry.writes_fail = False
    return service.execute(w.uow, w.ctx, actor, pending.id)


def _rollback(w: World, actor: str) -> Any:
    w.registry.aliases[("iris", "challenger")] = "1"
    _execute(w, "dave")
    return service.request_rollback(w.uow, w.ctx, actor, "iris", "challenger", "undo")


OPERATIONS: dict[str, Callable[[World, str], Any]] = {
    "request a promotion": _request_promotion,
    "approve": _approve,
    "retry an execution": _execute,
    "request a rollback": _rollback,
    "break glass": lambda w, a: service.break_glass(
        w.uow, w.ctx, a, "iris", "3", "challenger", "urgent", reauth()
    ),
    "create a user": lambda w, a: service.create_user(
        w.uow, w.ctx, a, "nina", ["viewer"], "long enough"
    ),
    "disable a user": lambda w, a: service.disable_user(w.uow, w.ctx, a, "dave"),
    "reset a password": lambda w, a: service.reset_password(w.uow, w.ctx, a, "dave", "new pass 1"),
    "change roles": lambda w, a: service.set_roles(w.uow, w.ctx, a, "dave", ["viewer"]),
    "enable a user": lambda w, a: service.enable_user(w.uow, w.ctx, a, "dave"),
    "list users": lambda w, a: service.list_users(w.uow, w.ctx, a),
    "verify the audit log": lambda w, a: service.verify_audit(w.uow, w.ctx, a),
    "reconcile": lambda w, a: service.reconcile(w.uow, w.ctx, a),
    "put a target back": lambda w, a: service.put_back(w.uow, w.ctx, a, "iris", "champion"),
    "list requests": lambda w, a: service.list_requests(w.uow, w.ctx, a),
}
ALLOWED = {
    "request a promotion": {"requester", "admin"},
    "approve": {"approver"},
    "retry an execution": {"requester", "approver", "admin"},
    "request a rollback": {"requester", "admin"},
    "break glass": {"admin"},
    "create a user": {"admin"},
    "disable a user": {"admin"},
    "reset a password": {"admin"},
    "change roles": {"admin"},
    "enable a user": {"admin"},
    "list users": {"admin"},
    "verify the audit log": {"admin", "auditor"},
    "reconcile": {"admin", "auditor"},
    "put a target back": {"admin"},
    "list requests": set(ROLE_HOLDER),
}


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
@pytest.mark.parametrize("role", sorted(ROLE_HOLDER))
def test_each_role_may_do_exactly_what_the_matrix_allows(role: str, operation: str) -> None:
    world = make_world()
    actor = ROLE_HOLDER[role]
    if role in ALLOWED[operation]:
        OPERATIONS[operation](world, actor)
        return
    with pytest.raises(NotAllowed):
        OPERATIONS[operation](world, actor)
    refused = world.uow.events()[-1]
    assert (refused.action, refused.actor) == (AuditAction.ACTION_REFUSED, actor)


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_a_disabled_user_may_do_nothing(operation: str) -> None:
    world = make_world()
    service.disable_user(world.uow, world.ctx, "erin", "carol")
    with pytest.raises(NotAllowed, match="not an active user"):
        OPERATIONS[operation](world, "carol")


@pytest.mark.parametrize(
    ("roles", "signer_roles", "may_view", "may_sign"),
    [
        (("risk",), frozenset({"approver", "risk"}), True, True),
        (("risk",), frozenset({"approver"}), False, False),
        (("viewer",), frozenset({"viewer"}), True, False),  # a policy cannot promote a viewer
    ],
)
def test_a_custom_approver_role_of_the_policy_grants_viewing_and_signing(
    roles: tuple[str, ...], signer_roles: frozenset[str], may_view: bool, may_sign: bool
) -> None:
    from governance.domain import Permission, is_allowed

    assert is_allowed(roles, Permission.VIEW, signer_roles) is may_view
    assert is_allowed(roles, Permission.SIGN, signer_roles) is may_sign
    assert not is_allowed(roles, Permission.REQUEST, signer_roles)


def test_verify_audit_runs_the_store_verifier_once_and_records_its_result() -> None:
    from governance.audit import VerifyResult
    from governance.errors import NotAllowed

    w = make_world()
    calls: list[int] = []
    broken = VerifyResult(
        ok=False, count=3, first_seq=1, last_seq=3, head_hash="h", first_broken_seq=4,
        reason="expected seq 4, found none (entries were removed)",
    )  # fmt: skip

    def verifier() -> VerifyResult:
        calls.append(1)
        return broken

    assert service.verify_audit(w.uow, w.ctx, "frank", verifier=verifier) == broken
    assert calls == [1]
    head = w.uow.committed.audit[-1]
    assert (head.action, head.actor) == (AuditAction.AUDIT_VERIFIED, "frank")
    assert '"first_broken_seq":4' in head.payload
    with pytest.raises(NotAllowed):
        service.verify_audit(w.uow, w.ctx, "vic", verifier=verifier)
    assert calls == [1]
    assert w.uow.committed.audit[-1].action == AuditAction.ACTION_REFUSED
