"""`audit seal-existing`: seal, once, what was written before sealed records existed.

A database upgraded to sealed records holds entries and rows without a seal; they do not count
until an operator vouches for them. This module does the database part, in one transaction
under the chain lock:

- the hash chain must verify from genesis, every seal present must verify, and the unsealed
  entries must be a prefix 1..L of the chain (an unsealed entry after a sealed one was appended
  outside Countersign: refused);
- every unsealed vote, decision and execution is bound to the legacy entry that records it
  (`vote_recorded` by the approver, the decision's entry, the execution's outcome entry with
  its attempt) and sealed; a row that no entry records stays unsealed and is reported;
- unsealed users and requests are sealed as they stand (the users and their roles are listed
  in the record);
- one `audit_sealed_existing` entry, itself sealed, names L, its hash, the checkpoint that
  vouched for the entries (or the unvouched range the operator accepted) and what was sealed.
  `audit verify` accepts unsealed entries up to L because of it (governance.seal_check).

The caller (app/commands/seal_existing.py) checks the signed checkpoint.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from governance.audit import AuditRecord, VerifyResult
from governance.audit_store import stream_records, verify_audit_log
from governance.domain import AuditAction, ObjectType
from governance.errors import InvalidInput
from governance.orm import (
    AuditEventRow,
    Base,
    DecisionRow,
    ExecutionRow,
    RequestRow,
    UserRow,
    VoteRow,
)
from governance.row_seals import (
    DECISIONS,
    EXECUTIONS,
    REQUESTS,
    USERS,
    VOTES,
    decision_content,
    execution_content,
    request_content,
    user_content,
    vote_content,
)
from governance.seal_check import SealScan, legacy_through
from governance.unit_of_work import SqlStore

DECISION_ACTIONS = (
    AuditAction.REQUEST_APPROVED,
    AuditAction.REQUEST_REJECTED,
    AuditAction.BREAK_GLASS,
)
EXECUTION_ACTIONS = (AuditAction.EXECUTION_SUCCEEDED, AuditAction.EXECUTION_FAILED)


@dataclass(frozen=True)
class LegacyChain:
    """The unsealed part of the chain: entries 1..`through_seq`, ending in `through_hash`."""

    through_seq: int
    through_hash: str
    head_seq: int
    head_hash: str
    already_vouched: int  # seq an earlier audit_sealed_existing entry vouched for


@dataclass
class SealReport:
    """What `seal_existing` sealed and what it left unsealed."""

    record: AuditRecord | None = None
    sealed: dict[str, int] = field(default_factory=dict)
    unmatched: list[str] = field(default_factory=list)


def inspect_chain(store: SqlStore) -> LegacyChain:
    """Verify the chain (hashes and every seal present) and find its unsealed prefix.

    Raises:
        InvalidInput: The chain does not verify, a seal fails, or an unsealed entry follows a
            sealed one.
    """
    engine = store.engine
    with engine.connect() as conn:
        through = conn.execute(
            select(func.max(AuditEventRow.seq)).where(AuditEventRow.seal.is_(None))
        ).scalar()
        first_sealed = conn.execute(
            select(func.min(AuditEventRow.seq)).where(AuditEventRow.seal.is_not(None))
        ).scalar()
        vouched = legacy_through(conn, store.sealer)
    through = int(through or 0)
    if through and first_sealed is not None and int(first_sealed) < through:
        raise InvalidInput(
            f"entry seq {through} is not sealed but comes after sealed entries (from seq "
            f"{first_sealed}): it was appended outside Countersign; nothing sealed"
        )
    chain = verify_audit_log(engine, workers=1)
    if not chain.ok:
        raise InvalidInput(
            f"the audit chain does not verify (first broken seq {chain.first_broken_seq}: "
            f"{chain.reason}); nothing sealed"
        )
    sealed = _verify_present_seals(store, through)
    if not sealed.ok:
        raise InvalidInput(
            f"the audit chain does not verify (first broken seq {sealed.first_broken_seq}: "
            f"{sealed.reason}); nothing sealed"
        )
    through_hash = ""
    if through:
        held = store.entry_hashes([through])
        through_hash = held[through]
    return LegacyChain(
        through_seq=through,
        through_hash=through_hash,
        head_seq=chain.last_seq or 0,
        head_hash=chain.head_hash,
        already_vouched=vouched,
    )


def _verify_present_seals(store: SqlStore, through: int) -> VerifyResult:
    from governance.audit import verify_chain

    with store.engine.connect() as conn:
        scan = SealScan(store.sealer, through)
        rows = stream_records(conn, with_seal=True)
        return scan.result(verify_chain(scan.checked(rows)))


def seal_existing(
    store: SqlStore,
    chain: LegacyChain,
    *,
    actor: str,
    at: datetime,
    vouching: dict[str, Any],
) -> SealReport:
    """Seal the legacy rows and record it in one sealed `audit_sealed_existing` entry.

    Args:
        chain: From `inspect_chain`, checked by the caller against a signed checkpoint.
        vouching: What vouches for entries 1..through_seq (the checkpoint, or the accepted
            unvouched range), recorded as given.

    Raises:
        InvalidInput: The chain moved since it was inspected (stop the writers and retry).
    """
    report = SealReport()
    sealer = store.sealer
    with store.unit_of_work() as uow:
        if uow.audit.ensure_locked() != (chain.head_seq, chain.head_hash):
            raise InvalidInput(
                "the chain moved while it was checked: run seal-existing again (or stop the app "
                "replicas and the jobs first)"
            )
        session = uow.session
        index = _legacy_index(session, chain.through_seq)
        users = _unsealed(session, UserRow)
        requests = _unsealed(session, RequestRow)
        for row in users:
            row.seal = sealer.row(USERS, user_content(row.to_domain()))
        for row in requests:
            row.seal = sealer.row(REQUESTS, request_content(row.to_domain()))
        report.sealed = {"users": len(users), "requests": len(requests)}
        bound: list[tuple[str, type[Base], Callable[[Any], int | None]]] = [
            ("votes", VoteRow, lambda r: index.get(("vote", r.request_id, r.approver, r.decision))),
            (
                "decisions",
                DecisionRow,
                lambda r: index.get(("decision", r.request_id, r.outcome, "")),
            ),
            (
                "executions",
                ExecutionRow,
                lambda r: index.get(("execution", r.request_id, r.outcome, str(r.attempt))),
            ),
        ]
        for name, row_class, find in bound:
            count = 0
            for row in _unsealed(session, row_class):
                seq = find(row)
                if seq is None:
                    report.unmatched.append(_describe(name, row))
                    continue
                row.audit_seq = int(seq)
                row.seal = _bound_seal(store, name, row)
                count += 1
            report.sealed[name] = count
        session.flush()
        payload = {
            **vouching,
            "through_seq": chain.through_seq,
            "through_hash": chain.through_hash,
            "seal_key_id": sealer.key_id,
            "rows_sealed": report.sealed,
            "users": [
                {"name": u.name, "roles": json.loads(u.roles or "[]"), "disabled": u.disabled}
                for u in users
            ],
            "left_unsealed": report.unmatched[:200],
            "left_unsealed_count": len(report.unmatched),
        }
        report.record = uow.audit.append(
            actor=actor,
            action=AuditAction.AUDIT_SEALED_EXISTING,
            object_type=ObjectType.AUDIT,
            object_id="chain",
            payload=payload,
            at=at,
        )
        uow.commit()
    return report


def _unsealed(session: Session, row_class: type[Any]) -> list[Any]:
    return list(session.scalars(select(row_class).where(row_class.seal.is_(None))))


def _bound_seal(store: SqlStore, name: str, row: Any) -> str:
    sealer = store.sealer
    if name == "votes":
        return sealer.row(VOTES, vote_content(row.to_domain(), row.audit_seq))
    if name == "decisions":
        return sealer.row(DECISIONS, decision_content(row.to_domain(), row.audit_seq))
    return sealer.row(EXECUTIONS, execution_content(row.to_domain(), row.audit_seq))


def _describe(name: str, row: Any) -> str:
    if name == "votes":
        return f"vote of {row.approver} on {row.request_id}: no vote_recorded entry records it"
    if name == "decisions":
        return f"decision of {row.request_id}: no entry records a {row.outcome} decision"
    return f"execution {row.attempt} of {row.request_id}: no entry records its outcome"


def _legacy_index(session: Session, through: int) -> dict[tuple[str, str, str, str], int]:
    """The legacy entries that record votes, decisions and executions, by what they record."""
    index: dict[tuple[str, str, str, str], int] = {}
    for rec in _records(session, through):
        try:
            payload = json.loads(rec.payload)
        except ValueError:
            continue
        if not isinstance(payload, dict):
            continue
        if rec.action == AuditAction.VOTE_RECORDED:
            key = ("vote", rec.object_id, rec.actor, str(payload.get("decision", "")))
        elif rec.action in DECISION_ACTIONS:
            key = ("decision", rec.object_id, str(payload.get("outcome", "")), "")
        elif rec.action in EXECUTION_ACTIONS:
            outcome = "succeeded" if rec.action == AuditAction.EXECUTION_SUCCEEDED else "failed"
            key = ("execution", rec.object_id, outcome, str(payload.get("attempt", "")))
        else:
            continue
        index[key] = rec.seq  # the latest entry wins
    return index


def _records(session: Session, through: int) -> Iterator[AuditEventRow]:
    actions = (AuditAction.VOTE_RECORDED, *DECISION_ACTIONS, *EXECUTION_ACTIONS)
    yield from session.scalars(
        select(AuditEventRow)
        .where(AuditEventRow.seq <= through)
        .where(AuditEventRow.object_type == ObjectType.REQUEST)
        .where(AuditEventRow.action.in_(actions))
        .order_by(AuditEventRow.seq)
    )
