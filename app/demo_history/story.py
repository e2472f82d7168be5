"""The runner of the demo history: a list of steps, each idempotent, written through the facade.

Every step acts as the people of the demo would, through `GovernanceFacade` (sign in, request,
sign with a comment and the password again, break glass, expire), with a `StoryClock` that puts
its events in the past. A step does only what is missing, so an interrupted seed resumes where it
stopped, and a step added later (an out-of-band move put back) is written into a demo
that already holds the rest of the story.

Besides its steps, the story has jobs: what a scheduler does at set moments while the story
unfolds (the daily monitoring job). A job is a StoryStep too; it runs when the story's clock
passes its moment, between or inside the steps, so the chain stays in time order however long a
step's own moments last (a request signed four days after it was made).

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
from typing import TYPE_CHECKING, Any

from app.demo_history.clock import TICK, Moment, StoryClock, Timeline
from app.demo_history.ledger import BatchKey, Ledger, RequestKey, key_of, read_ledger
from app.demo_users import DEMO_USERS, ensure_demo_users, seed_demo_users
from app.errors import UserFacingError
from app.settings import Settings
from governance.domain import CLI_OPERATOR, SCHEDULER, PromotionRequest, RequestKind, State
from governance.errors import GovernanceError, SchemaOutOfDate

if TYPE_CHECKING:
    from app.batch_monitoring.service import BatchMonitoring
    from app.facade import GovernanceFacade


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
        batches: Monitoring batches the step scores (from runs of the demo store); the step is
            done once the ledger holds each of them.
        done: Any further check of whether the ledger already holds the step.
    """

    title: str
    when: Moment
    run: Callable[[Story], None]
    requests: tuple[tuple[RequestKey, str], ...] = ()
    events: tuple[str, ...] = ()
    batches: tuple[BatchKey, ...] = ()
    done: Callable[[Ledger], bool] | None = None

    def is_done(self, ledger: Ledger) -> bool:
        states = {key_of(r): r.state for r in ledger.requests}
        return (
            all(states.get(key) == state for key, state in self.requests)
            and set(self.events) <= ledger.actions
            and set(self.batches) <= ledger.batches
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
    jobs: list[tuple[datetime, StoryStep]] = field(default_factory=list)  # due, oldest first
    memo: dict[Any, Any] = field(default_factory=dict)  # what steps look up once per story
    _monitoring: BatchMonitoring | None = field(default=None, init=False, repr=False)

    def at(self, moment: Moment) -> None:
        self.advance(moment(self.timeline))

    def advance(self, when: datetime) -> None:
        """Move the story's clock to `when`, running first every job due before it."""
        while self.jobs and self.jobs[0][0] < when:
            due, job = self.jobs.pop(0)
            self.clock.at(due)
            try:
                job.run(self)
            except (GovernanceError, UserFacingError, StoryError) as exc:
                raise StoryError(f"{job.title}: {exc}") from exc
            self.echo(f"demo history: {job.title}")
        self.clock.at(when)

    def monitoring(self) -> BatchMonitoring:
        """Monitoring over time on the story's clock (built on first use)."""
        if self._monitoring is None:
            from app.bootstrap import build_batch_monitoring

            self._monitoring = build_batch_monitoring(self.settings, self.facade)
        return self._monitoring

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
        self.advance(moment)
        self.facade.expire_due(SCHEDULER)


def seed_demo_history(
    settings: Settings,
    steps: tuple[StoryStep, ...],
    *,
    jobs: tuple[StoryStep, ...] = (),
    now: datetime | None = None,
    echo: Callable[[str], None] = print,
    warn: Callable[[str], None] = lambda line: print(line, file=sys.stderr),
) -> bool:
    """Write the steps and jobs the ledger does not hold yet; returns True when the story is
    complete.

    Args:
        steps: The story's chapters, in time order.
        jobs: What runs at set moments meanwhile (`Story.advance` runs each when the story's
            clock passes its moment).

    Also creates the demo users (in the story's first step, or now when the story is not
    written). Prints what it wrote; a refusal on the way is one line on `warn`.
    """
    everything = (*steps, *jobs)
    try:
        ledger = read_ledger(
            settings,
            tuple({a for step in everything for a in step.events}),
            tuple(sorted({(m, v) for step in everything for m, v, _ in step.batches})),
        )
    except SchemaOutOfDate as exc:
        warn(f"demo users and history not created: {exc}")
        return False
    claimed = {key for step in steps for key, _ in step.requests}
    foreign = [r for r in ledger.requests if key_of(r) not in claimed]
    todo = [step for step in steps if not step.is_done(ledger)]
    due = [job for job in jobs if not job.is_done(ledger)]
    timeline = Timeline(now or datetime.now(UTC))
    if foreign or not (todo or due):
        seed_demo_users(settings)
        echo(
            "demo history: the governance database holds requests of its own; left as it is"
            if foreign
            else "demo history exists: nothing to do"
        )
        return not (todo or due)
    start = min(step.when(timeline) for step in (*todo, *due))
    # The ledger holds part of the story: one of its requests, events or batches.
    scored = {key for step in everything for key in step.batches}
    started = (
        any(key_of(r) in claimed for r in ledger.requests)
        or bool(ledger.actions)
        or bool(ledger.batches & scored)
    )
    if not started and ledger.head_at is not None and ledger.head_at >= start:
        seed_demo_users(settings)
        warn(
            f"demo history not written: it begins on {start:%Y-%m-%d}, and this governance "
            f"database already holds entries up to {ledger.head_at:%Y-%m-%d %H:%M} UTC "
            "(a history is never written before existing entries); seed a new governance "
            "database to get it"
        )
        return False
    return _write(settings, todo, due, timeline, start, ledger, echo, warn)


def _write(
    settings: Settings,
    todo: list[StoryStep],
    due: list[StoryStep],
    timeline: Timeline,
    start: datetime,
    ledger: Ledger,
    echo: Callable[[str], None],
    warn: Callable[[str], None],
) -> bool:
    from app.bootstrap import build_governance

    if ledger.head_at is not None:
        start = max(start, ledger.head_at + TICK)
    clock = StoryClock(start)
    facade = build_governance(settings, clock=clock)
    jobs = sorted(((job.when(timeline), job) for job in due), key=lambda pair: pair[0])
    story = Story(facade, clock, timeline, settings, echo, jobs=jobs)
    try:
        for step in todo:
            try:
                story.at(step.when)
                step.run(story)
            except (GovernanceError, UserFacingError, StoryError) as exc:
                warn(f"demo history stopped at {step.title!r}: {exc}")
                return False
            echo(f"demo history: {step.title}")
        try:
            story.advance(timeline.end)  # the jobs due after the last step
        except StoryError as exc:
            warn(f"demo history stopped: {exc}")
            return False
    finally:
        story.memo.clear()  # what steps kept for the story (e.g. downloaded batch folders)
        facade.dispose()
    if clock.clamped:
        echo(f"demo history: {clock.clamped} moment(s) moved after the ledger's newer entries")
    return True
