"""Rules of the governance domain: transitions, the authorisation matrix, hashes, names."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from governance.domain import (
    ADMIN,
    APPROVER,
    AUDITOR,
    REQUESTER,
    ROLES,
    TRANSITIONS,
    VIEWER,
    Permission,
    PromotionRequest,
    State,
    TargetKind,
    content_hash_of,
    is_allowed,
    role_for,
    signing_role,
    target_kind_for,
    transition,
    validate_roles,
    validate_user_name,
)
from governance.errors import InvalidInput, InvalidTransition, NotAllowed

NOW = datetime(2026, 11, 1, tzinfo=UTC)
ALLOWED = {
    (State.PENDING, State.APPROVED),
    (State.PENDING, State.REJECTED),
    (State.PENDING, State.CANCELLED),
    (State.PENDING, State.EXPIRED),
    (State.PENDING, State.SUPERSEDED),
    (State.APPROVED, State.EXECUTED),
    (State.APPROVED, State.EXECUTION_FAILED),
    (State.EXECUTION_FAILED, State.EXECUTED),
}


def _request(state: State) -> PromotionRequest:
    return PromotionRequest(
        id="r1",
        model="iris",
        version="2",
        target="champion",
        target_kind="alias",
        requester="rita",
        justification="why",
        state=state,
        created_at=NOW,
        expires_at=NOW,
        policy_hash="p",
        evidence="{}",
        evidence_hash="e",
        content_hash="c",
    )


@pytest.mark.parametrize(("source", "target"), sorted(ALLOWED))
def test_an_allowed_transition_changes_the_state_and_bumps_the_row_version(
    source: State, target: State
) -> None:
    moved = transition(_request(source), target, NOW)
    assert (moved.state, moved.row_version) == (target.value, 2)
    assert type(moved.state) is str


@pytest.mark.parametrize(
    ("source", "target"),
    [(a, b) for a in State for b in State if (a, b) not in ALLOWED],
)
def test_every_other_transition_raises_invalid_transition(source: State, target: State) -> None:
    with pytest.raises(InvalidTransition, match=f"is {source.value}"):
        transition(_request(source), target, NOW)


def test_the_transition_table_names_every_state() -> None:
    assert set(TRANSITIONS) == set(State)


MATRIX = {
    Permission.VIEW: {VIEWER, REQUESTER, APPROVER, ADMIN, AUDITOR},
    Permission.REQUEST: {REQUESTER, ADMIN},
    Permission.SIGN: {APPROVER},
    Permission.EXECUTE: {REQUESTER, APPROVER, ADMIN},
    Permission.BREAK_GLASS: {ADMIN},
    Permission.ADMIN_USERS: {ADMIN},
    Permission.READ_AUDIT: {ADMIN, AUDITOR},
    Permission.EXPORT_AUDIT: {ADMIN, AUDITOR},
    Permission.RECONCILE: {ADMIN, AUDITOR},
    Permission.ENFORCE: {ADMIN},
    Permission.MONITOR: {REQUESTER, APPROVER, ADMIN},
}


@pytest.mark.parametrize("permission", list(Permission))
@pytest.mark.parametrize("role", ROLES)
def test_the_authorisation_matrix_grants_a_role_exactly_its_permissions(
    role: str, permission: Permission
) -> None:
    assert is_allowed((role,), permission) is (role in MATRIX[permission])


@pytest.mark.parametrize(
    ("user_roles", "rule_roles", "expected"),
    [
        ((APPROVER,), (APPROVER,), APPROVER),
        ((VIEWER,), (VIEWER, APPROVER), None),  # a policy cannot make a viewer an approver
        ((AUDITOR, APPROVER), (APPROVER,), APPROVER),
        (("risk",), (APPROVER, "risk"), "risk"),  # custom policy roles sign where named
        ((APPROVER,), ("risk",), None),  # the policy narrows who signs
        ((ADMIN,), (APPROVER,), None),
    ],
)
def test_the_signing_role_is_the_policy_role_the_matrix_allows(
    user_roles: tuple[str, ...], rule_roles: tuple[str, ...], expected: str | None
) -> None:
    assert signing_role(user_roles, rule_roles) == expected


def test_break_glass_roles_from_the_policy_still_need_the_matrix_for_built_in_roles() -> None:
    assert role_for(Permission.BREAK_GLASS, (APPROVER,), (ADMIN, APPROVER)) is None
    assert role_for(Permission.BREAK_GLASS, (ADMIN,), (ADMIN,)) == ADMIN


@pytest.mark.parametrize(
    ("target", "kind"),
    [
        ("champion", TargetKind.ALIAS),
        ("Production", TargetKind.STAGE),
        ("Staging", TargetKind.STAGE),
        ("Archived", TargetKind.STAGE),
        ("production", TargetKind.ALIAS),
    ],
)
def test_stage_names_are_stages_and_every_other_target_is_an_alias(
    target: str, kind: TargetKind
) -> None:
    assert target_kind_for(target) is kind


FIELDS = {
    "model": "iris",
    "version": "2",
    "target": "champion",
    "target_kind": "alias",
    "justification": "j",
    "evidence_hash": "e",
    "policy_hash": "p",
}


@pytest.mark.parametrize("field", sorted(FIELDS))
def test_the_content_hash_changes_with_every_signed_field(field: str) -> None:
    assert content_hash_of(**FIELDS) != content_hash_of(**{**FIELDS, field: "other"})


@pytest.mark.parametrize("name", ["", "a b", "x:y", "-lead", "a" * 129, "ünï"])
def test_an_unusable_user_name_is_refused(name: str) -> None:
    with pytest.raises(InvalidInput):
        validate_user_name(name)


@pytest.mark.parametrize(
    ("roles", "ok"), [((APPROVER,), True), ((), False), (("wizard",), False), (("risk",), True)]
)
def test_roles_must_be_built_in_or_named_by_the_policy(roles: tuple[str, ...], ok: bool) -> None:
    if ok:
        validate_roles(roles, frozenset({"risk"}))
    else:
        with pytest.raises(InvalidInput):
            validate_roles(roles, frozenset({"risk"}))


@pytest.mark.parametrize("permission", list(Permission))
def test_a_refusal_names_the_permission_in_words(permission: Permission) -> None:
    from governance.domain import Principal

    with pytest.raises(NotAllowed, match="vic is not allowed to "):
        Principal(name="vic").require(permission)
