"""Promotion targets: a stage, a target the policy names, or an alias MLflow would accept."""

from __future__ import annotations

import json

import pytest

from governance import service
from governance.domain import AuditAction
from governance.errors import InvalidInput
from governance.targets import check_target, is_alias_name, targets_named
from tests.unit.fakes import World, make_world, reauth

HOSTILE = (
    "[click](javascript:alert(1))",
    "<img src=x onerror=alert(1)>",
    "<!channel>",
    "**bold**",
    ":red[x]",
    "$x$",
    "champ ion",
    "champion/../x",
    "chаmpion",  # the second letter is Cyrillic: it reads as champion and is another alias
    "a" * 256,
)


@pytest.mark.parametrize(
    ("typed", "target"),
    [
        ("champion", "champion"),
        ("challenger-2", "challenger-2"),
        ("shadow_B", "shadow_B"),
        ("production", "production"),  # an alias: MLflow's stages are capitalised
        ("Production", "Production"),
        ("Staging", "Staging"),
        ("Archived", "Archived"),
        ("  champion\n", "champion"),  # surrounding spaces are dropped, nothing else changes
        ("a" * 255, "a" * 255),
        ("v1x", "v1x"),
        ("latest2", "latest2"),
    ],
)
def test_stages_and_valid_alias_names_are_targets(typed: str, target: str) -> None:
    assert check_target(typed) == target


@pytest.mark.parametrize(
    "typed", ["", "   ", "None", "latest", "LATEST", "v1", "V12", "champion\x00", *HOSTILE]
)
def test_anything_else_is_refused_with_what_a_target_may_be(typed: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        check_target(typed)
    message = str(refused.value)
    assert message.startswith("invalid target ")
    assert (
        "a target is a stage (Staging, Production, Archived), a target the policy names" in message
    )
    assert len(message) < 400  # a long name is cut, the message stays one readable line


def test_a_target_the_policy_names_is_accepted_even_outside_the_alias_rules() -> None:
    document = {
        "targets": {"champion": {}, "eu prod": {}},
        "models": {"credit-*": {"targets": {"risk:approved": {"quorum": 3}}}, "x": {}},
    }
    named = targets_named(document)
    assert named == {"champion", "eu prod", "risk:approved"}
    assert check_target("eu prod", named) == "eu prod"
    assert check_target("risk:approved", named) == "risk:approved"
    with pytest.raises(InvalidInput):
        check_target("us prod", named)


def test_alias_rules_follow_mlflow_with_ascii_letters_only() -> None:
    assert is_alias_name("champion")
    assert not is_alias_name("champion\n")  # MLflow's own `$` would let this through
    assert not is_alias_name("chаmpion")


@pytest.fixture
def world() -> World:
    return make_world()


CALLS = {
    "request": lambda w, t: service.request_promotion(w.uow, w.ctx, "rita", "iris", "2", t, "why"),
    "rollback": lambda w, t: service.request_rollback(w.uow, w.ctx, "rita", "iris", t, "undo"),
    "break glass": lambda w, t: service.break_glass(
        w.uow, w.ctx, "erin", "iris", "3", t, "now", reauth()
    ),
}


@pytest.mark.parametrize("call", list(CALLS), ids=list(CALLS))
@pytest.mark.parametrize("target", ["<img src=x onerror=alert(1)>", "latest", "None"])
def test_every_entry_point_refuses_a_bad_target_before_touching_anything(
    world: World, call: str, target: str
) -> None:
    with pytest.raises(InvalidInput, match="invalid target"):
        CALLS[call](world, target)
    assert world.uow.committed.requests == {}
    assert world.registry.calls == []  # nothing moved in the registry
    refused = world.uow.events()[-1]
    assert refused.action == AuditAction.ACTION_REFUSED
    assert json.loads(refused.payload)["error"] == "InvalidInput"
