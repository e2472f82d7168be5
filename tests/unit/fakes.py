"""In-memory implementations of the governance ports, honouring the same contracts as SQL.

FakeUnitOfWork keeps a committed state and a working copy: leaving `with` without `commit()`
throws the working copy away, exactly like a rolled-back transaction. The repositories raise
the same errors as the SQL ones (Conflict on the one-pending-request rule and on duplicate ids,
DuplicateVote on (request, approver), Conflict on a stale row_version).
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from governance.audit import GENESIS_HASH, AuditRecord, seal
from governance.context import Context, Reauthentication
from governance.domain import (
    ADMIN,
    APPROVER,
    AUDITOR,
    REAUTH_PASSWORD,
    REQUESTER,
    VIEWER,
    BrowserSession,
    Decision,
    Execution,
    PromotionRequest,
    RequestKind,
    SignOffResult,
    State,
    User,
    Vote,
)
from governance.errors import (
    Conflict,
    DuplicateVote,
    GovernanceError,
    NotFound,
    RegistryUnavailable,
    UnknownModel,
)
from governance.policy import Policy, load_policy_file, parse_policy
from governance.ports import RegistryVersion, TargetAssignment
from governance.row_seals import tampered

DEFAULT_POLICY = Path(__file__).resolve().parents[2] / "governance" / "default_policy.yaml"
T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


class FixedClock:
    """A clock that moves only when told to."""

    def __init__(self, now: datetime = T0) -> None:
        self.current = now

    def now(self) -> datetime:
        return self.current

    def advance(self, **delta: float) -> None:
        self.current += timedelta(**delta)


class FakeHasher:
    """A cheap, deterministic stand-in for argon2 (the real one is tested on its own)."""

    def hash(self, password: str) -> str:
        return "fake$" + hashlib.sha256(password.encode()).hexdigest()

    def verify(self, password_hash: str, password: str) -> bool:
        return password_hash == self.hash(password)

    def needs_rehash(self, password_hash: str) -> bool:
        return False


@dataclass
class _State:
    requests: dict[str, PromotionRequest] = field(default_factory=dict)
    votes: dict[tuple[str, str], Vote] = field(default_factory=dict)
    users: dict[str, User] = field(default_factory=dict)
    decisions: dict[str, Decision] = field(default_factory=dict)
    executions: list[Execution] = field(default_factory=list)
    audit: list[AuditRecord] = field(default_factory=list)
    # (kind, request id, approver or attempt) -> the seq of the audit entry the row is bound to
    bound: dict[tuple[str, str, str], int] = field(default_factory=dict)
    sessions: dict[str, BrowserSession] = field(default_factory=dict)


def _blocks_pending(r: PromotionRequest) -> bool:
    return r.state == State.PENDING and r.kind != RequestKind.FOLLOW_UP


class FakeRequests:
    def __init__(self, state: _State) -> None:
        self.s = state

    def _check_pending(self, request: PromotionRequest) -> None:
        if not _blocks_pending(request):
            return
        for other in self.s.requests.values():
            same = (other.model, other.target_kind, other.target) == (
                request.model,
                request.target_kind,
                request.target,
            )
            if other.id != request.id and same and _blocks_pending(other):
                raise Conflict("another request is pending for this target")

    def add(self, request: PromotionRequest) -> None:
        if request.id in self.s.requests:
            raise Conflict(f"request {request.id} exists")
        self._check_pending(request)
        self.s.requests[request.id] = request

    def get(self, request_id: str) -> PromotionRequest:
        try:
            return self.s.requests[request_id]
        except KeyError:
            raise NotFound(f"no request {request_id}") from None

    def update(self, request: PromotionRequest) -> None:
        if request.seal_problem:  # as the SQL store: never launder a row that fails its seal
            raise tampered(f"request {request.id}", request.seal_problem)
        stored = self.get(request.id)
        if stored.row_version != request.row_version - 1:
            raise Conflict(f"request {request.id} was changed by someone else")
        self._check_pending(request)
        self.s.requests[request.id] = request

    def pending_for_target(
        self, model: str, target_kind: str, target: str
    ) -> PromotionRequest | None:
        for r in self.s.requests.values():
            if (r.model, r.target_kind, r.target) == (model, target_kind, target) and (
                _blocks_pending(r)
            ):
                return r
        return None

    def find(
        self, *, state: str | None = None, model: str | None = None, limit: int | None = None
    ) -> tuple[PromotionRequest, ...]:
        found = [
            r
            for r in self.s.requests.values()
            if (state is None or r.state == state) and (model is None or r.model == model)
        ]
        found.sort(key=lambda r: (r.created_at, r.id), reverse=True)
        return tuple(found[:limit] if limit is not None else found)

    def due_for_expiry(self, now: datetime) -> tuple[PromotionRequest, ...]:
        due = [r for r in self.s.requests.values() if r.state == State.PENDING]
        return tuple(sorted((r for r in due if r.expires_at <= now), key=lambda r: r.expires_at))


class FakeVotes:
    def __init__(self, state: _State) -> None:
        self.s = state

    def add(self, vote: Vote, *, audit_seq: int) -> None:
        self.s.bound[("vote", vote.request_id, vote.approver)] = audit_seq
        key = (vote.request_id, vote.approver)
        if key in self.s.votes:
            raise DuplicateVote("already recorded")
        self.s.votes[key] = vote

    def get(self, request_id: str, approver: str) -> Vote | None:
        return self.s.votes.get((request_id, approver))

    def for_request(self, request_id: str) -> tuple[Vote, ...]:
        return tuple(v for (rid, _), v in self.s.votes.items() if rid == request_id)


class FakeUsers:
    def __init__(self, state: _State) -> None:
        self.s = state

    def add(self, user: User) -> None:
        if user.name in self.s.users:
            raise Conflict(f"user {user.name!r} exists already")
        self.s.users[user.name] = user

    def find(self, name: str) -> User | None:
        return self.s.users.get(name)

    def update(self, user: User) -> None:
        if user.seal_problem:  # as the SQL store: never launder a row that fails its seal
            raise tampered(f"the record of user {user.name!r}", user.seal_problem)
        if user.name not in self.s.users:
            raise NotFound(user.name)
        self.s.users[user.name] = user

    def list(self) -> tuple[User, ...]:
        return tuple(sorted(self.s.users.values(), key=lambda u: u.name))


class FakeSessions:
    def __init__(self, state: _State) -> None:
        self._s = state

    def add(self, session: BrowserSession) -> None:
        taken = {(s.id, s.secret_hash, s.grant_hash) for s in self._s.sessions.values()}
        for sid, secret, grant in taken:
            if session.id == sid or (secret and secret == session.secret_hash):
                raise Conflict("session exists")
            if grant and grant == session.grant_hash:
                raise Conflict("grant exists")
        self._s.sessions[session.id] = session

    def get(self, session_id: str) -> BrowserSession | None:
        return self._s.sessions.get(session_id)

    def find_by_secret(self, secret_hash: str) -> BrowserSession | None:
        return next((s for s in self._s.sessions.values() if s.secret_hash == secret_hash), None)

    def find_by_grant(self, grant_hash: str) -> BrowserSession | None:
        return next((s for s in self._s.sessions.values() if s.grant_hash == grant_hash), None)

    def update(self, session: BrowserSession) -> None:
        if session.id not in self._s.sessions:
            raise NotFound(f"no session {session.id}")
        self._s.sessions[session.id] = session

    def active(self, now: datetime, user: str | None = None) -> tuple[BrowserSession, ...]:
        found = [
            s
            for s in self._s.sessions.values()
            if not s.ended(now) and (user is None or s.user == user)
        ]
        return tuple(sorted(found, key=lambda s: s.created_at, reverse=True))

    def prune(self, expired_before: datetime) -> int:
        gone = [
            k
            for k, s in self._s.sessions.items()
            if min(s.expires_at, s.idle_expires_at) < expired_before
        ]
        for key in gone:
            del self._s.sessions[key]
        return len(gone)


class FakeDecisions:
    def __init__(self, state: _State) -> None:
        self.s = state

    def add(self, decision: Decision, *, audit_seq: int) -> None:
        self.s.bound[("decision", decision.request_id, "")] = audit_seq
        if decision.request_id in self.s.decisions:
            raise Conflict("decided already")
        self.s.decisions[decision.request_id] = decision

    def get(self, request_id: str) -> Decision | None:
        return self.s.decisions.get(request_id)


class FakeExecutions:
    def __init__(self, state: _State) -> None:
        self.s = state

    def add(self, execution: Execution, *, audit_seq: int) -> None:
        self.s.bound[("execution", execution.request_id, str(execution.attempt))] = audit_seq
        if any(
            (e.request_id, e.attempt) == (execution.request_id, execution.attempt)
            for e in self.s.executions
        ):
            raise Conflict("attempt exists")
        self.s.executions.append(execution)

    def for_request(self, request_id: str) -> tuple[Execution, ...]:
        return tuple(e for e in self.s.executions if e.request_id == request_id)

    def successes(self, model: str | None = None) -> tuple[Execution, ...]:
        return tuple(
            e
            for e in self.s.executions
            if e.outcome == "succeeded" and (model is None or e.model == model)
        )


class FakeAudit:
    def __init__(self, state: _State) -> None:
        self.s = state

    def append(
        self,
        *,
        actor: str,
        action: str,
        object_type: str,
        object_id: str,
        payload: Mapping[str, Any],
        at: datetime,
    ) -> AuditRecord:
        head = self.head()
        record = seal(
            prev_hash=head.entry_hash if head else GENESIS_HASH,
            seq=head.seq + 1 if head else 1,
            moment=at,
            actor=actor,
            action=action,
            object_type=object_type,
            object_id=object_id,
            payload=payload,
        )
        self.s.audit.append(record)
        return record

    def iterate(self, from_seq: int = 1) -> Iterator[AuditRecord]:
        return iter([r for r in self.s.audit if r.seq >= from_seq])

    def head(self) -> AuditRecord | None:
        return self.s.audit[-1] if self.s.audit else None

    def for_object(self, object_type: str, object_id: str) -> tuple[AuditRecord, ...]:
        return tuple(
            r for r in self.s.audit if (r.object_type, r.object_id) == (object_type, object_id)
        )

    def search(
        self,
        *,
        model: str = "",
        actor: str = "",
        actions: tuple[str, ...] = (),
        object_types: tuple[str, ...] = (),
        since: str = "",
        until: str = "",
        before_seq: int | None = None,
        limit: int | None = 100,
    ) -> tuple[AuditRecord, ...]:
        def of_model(r: AuditRecord) -> bool:
            if r.object_type == "request":
                req = self.s.requests.get(r.object_id)
                return req is not None and req.model == model
            return r.object_type == "target" and r.object_id.startswith(model + "/")

        found = [
            r
            for r in reversed(self.s.audit)
            if (not model or of_model(r))
            and (not actor or r.actor == actor)
            and (not actions or r.action in actions)
            and (not object_types or r.object_type in object_types)
            and (not since or r.ts >= since)
            and (not until or r.ts <= until)
            and (before_seq is None or r.seq < before_seq)
        ]
        return tuple(found if limit is None else found[:limit])


class FakeUnitOfWork:
    """Transactions over an in-memory committed state; rollback unless committed."""

    def __init__(self) -> None:
        self.committed = _State()
        self.commits = 0
        self.fail_next_commit = False
        self._bind(copy.deepcopy(self.committed))
        self.active = False
        self.reading_now = False

    def _bind(self, work: _State) -> None:
        self.work = work
        self.requests = FakeRequests(work)
        self.votes = FakeVotes(work)
        self.users = FakeUsers(work)
        self.decisions = FakeDecisions(work)
        self.executions = FakeExecutions(work)
        self.audit = FakeAudit(work)
        self.sessions = FakeSessions(work)

    def __enter__(self) -> Self:
        assert not self.active, "units of work are not nested"
        self.active = True
        self._bind(copy.deepcopy(self.committed))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.rollback()
        self.active = False

    @contextmanager
    def reading(self) -> Iterator[Self]:
        with self:
            self.reading_now = True
            try:
                yield self
            finally:
                self.reading_now = False

    def commit(self) -> None:
        assert not self.reading_now, "nothing is committed in uow.reading()"
        if self.fail_next_commit:
            self.fail_next_commit = False
            raise GovernanceError("the database connection was lost")
        self.committed = copy.deepcopy(self.work)
        self.commits += 1

    def rollback(self) -> None:
        self._bind(copy.deepcopy(self.committed))

    def lock_users(self) -> None:
        assert self.active, "lock_users needs an open transaction"

    def lock_request(self, request_id: str) -> PromotionRequest:
        assert self.active, "lock_request needs an open transaction"
        assert not self.reading_now, "uow.reading() takes no lock"
        return self.requests.get(request_id)

    # helpers for assertions (read the committed state only)
    def events(self, action: str | None = None) -> list[AuditRecord]:
        return [r for r in self.committed.audit if action is None or r.action == action]


class FakeRegistry:
    """An in-memory model registry implementing governance.ports.ModelRegistry."""

    def __init__(self) -> None:
        self.versions: dict[tuple[str, str], RegistryVersion] = {}
        self.aliases: dict[tuple[str, str], str] = {}
        self.stages: dict[tuple[str, str], str] = {}
        self.tags: dict[tuple[str, str], dict[str, str]] = {}
        self.unavailable = False
        self.writes_fail = False  # reads work, writes raise: MLflow dies between the two
        self.calls: list[tuple[str, ...]] = []

    def add(
        self,
        model: str,
        version: str,
        *,
        author: str,
        metrics: Mapping[str, float],
        params: Mapping[str, str] | None = None,
    ) -> None:
        self.versions[(model, version)] = RegistryVersion(
            model=model,
            version=version,
            run_id=f"run-{model}-{version}",
            run_author=author,
            stage="None",
            aliases=(),
            metrics=dict(metrics),
            params=dict(params or {}),
        )

    def _up(self, write: bool = False) -> None:
        if self.unavailable or (write and self.writes_fail):
            raise RegistryUnavailable("the model registry cannot be reached")

    def get_version(self, model: str, version: str) -> RegistryVersion:
        self._up()
        if (model, version) not in self.versions:
            raise UnknownModel(f"unknown model version {model} {version}")
        v = self.versions[(model, version)]
        aliases = tuple(a for (m, a), ver in self.aliases.items() if m == model and ver == version)
        tags = self.tags.get((model, version), {})
        return replace(
            v, stage=self.stages.get((model, version), "None"), aliases=aliases, tags=tags
        )

    def alias_holder(self, model: str, alias: str) -> str | None:
        self._up()
        return self.aliases.get((model, alias))

    def stage_holders(self, model: str, stage: str) -> tuple[str, ...]:
        self._up()
        return tuple(v for (m, v), s in self.stages.items() if m == model and s == stage)

    def set_alias(self, model: str, alias: str, version: str) -> None:
        self._up(write=True)
        self.calls.append(("set_alias", model, alias, version))
        self.aliases[(model, alias)] = version

    def delete_alias(self, model: str, alias: str) -> None:
        self._up(write=True)
        self.calls.append(("delete_alias", model, alias))
        self.aliases.pop((model, alias), None)

    def transition_stage(
        self, model: str, version: str, stage: str, *, archive_existing: bool
    ) -> None:
        self._up(write=True)
        self.calls.append(("transition_stage", model, version, stage))
        if archive_existing:
            for key, current in list(self.stages.items()):
                if key[0] == model and current == stage and key[1] != version:
                    self.stages[key] = "Archived"
        self.stages[(model, version)] = stage

    def set_version_tags(self, model: str, version: str, tags: Mapping[str, str]) -> None:
        self._up(write=True)
        self.calls.append(("set_version_tags", model, version))
        self.tags.setdefault((model, version), {}).update(tags)

    def assignments(self, models: tuple[str, ...] | None = None) -> tuple[TargetAssignment, ...]:
        self._up()
        found = [
            TargetAssignment(m, "alias", a, v)
            for (m, a), v in self.aliases.items()
            if models is None or m in models
        ]
        found += [
            TargetAssignment(m, "stage", s, v)
            for (m, v), s in self.stages.items()
            if s != "None" and (models is None or m in models)
        ]
        return tuple(found)


class FakeEvidenceSource:
    def __init__(self) -> None:
        self.drift: dict[tuple[str, str], dict[str, Any]] = {}
        self.importance: dict[tuple[str, str], dict[str, Any]] = {}

    def drift_summary(self, model: str, version: str) -> Mapping[str, Any] | None:
        return self.drift.get((model, version))

    def importance_summary(self, model: str, version: str) -> Mapping[str, Any] | None:
        return self.importance.get((model, version))


PASSWORD = "correct horse"
PEOPLE = {
    "rita": (REQUESTER,),  # a data scientist who requests
    "dan": (REQUESTER,),  # authored iris v1 and v2
    "bob": (APPROVER,),  # authored iris v3
    "carol": (APPROVER,),
    "dave": (APPROVER,),
    "erin": (ADMIN,),
    "frank": (AUDITOR,),
    "vic": (VIEWER,),
}


@dataclass
class World:
    """A small, fully wired governance world on fakes."""

    uow: FakeUnitOfWork
    registry: FakeRegistry
    clock: FixedClock
    evidence: FakeEvidenceSource
    ctx: Context

    def with_policy(self, policy: Policy | str) -> World:
        if isinstance(policy, str):
            policy = parse_policy(policy, "test-policy.yaml")
        self.ctx = replace(self.ctx, policy=policy)
        return self


def make_world(policy: Policy | None = None) -> World:
    """iris (aliases; v1 is champion) and housing (stages; v1 in Production), eight users."""
    uow = FakeUnitOfWork()
    registry = FakeRegistry()
    clock = FixedClock()
    registry.add("iris", "1", author="dan", metrics={"accuracy": 0.90}, params={"depth": "3"})
    registry.add("iris", "2", author="dan", metrics={"accuracy": 0.93}, params={"depth": "5"})
    registry.add("iris", "3", author="bob", metrics={"accuracy": 0.95}, params={"depth": "7"})
    registry.add("iris", "4", author="dan", metrics={"accuracy": 0.70}, params={"depth": "1"})
    registry.aliases[("iris", "champion")] = "1"
    registry.add("housing", "1", author="dan", metrics={"rmse": 50.0})
    registry.add("housing", "2", author="dan", metrics={"rmse": 45.0})
    registry.stages[("housing", "1")] = "Production"
    counter = iter(range(1, 10_000))
    evidence = FakeEvidenceSource()
    ctx = Context(
        registry=registry,
        clock=clock,
        policy=policy or load_policy_file(DEFAULT_POLICY),
        hasher=FakeHasher(),
        evidence=evidence,
        lockout_attempts=3,
        lockout_duration=timedelta(minutes=15),
        new_id=lambda: f"r{next(counter)}",
    )
    hasher = FakeHasher()
    for name, roles in PEOPLE.items():
        uow.committed.users[name] = User(
            name=name,
            display_name=name.title(),
            roles=roles,
            password_hash=hasher.hash(PASSWORD),
            created_at=T0,
        )
    return World(uow=uow, registry=registry, clock=clock, evidence=evidence, ctx=ctx)


def reauth(password: str = PASSWORD) -> Reauthentication:
    return Reauthentication(REAUTH_PASSWORD, password)


def open_request(
    world: World,
    version: str = "2",
    target: str = "champion",
    actor: str = "rita",
    model: str = "iris",
) -> PromotionRequest:
    from governance import service

    return service.request_promotion(
        world.uow, world.ctx, actor, model, version, target, "better on the holdout set"
    )


def vote(
    world: World,
    request: PromotionRequest,
    actor: str,
    decision: str = "approve",
    comment: str = "looked at the evidence",
    content_hash: str | None = None,
    password: str = PASSWORD,
) -> SignOffResult:
    from governance import service

    return service.sign_off(
        world.uow,
        world.ctx,
        actor,
        request.id,
        decision=decision,
        comment=comment,
        reauth=reauth(password),
        content_hash=request.content_hash if content_hash is None else content_hash,
    )
