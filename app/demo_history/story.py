"""The runner of the demo history: a list of steps, each idempotent, written through the facade.

Every step acts as the people of the demo would, through `GovernanceFacade` (sign in, request,
sign with a comment and the password again, break glass, expire), with a `StoryClock` that puts
its events in the past. A step does only what is missing, so an interrupted seed resumes where it
stopped, and a step added later (an out-of-band move, a monitoring alert) is written into a demo
that already holds the rest of the story.

A governance database holding requests that are not the story's is left alone. The story is
written into the past, so it is written only into a ledger whose newest entry is older than the
story's first step (or that already holds part of the story): the chain's timestamps then rise
with its seq.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from app.demo_history.clock import TICK, Moment, StoryClock, Timeline
from app.demo_users import DEMO_USERS, ensure_demo_users, seed_demo_users
from app.errors import UserFacingError
from app.settings import Settings
from governance.domain import CLI_OPERATOR, SCHEDULER, PromotionRequest, RequestKind, State
from governance.errors import GovernanceError, SchemaOutOfDate

if TYPE_CHECKING:
    from app.facade import GovernanceFacade

# (model, version, target, kind): the story opens at most one request of each.
RequestKey = tuple[str, str, str, str]


def key_of(request: PromotionRequest) -> RequestKey:
    return (request.model, request.version, request.target, request.kind)


@dataclass(frozen=True)
class Ledger:
    """What the governance database holds before the story runs (read without writing)."""

    requests: tuple[PromotionRequest, ...]
    users: frozenset[str]
    head_seq: int
    head_at: datetime | None
    actions: frozenset[str]  # the audit actions the chain holds at least once


@dataclass(frozen=True)
class StoryStep:
    """One chapter of the demo history.

    Attributes:
        title: What happened, for the seed's output.
        when: The step's first moment (the runner sets the clock there before `run`).
        run: Does what is missing of the step (idempotent); later moments via `Story.at`.
        requests: The requests the step opens, with the state each ends in. They make the step
            done, and they are the story's own: a ledger with any other request is left alone.
        events: Audit actions the step records (e.g. `out_of_band_reverted`); the step is done
            once the chain holds each of them.
        done: Any further check of whether the ledger already holds the step.
    """

    title: str
    when: Moment
    run: Callable[[Story], None]
    requests: tuple[tuple[RequestKey, str], ...] = ()
    events: tuple[str, ...] = ()
    done: Callable[[Ledger], bool] | None = None

    def is_done(self, ledger: Ledger) -> bool:
        states = {key_of(r): r.state for r in ledger.requests}
        return (
            all(states.get(key) == state for key, state in self.requests)
            and set(self.events) <= ledger.actions
            and (self.done is None or self.done(ledger))
        )


@dataclass(frozen=True)
class Before:
    """The registry of one model as it was just before a step (see `demo_registry`)."""

    aliases: Mapping[str, str | None] = field(default_factory=dict)
    stages: Mapping[str, str] = field(default_factory=dict)


class StoryError(Exception):
    """The story cannot go on (e.g. the policy in force does not let a request expire yet)."""


@dataclass
class Story:
    """What a step acts with: the facade on the story's clock, and the demo's people."""

    facade: GovernanceFacade
    clock: StoryClock
    timeline: Timeline
    settings: Settings
    echo: Callable[[str], None]
    passwords: Mapping[str, str] = field(
        default_factory=lambda: {a.username: a.password for a in DEMO_USERS}
    )

    def at(self, moment: Moment) -> None:
        self.clock.at(moment(self.timeline))

    def find(self, model: str, version: str, target: str, kind: str) -> PromotionRequest | None:
        for request in self.facade.list_requests(CLI_OPERATOR, model=model):
            if key_of(request) == (model, version, target, kind):
                return request
        return None

    def metric(self, model: str, version: str, name: str) -> float:
        """A metric of the version's source run, read through the registry port."""
        return float(self.facade.context.registry.get_version(model, version).metrics[name])

    def drift_share(self, model: str, version: str) -> float:
        """The share of drifted columns the request evidence will pin (0 without a report)."""
        source = self.facade.context.evidence
        summary = source.drift_summary(model, version) if source else None
        return float((summary or {}).get("share_drifted") or 0.0)

    def sign_in(self, who: str) -> None:
        self.facade.authenticate(who, self.passwords[who])

    def ensure_users(self) -> None:
        created = ensure_demo_users(self.facade)
        if created:
            roles = {a.username: a.role for a in DEMO_USERS}
            self.echo("demo users created: " + ", ".join(f"{n} ({roles[n]})" for n in created))

    def set_registry(self, model: str, before: Before) -> None:
        """Move the model's aliases and stages with MLflow's client, outside the ledger: the
        registry as it was before a step, or an out-of-band move as a data scientist makes one."""
        from app.mlflow_gateway.demo_registry import set_registry_state

        set_registry_state(self.settings, model, aliases=before.aliases, stages=before.stages)

    def request(
        self,
        who: str,
        model: str,
        version: str,
        target: str,
        justification: Callable[[], str],
        before: Before,
    ) -> PromotionRequest:
        """The story's request for (model, version, target), opened by `who` unless it exists.

        The registry is first put back as it was (`before`), so the evidence compares the
        candidate with the holder of that day and the execution moves the target for real.
        """
        found = self.find(model, version, target, RequestKind.NORMAL)
        if found is not None:
            return found
        self.set_registry(model, before)
        self.sign_in(who)
        return self.facade.request_promotion(who, model, version, target, justification())

    def break_glass(
        self,
        who: str,
        model: str,
        version: str,
        target: str,
        justification: Callable[[], str],
        before: Before,
    ) -> PromotionRequest:
        """The break-glass promotion (unless it exists); returns its follow-up review."""
        if self.find(model, version, target, RequestKind.BREAK_GLASS) is None:
            self.set_registry(model, before)
            self.sign_in(who)
            self.facade.break_glass(
                who, model, version, target, justification(), password=self.passwords[who]
            )
        follow_up = self.find(model, version, target, RequestKind.FOLLOW_UP)
        if follow_up is None:
            raise StoryError(f"break-glass on {model} v{version} opened no follow-up review")
        return follow_up

    def sign(self, who: str, request: PromotionRequest, decision: str, comment: str) -> None:
        """`who` signs in and signs, with a comment and the password again, as in Approvals."""
        details = self.facade.get_request(CLI_OPERATOR, request.id)
        if details.request.state != State.PENDING or any(v.approver == who for v in details.votes):
            return
        self.sign_in(who)
        self.facade.sign_off(
            who,
            request.id,
            decision=decision,
            comment=comment,
            content_hash=details.request.content_hash,
            password=self.passwords[who],
        )

    def expire(self, request: PromotionRequest, after_minutes: int = 30) -> None:
        """The scheduler's housekeeping, `after_minutes` after the request's expiry."""
        current = self.facade.get_request(CLI_OPERATOR, request.id).request
        if current.state != State.PENDING:
            return
        moment = current.expires_at + timedelta(minutes=after_minutes)
        if moment > self.timeline.end:
            raise StoryError(
                f"request {request.id} expires only on {current.expires_at:%Y-%m-%d %H:%M} UTC "
                "under the policy in force"
            )
        self.clock.at(moment)
        self.facade.expire_due(SCHEDULER)


def read_ledger(settings: Settings, actions: tuple[str, ...] = ()) -> Ledger:
    """The ledger's requests, users and head, read without writing anything (no policy load).

    Args:
        actions: Audit actions whose presence the steps ask about (`StoryStep.events`).

    Raises:
        SchemaOutOfDate: The database needs `python -m app.cli db upgrade`.
    """
    from governance.db import make_engine
    from governance.unit_of_work import SqlStore

    store = SqlStore(make_engine(settings.db_url))
    try:
        store.check_schema()
        with store.unit_of_work(read_only=True) as uow:
            head = uow.audit.search(limit=1)
            present = frozenset(a for a in actions if uow.audit.search(actions=(a,), limit=1))
            return Ledger(
                requests=uow.requests.find(),
                users=frozenset(a.username for a in DEMO_USERS if uow.users.find(a.username)),
                head_seq=head[0].seq if head else 0,
                head_at=_parse_ts(head[0].ts) if head else None,
                actions=present,
            )
    finally:
        store.dispose()


def _parse_ts(ts: str) -> datetime:
    return datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def seed_demo_history(
    settings: Settings,
    steps: tuple[StoryStep, ...],
    *,
    now: datetime | None = None,
    echo: Callable[[str], None] = print,
    warn: Callable[[str], None] = lambda line: print(line, file=sys.stderr),
) -> bool:
    """Write the steps the ledger does not hold yet; returns True when the story is complete.

    Also creates the demo users (in the story's first step, or now when the story is not
    written). Prints what it wrote; a refusal on the way is one line on `warn`.
    """
    try:
        ledger = read_ledger(settings, tuple({a for step in steps for a in step.events}))
    except SchemaOutOfDate as exc:
        warn(f"demo users and history not created: {exc}")
        return False
    claimed = {key for step in steps for key, _ in step.requests}
    foreign = [r for r in ledger.requests if key_of(r) not in claimed]
    todo = [step for step in steps if not step.is_done(ledger)]
    timeline = Timeline(now or datetime.now(UTC))
    if foreign or not todo:
        seed_demo_users(settings)
        echo(
            "demo history: the governance database holds requests of its own; left as it is"
            if foreign
            else "demo history exists: nothing to do"
        )
        return not todo
    start = todo[0].when(timeline)
    started = any(key_of(r) in claimed for r in ledger.requests)
    if not started and ledger.head_at is not None and ledger.head_at >= start:
        seed_demo_users(settings)
        warn(
            f"demo history not written: it begins on {start:%Y-%m-%d}, and this governance "
            f"database already holds entries up to {ledger.head_at:%Y-%m-%d %H:%M} UTC "
            "(a history is never written before existing entries); seed a new governance "
            "database to get it"
        )
        return False
    return _write(settings, todo, timeline, ledger, echo, warn)


def _write(
    settings: Settings,
    todo: list[StoryStep],
    timeline: Timeline,
    ledger: Ledger,
    echo: Callable[[str], None],
    warn: Callable[[str], None],
) -> bool:
    from app.bootstrap import build_governance

    start = todo[0].when(timeline)
    if ledger.head_at is not None:
        start = max(start, ledger.head_at + TICK)
    clock = StoryClock(start)
    facade = build_governance(settings, clock=clock)
    story = Story(facade, clock, timeline, settings, echo)
    try:
        for step in todo:
            story.at(step.when)
            try:
                step.run(story)
            except (GovernanceError, UserFacingError, StoryError) as exc:
                warn(f"demo history stopped at {step.title!r}: {exc}")
                return False
            echo(f"demo history: {step.title}")
    finally:
        facade.dispose()
    if clock.clamped:
        echo(f"demo history: {clock.clamped} moment(s) moved after the ledger's newer entries")
    return True
