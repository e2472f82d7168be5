"""The history of every alias and stage: tenures from the chain plus MLflow's state now."""

from __future__ import annotations

from datetime import timedelta

import pytest

from governance import service
from governance.domain import MLFLOW_WEBHOOKS
from governance.enforcement import enforce
from governance.errors import InvalidInput
from governance.history import BEFORE, OUT_OF_BAND, PUT_BACK, REQUEST, UNCOMPARED
from tests.unit.fakes import T0, World, make_world, open_request, vote


@pytest.fixture
def world() -> World:
    return make_world().with_policy(
        "version: 1\ndefaults: {out_of_band: revert}\nrollback: {quorum: 1}\n"
    )


def promote(world: World, version: str) -> str:
    request = open_request(world, version=version)
    vote(world, request, "carol")
    return request.id


def champion(world: World) -> list[tuple[str | None, str, str | None]]:
    history = service.model_history(world.uow, world.ctx, "vic", "iris")
    return [(t.version, t.source, t.request_id) for t in history.tenures if t.target == "champion"]


def test_each_holder_has_its_span_its_request_and_its_signers(world: World) -> None:
    world.clock.advance(hours=1)
    first = promote(world, "2")
    world.clock.advance(hours=1)
    world.registry.aliases[("iris", "champion")] = "3"
    enforce(world.uow, world.ctx, MLFLOW_WEBHOOKS, ("iris",), detected_by={"source": "test"})
    assert champion(world) == [
        ("1", BEFORE, None),  # what the first execution replaced
        ("2", REQUEST, first),
        ("3", OUT_OF_BAND, None),
        ("2", PUT_BACK, None),
    ]
    history = service.model_history(world.uow, world.ctx, "vic", "iris")
    governed = next(t for t in history.tenures if t.request_id == first)
    assert governed.signers == ("carol",)
    assert governed.until is not None  # ended by the out-of-band move
    assert history.known_since == governed.since


@pytest.mark.parametrize(
    ("offset", "version", "source"),
    [
        (timedelta(minutes=30), "1", BEFORE),
        (timedelta(hours=1, minutes=30), "2", REQUEST),
        (timedelta(hours=5), "2", PUT_BACK),
    ],
)
def test_which_version_held_champion_at_a_moment(
    world: World, offset: timedelta, version: str, source: str
) -> None:
    world.clock.advance(hours=1)
    promote(world, "2")
    world.clock.advance(hours=2)
    world.registry.aliases[("iris", "champion")] = "3"
    enforce(world.uow, world.ctx, MLFLOW_WEBHOOKS, ("iris",), detected_by={"source": "test"})
    history = service.model_history(world.uow, world.ctx, "vic", "iris")
    held = [t for t in history.at(T0 + offset) if t.target == "champion"]
    assert [(t.version, t.source) for t in held] == [(version, source)]


def test_targets_only_mlflow_knows_held_since_before_countersign(world: World) -> None:
    history = service.model_history(world.uow, world.ctx, "vic", "housing")
    assert [(t.target, t.version, t.source, t.since) for t in history.tenures] == [
        ("Production", "1", BEFORE, None)
    ]
    assert history.known_since is None


def test_a_move_not_compared_yet_ends_the_ledgers_account_now(world: World) -> None:
    promote(world, "2")
    world.registry.aliases[("iris", "champion")] = "4"  # no delivery, no reconcile yet
    assert champion(world)[-1] == ("4", UNCOMPARED, None)


def test_rollback_to_an_earlier_recorded_holder_and_only_to_one(world: World) -> None:
    promote(world, "2")
    world.clock.advance(hours=1)
    promote(world, "3")
    request = service.request_rollback(
        world.uow, world.ctx, "rita", "iris", "champion", "v1 was better", version="1"
    )
    assert (request.kind, request.version) == ("rollback", "1")
    with pytest.raises(InvalidInput, match="never held champion"):
        service.request_rollback(
            world.uow, world.ctx, "dan", "iris", "champion", "skip the gates", version="4"
        )


def test_a_target_nobody_held_before_its_first_execution_starts_with_that_execution(
    world: World,
) -> None:
    # iris has no challenger: the first execution reads the alias empty, so no holder precedes
    # it, neither a version nor "unknown" (which would claim a holder the ledger cannot explain)
    world.clock.advance(hours=1)
    request = open_request(world, version="3", target="challenger")
    vote(world, request, "carol")
    history = service.model_history(world.uow, world.ctx, "vic", "iris")
    challenger = [t for t in history.tenures if t.target == "challenger"]
    assert [(t.version, t.source, t.request_id) for t in challenger] == [("3", REQUEST, request.id)]
    assert challenger[0].since is not None
    assert [t for t in history.at(T0) if t.target == "challenger"] == []


def test_a_target_first_seen_out_of_band_keeps_an_unknown_holder_before_it(world: World) -> None:
    # a finding says what MLflow shows now, nothing of what held the target before
    world.clock.advance(hours=1)
    world.registry.aliases[("iris", "challenger")] = "4"
    enforce(world.uow, world.ctx, MLFLOW_WEBHOOKS, ("iris",), detected_by={"source": "test"})
    history = service.model_history(world.uow, world.ctx, "vic", "iris")
    challenger = [(t.version, t.source) for t in history.tenures if t.target == "challenger"]
    assert challenger[:2] == [(None, BEFORE), ("4", OUT_OF_BAND)]
