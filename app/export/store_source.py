"""The governance store as an ExportSource: reads through the abstract unit of work only.

Reads happen in short transactions (CHUNK events each) so that an export of a large log never
holds the database (SQLite serialises writers for the whole of a transaction).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

from app.export.model import (
    Execution,
    ExportScope,
    GateResult,
    GovernanceSnapshot,
    PolicyRef,
    RequestRecord,
    Signature,
    TargetChange,
    VersionRecord,
)
from governance import domain
from governance.audit import GENESIS_HASH, AuditRecord, format_ts
from governance.errors import NotFound
from governance.policy import policy_name
from governance.store_ports import UnitOfWork

if TYPE_CHECKING:
    from app.facade import GovernanceFacade
    from app.settings import Settings

CHUNK = 5000
POLICY_OBJECT = ("policy", "active")  # where governance.service records policy loads


def _ts(moment: datetime | None) -> str:
    return format_ts(moment) if moment else ""


class StoreSource:
    """An ExportSource over a governance unit of work (SQLite or PostgreSQL)."""

    def __init__(self, uow_factory: Callable[[], UnitOfWork]) -> None:
        self._uow = uow_factory

    def chain_head(self) -> tuple[int, str]:
        with self._uow() as uow:
            head = uow.audit.head()
        return (head.seq, head.entry_hash) if head else (0, GENESIS_HASH)

    def iter_events(self, from_seq: int, to_seq: int) -> Iterator[AuditRecord]:
        next_seq = from_seq
        while next_seq <= to_seq:
            batch: list[AuditRecord] = []
            with self._uow() as uow:
                stream = uow.audit.iterate(next_seq)
                try:
                    for rec in stream:
                        if rec.seq > to_seq:
                            break
                        batch.append(rec)
                        if len(batch) >= CHUNK:
                            break
                finally:
                    close = getattr(stream, "close", None)
                    if close:
                        close()
            if not batch:
                return
            yield from batch
            next_seq = batch[-1].seq + 1

    def seq_range(self, since: str | None, until: str | None) -> tuple[int, int] | None:
        last_seq, _ = self.chain_head()
        if last_seq == 0:
            return None
        if since is None and until is None:
            first = next(self.iter_events(1, last_seq), None)
            return (first.seq, last_seq) if first else None
        lo: int | None = None
        hi: int | None = None
        # A full scan: timestamps follow seq in practice, but seq is the truth.
        for rec in self.iter_events(1, last_seq):
            if (since is None or rec.ts >= since) and (until is None or rec.ts < until):
                lo = rec.seq if lo is None else lo
                hi = rec.seq
        return (lo, hi) if lo is not None and hi is not None else None

    def snapshot(self, scope: ExportScope) -> GovernanceSnapshot:
        with self._uow() as uow:
            requests = [r for r in self._requests(uow, scope) if _in_period(r, scope)]
            requests.sort(key=lambda r: (r.created_at, r.id))
            names: dict[str, str] = {}
            records = tuple(self._record(uow, r, names) for r in requests)
            models = scope.models or tuple(sorted({r.model for r in requests}))
            if not scope.filtered:
                models = ()
            history = self._history(uow, models, scope)
            policies = self._policies(uow)
        return GovernanceSnapshot(
            versions=_versions(records, history),
            target_history=history,
            requests=records,
            policies=policies,
        )

    # --- pieces ----------------------------------------------------------------------------

    @staticmethod
    def _requests(uow: UnitOfWork, scope: ExportScope) -> list[domain.PromotionRequest]:
        if scope.request_id is not None:
            try:
                found = uow.requests.get(scope.request_id)
            except NotFound:
                return []
            return [found] if not scope.models or found.model in scope.models else []
        if scope.models:
            return [r for m in scope.models for r in uow.requests.find(model=m)]
        return list(uow.requests.find())

    @staticmethod
    def _record(
        uow: UnitOfWork, req: domain.PromotionRequest, names: dict[str, str]
    ) -> RequestRecord:
        evidence = _evidence(req)
        found = evidence.get("candidate")
        candidate: dict[str, Any] = found if isinstance(found, dict) else {}
        decision = uow.decisions.get(req.id)
        signatures = []
        for vote in uow.votes.for_request(req.id):
            if vote.approver not in names:
                user = uow.users.find(vote.approver)
                names[vote.approver] = user.display_name if user and user.display_name else ""
            signatures.append(
                Signature(
                    signer=vote.approver,
                    printed_name=vote.signer_name or names[vote.approver] or vote.approver,
                    role=vote.role_at_signing,
                    decision=vote.decision,
                    meaning=vote.meaning,
                    signed_at=_ts(vote.signed_at),
                    reauth_method=vote.reauth_method,
                    comment=vote.comment,
                    content_hash=vote.content_hash,
                )
            )
        executions = tuple(
            Execution(
                at=_ts(x.at),
                outcome=x.outcome,
                actor=x.actor,
                detail=f"attempt {x.attempt}; previous holder {x.previous_holder or 'none'}"
                + (f"; {x.detail}" if x.detail else ""),
            )
            for x in uow.executions.for_request(req.id)
        )
        return RequestRecord(
            request_id=req.id,
            model=req.model,
            version=req.version,
            target=req.target,
            target_kind=req.target_kind,
            state=req.state,
            requester=req.requester,
            created_at=_ts(req.created_at),
            kind=req.kind,
            justification=req.justification,
            run_author=str(candidate.get("run_author") or ""),
            run_id=str(candidate.get("run_id") or ""),
            quorum=decision.quorum if decision else 0,
            policy_hash=req.policy_hash,
            evidence_hash=req.evidence_hash,
            content_hash=req.content_hash,
            gates=tuple(_gate(g) for g in evidence.get("gates") or () if isinstance(g, dict)),
            signatures=tuple(signatures),
            decision=decision.outcome if decision else "",
            decided_at=_ts(decision.decided_at) if decision else "",
            executions=executions,
            related_request=req.related_request_id or "",
        )

    @staticmethod
    def _history(
        uow: UnitOfWork, models: tuple[str, ...], scope: ExportScope
    ) -> tuple[TargetChange, ...]:
        found = (
            [x for m in models for x in uow.executions.successes(m)]
            if models
            else list(uow.executions.successes())
        )
        until = scope.until
        return tuple(
            TargetChange(
                at=_ts(x.at),
                model=x.model,
                kind=x.target_kind,
                target=x.target,
                version=x.version,
                previous=x.previous_holder or "",
                request_id=x.request_id,
                actor=x.actor,
            )
            for x in sorted(found, key=lambda x: x.at)
            if until is None or x.at < until
        )

    @staticmethod
    def _policies(uow: UnitOfWork) -> tuple[PolicyRef, ...]:
        seen: dict[str, PolicyRef] = {}
        for rec in uow.audit.for_object(*POLICY_OBJECT):
            payload = _loads(rec.payload)
            digest = str(payload.get("hash") or "")
            if rec.action == domain.AuditAction.POLICY_LOADED and digest not in seen:
                # Entries written before policies were recorded by name carry the server path.
                name = policy_name(str(payload.get("source") or "policy"))
                seen[digest] = PolicyRef(name, digest, rec.ts)
        return tuple(seen.values())


def _in_period(req: domain.PromotionRequest, scope: ExportScope) -> bool:
    if scope.until is not None and req.created_at >= scope.until:
        return False
    last = req.updated_at or req.created_at
    return scope.since is None or last >= scope.since


def _loads(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _evidence(req: domain.PromotionRequest) -> dict[str, Any]:
    try:
        return req.evidence_dict()
    except ValueError:
        return {}


def _gate(g: dict[str, Any]) -> GateResult:
    detail = str(g.get("detail") or "")
    if g.get("skipped"):
        detail = detail or "skipped"
    return GateResult(
        name=str(g.get("gate") or "gate"), passed=bool(g.get("passed")), detail=detail
    )


def _versions(
    records: tuple[RequestRecord, ...], history: tuple[TargetChange, ...]
) -> tuple[VersionRecord, ...]:
    """Every version the ledger knows of, with the targets the ledger says it holds now."""
    holders: dict[tuple[str, str, str], str] = {}
    for change in history:  # oldest first: the last success per target wins
        holders[(change.model, change.kind, change.target)] = change.version
    authors = {(r.model, r.version): r.run_author for r in records}
    runs = {(r.model, r.version): r.run_id for r in records}
    keys = sorted({(r.model, r.version) for r in records} | {(c.model, c.version) for c in history})
    out = []
    for model, version in keys:
        held = [t for (m, k, t), v in holders.items() if m == model and v == version]
        aliases = tuple(
            sorted(
                t
                for (m, k, t), v in holders.items()
                if m == model and v == version and k == "alias"
            )
        )
        stages = [t for t in held if t not in aliases]
        out.append(
            VersionRecord(
                model=model,
                version=version,
                run_id=runs.get((model, version), ""),
                run_author=authors.get((model, version), ""),
                aliases=aliases,
                stage=", ".join(stages),
            )
        )
    return tuple(out)


@contextmanager
def open_source(settings: Settings) -> Iterator[StoreSource]:
    """The configured governance store as an ExportSource, released on exit.

    Raises:
        SchemaOutOfDate: The database is behind the code (run `db upgrade`).
        PolicyError: The policy file is invalid.
    """
    from app.bootstrap import build_governance

    facade = build_governance(settings)
    try:
        yield facade_source(facade)
    finally:
        facade.dispose()


def facade_source(facade: GovernanceFacade) -> StoreSource:
    """An ExportSource reading through the facade's store in read-only transactions."""
    return StoreSource(lambda: facade.store.unit_of_work(read_only=True))
