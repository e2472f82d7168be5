"""What the governance database holds of the demo history, read before the story runs.

The runner (`story.seed_demo_history`) asks which steps are done: the story's requests and their
states, the demo users, the chain's head, the audit actions the steps record, and the monitoring
batches they score. Read without writing anything and without loading the policy.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from app.demo_users import DEMO_USERS
from app.settings import Settings
from governance.domain import PromotionRequest

# (model, version, target, kind): the story opens at most one request of each.
RequestKey = tuple[str, str, str, str]
# (model, version, artifact path in the version's run): a monitoring batch the story scores.
BatchKey = tuple[str, str, str]


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
    batches: frozenset[BatchKey] = frozenset()  # the story's monitoring batches recorded


def read_ledger(
    settings: Settings,
    actions: tuple[str, ...] = (),
    versions: tuple[tuple[str, str], ...] = (),
) -> Ledger:
    """The ledger's requests, users, head, and the steps' events and batches (no policy load).

    Args:
        actions: Audit actions whose presence the steps ask about (`StoryStep.events`).
        versions: Model versions whose monitoring batches the steps ask about
            (`StoryStep.batches`).

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
            batches = frozenset(
                (model, version, _artifact_path(b.source))
                for model, version in versions
                for b in uow.monitoring.batches(model, version)
            )
            return Ledger(
                requests=uow.requests.find(),
                users=frozenset(a.username for a in DEMO_USERS if uow.users.find(a.username)),
                head_seq=head[0].seq if head else 0,
                head_at=_parse_ts(head[0].ts) if head else None,
                actions=present,
                batches=batches,
            )
    finally:
        store.dispose()


def _artifact_path(source: str) -> str:
    """The path inside the run of a `runs:/RUN_ID/path` source (any other source as it is)."""
    if not source.startswith("runs:/"):
        return source
    return source[len("runs:/") :].lstrip("/").partition("/")[2]


def _parse_ts(ts: str) -> datetime:
    return datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
