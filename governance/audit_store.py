"""The audit chain in SQL: serialised appends, streaming reads and parallel verification.

The workflow repositories live in `governance.repository`; this module holds what is special
about the chain. Nothing here commits: the unit of work owns the transaction.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from collections import namedtuple
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import fields, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, and_, bindparam, func, insert, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from governance.audit import GENESIS_HASH, AuditRecord, VerifyResult, seal, verify_chain
from governance.db import READ_ONLY, make_engine, translate_errors
from governance.orm import AuditEventRow, ChainHeadRow, RequestRow, table_of
from governance.seal_check import SealScan, legacy_through
from governance.seals import Sealer

VERIFY_BATCH = 20_000
# Every column of an entry, in AuditRecord's field order (Core reads outside a session).
AUDIT_COLUMNS = (
    AuditEventRow.seq,
    AuditEventRow.ts,
    AuditEventRow.actor,
    AuditEventRow.action,
    AuditEventRow.object_type,
    AuditEventRow.object_id,
    AuditEventRow.payload,
    AuditEventRow.payload_hash,
    AuditEventRow.prev_hash,
    AuditEventRow.entry_hash,
    AuditEventRow.alg,
)


# Built once: every write transaction runs these (see governance.repository on why).
_LOCK_HEAD = (
    select(ChainHeadRow.seq, ChainHeadRow.head_hash).where(ChainHeadRow.id == 1).with_for_update()
)
_MOVE_HEAD = (
    update(table_of(ChainHeadRow))
    .where(table_of(ChainHeadRow).c.id == 1)
    .values(seq=bindparam("new_seq"), head_hash=bindparam("new_head_hash"))
)
_INSERT_EVENT = insert(table_of(AuditEventRow))
# PostgreSQL: the entry and the head move in one statement (an UPDATE in a WITH clause), so an
# append is one round trip and the commit needs no separate UPDATE of the head.
_INSERT_EVENT_MOVING_HEAD = _INSERT_EVENT.add_cte(_MOVE_HEAD.cte("moved_head"))


def lock_chain_head(session: Session) -> tuple[int, str]:
    """Take the write lock (row lock on PostgreSQL) and return the chain head (seq, hash).

    On SQLite the transaction already holds the database write lock (BEGIN IMMEDIATE); the
    FOR UPDATE is dropped there by SQLAlchemy, which is exactly why BEGIN is ours.
    """
    row = session.execute(_LOCK_HEAD).one()
    return int(row.seq), str(row.head_hash)


class SqlAuditLog:
    """The AuditLog port: appends sealed entries inside the caller's (locked) transaction.

    Each entry carries its seal (an HMAC of its entry hash under the seal key, see
    governance.seals) from the moment it is inserted.
    """

    def __init__(self, session: Session, sealer: Sealer) -> None:
        self._session = session
        self._sealer = sealer
        self._head: tuple[int, str] | None = None
        self._moved = False
        self._move_with_insert = session.get_bind().dialect.name == "postgresql"

    def ensure_locked(self) -> tuple[int, str]:
        """Take the chain lock once per transaction and remember the head."""
        if self._head is None:
            self._head = lock_chain_head(self._session)
        return self._head

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
        """Seal the next entry after the current head and insert it in this transaction.

        Raises:
            ValueError: The payload holds NaN or infinity, or is not JSON-serialisable.
        """
        seq, prev_hash = self.ensure_locked()
        record = seal(
            prev_hash=prev_hash,
            seq=seq + 1,
            moment=at,
            actor=actor,
            action=action,
            object_type=object_type,
            object_id=str(object_id),
            payload=payload,
        )
        values = record.as_dict()
        values["seal"] = self._sealer.entry(record.entry_hash)
        with translate_errors():
            if self._move_with_insert:
                values.update(new_seq=record.seq, new_head_hash=record.entry_hash)
                self._session.execute(_INSERT_EVENT_MOVING_HEAD, values)
            else:
                self._session.execute(_INSERT_EVENT, values)
                self._moved = True
        self._head = (record.seq, record.entry_hash)
        return record

    def before_commit(self) -> None:
        """Move the chain head row to the last entry of this transaction (unless it moved with
        each insert already)."""
        if self._moved and self._head is not None:
            seq, head_hash = self._head
            with translate_errors():
                self._session.execute(_MOVE_HEAD, {"new_seq": seq, "new_head_hash": head_hash})
        self.forget()

    def forget(self) -> None:
        """The transaction ended: the next one must lock and read the head again."""
        self._head = None
        self._moved = False

    def iterate(self, from_seq: int = 1) -> Iterator[AuditRecord]:
        """Entries with seq >= from_seq in ascending order, streamed in batches."""
        # Built without the frozen dataclass __init__ (twice as fast; same object, same equality).
        new, names = object.__new__, _FastRecord._fields
        for row in stream_records(self._session.connection(), start_seq=from_seq):
            record = new(AuditRecord)
            record.__dict__.update(zip(names, row, strict=True))
            yield record

    def head(self) -> AuditRecord | None:
        """The entry with the highest seq, or None when the log is empty."""
        row = self._session.scalars(
            select(AuditEventRow).order_by(AuditEventRow.seq.desc()).limit(1)
        ).first()
        return row.to_record() if row is not None else None

    def for_object(self, object_type: str, object_id: str) -> tuple[AuditRecord, ...]:
        """Every entry about one object, oldest first."""
        rows = self._session.scalars(
            select(AuditEventRow)
            .where(AuditEventRow.object_type == object_type)
            .where(AuditEventRow.object_id == str(object_id))
            .order_by(AuditEventRow.seq)
        )
        return tuple(row.to_record() for row in rows)

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
        """Entries matching every given filter, newest first, at most `limit` (None: all).

        Indexed: seq (the key, newest first and paging with `before_seq`), actor and action
        (with seq), ts, and (object_type, object_id). `model` matches request events by the
        request's model, target events by their `<model>/<kind>/<target>` id and monitoring
        events by their `<model>/<version>` id.
        """
        query = select(AuditEventRow).order_by(AuditEventRow.seq.desc())
        if model:
            of_model = select(RequestRow.id).where(RequestRow.model == model)
            query = query.where(
                or_(
                    and_(
                        AuditEventRow.object_type == "request",
                        AuditEventRow.object_id.in_(of_model),
                    ),
                    and_(
                        AuditEventRow.object_type.in_(("target", "model_version")),
                        AuditEventRow.object_id.startswith(model + "/", autoescape=True),
                    ),
                )
            )
        if actor:
            query = query.where(AuditEventRow.actor == actor)
        if actions:
            query = query.where(AuditEventRow.action.in_(actions))
        if object_types:
            query = query.where(AuditEventRow.object_type.in_(object_types))
        if since:
            query = query.where(AuditEventRow.ts >= since)
        if until:
            query = query.where(AuditEventRow.ts <= until)
        if before_seq is not None:
            query = query.where(AuditEventRow.seq < before_seq)
        if limit is not None:
            query = query.limit(limit)
        return tuple(row.to_record() for row in self._session.scalars(query))

    def latest(self, limit: int = 50) -> tuple[AuditRecord, ...]:
        """The newest entries, newest first."""
        rows = self._session.scalars(
            select(AuditEventRow).order_by(AuditEventRow.seq.desc()).limit(limit)
        )
        return tuple(row.to_record() for row in rows)


# verify_chain reads attributes only; a namedtuple row is several times cheaper to build than
# the frozen AuditRecord, and that matters at 100,000 entries per second.
_FastRecord = namedtuple("_FastRecord", [field.name for field in fields(AuditRecord)])  # type: ignore[misc]
# The same with the seal last, for the verification that checks seals too.
_SealedRecord = namedtuple("_SealedRecord", [*_FastRecord._fields, "seal"])  # type: ignore[misc]
_SELECT_SQL = (
    "SELECT seq, ts, actor, action, object_type, object_id, payload, payload_hash, prev_hash, "
    "entry_hash, alg{extra} FROM audit_events WHERE seq >= {lo} AND seq <= {hi} ORDER BY seq "
    "LIMIT {n}"
)
PARALLEL_MIN_EVENTS = 50_000


def stream_records(
    conn: Connection,
    *,
    start_seq: int = 1,
    end_seq: int | None = None,
    batch: int = VERIFY_BATCH,
    with_seal: bool = False,
) -> Iterator[Any]:
    """Entries in seq order as named tuples with AuditRecord's fields, in bounded batches.

    The rows come straight from the driver cursor: SQLAlchemy's Row objects cost more than the
    hashing itself at this volume. `with_seal` adds the `seal` column last.
    """
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    make = _SealedRecord._make if with_seal else _FastRecord._make
    extra = ", seal" if with_seal else ""
    lo, hi = int(start_seq), int(end_seq if end_seq is not None else 2**62)
    try:
        while lo <= hi:
            # Only integers we computed go into the text: nothing user-supplied.
            cursor.execute(_SELECT_SQL.format(extra=extra, lo=lo, hi=hi, n=int(batch)))
            rows = cursor.fetchall()
            if not rows:
                return
            yield from map(make, rows)
            if len(rows) < batch:
                return
            lo = int(rows[-1][0]) + 1
    finally:
        cursor.close()


def _snapshot_options(engine: Engine) -> dict[str, Any]:
    options: dict[str, Any] = {READ_ONLY: True}
    if engine.dialect.name == "postgresql":
        options["isolation_level"] = "REPEATABLE READ"
    return options


def _verify_segment(
    url: str, lo: int, hi: int, start_prev_hash: str, scan: SealScan | None
) -> VerifyResult:
    """Verify seq lo..hi in a worker process, on an engine of its own (nothing shared)."""
    engine = make_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn, conn.execution_options(**_snapshot_options(engine)).begin():
            rows = stream_records(conn, start_seq=lo, end_seq=hi, with_seal=scan is not None)
            result = verify_chain(
                scan.checked(rows) if scan is not None else rows,
                start_prev_hash=start_prev_hash,
                start_seq=lo,
            )
    finally:
        engine.dispose()
    if scan is not None and scan.failure is not None:
        return scan.result(result)
    if result.ok and result.count != hi - lo + 1:
        return replace(
            result,
            ok=False,
            first_broken_seq=lo + result.count,
            reason=f"expected seq {lo + result.count}, found none (entries were removed)",
        )
    return result


def _can_fork() -> bool:
    # fork() is only safe when no other thread can hold a lock (CLI, benchmarks, jobs); inside
    # the Streamlit server we stay in one process.
    return hasattr(os, "fork") and threading.active_count() == 1


def _verify_parallel(
    engine: Engine, last_seq: int, workers: int, scan: SealScan | None
) -> VerifyResult:
    """Split 1..last_seq into segments; segment k chains to the stored hash of its predecessor.

    Segment k-1 proves that entry's hash is right; segment k proves its first entry points at it:
    together that is the whole chain, computed on several cores.
    """
    bounds = [1 + (last_seq * k) // workers for k in range(workers)] + [last_seq + 1]
    with engine.connect() as conn, conn.execution_options(**_snapshot_options(engine)).begin():
        rows = conn.execute(
            select(AuditEventRow.seq, AuditEventRow.entry_hash).where(
                AuditEventRow.seq.in_([b - 1 for b in bounds[1:-1]])
            )
        ).all()
    stored = {int(seq): str(entry) for seq, entry in rows}
    url = engine.url.render_as_string(hide_password=False)
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        futures = [
            pool.submit(
                _verify_segment,
                url,
                bounds[k],
                bounds[k + 1] - 1,
                GENESIS_HASH if k == 0 else stored.get(bounds[k] - 1, "missing"),
                scan.fresh() if scan is not None else None,
            )
            for k in range(workers)
        ]
        results = [future.result() for future in futures]
    count = 0
    for result in results:
        if not result.ok:
            return replace(result, count=count + result.count, first_seq=1)
        count += result.count
    return VerifyResult(
        ok=True, count=count, first_seq=1, last_seq=last_seq, head_hash=results[-1].head_hash
    )


def verify_audit_log(
    engine: Engine,
    *,
    sealer: Sealer | None = None,
    workers: int | None = None,
    batch: int = VERIFY_BATCH,
) -> VerifyResult:
    """Recompute the whole chain from the database and check the chain head against it.

    Reads one consistent snapshot (REPEATABLE READ on PostgreSQL, a WAL read transaction on
    SQLite) in batches, so memory does not grow with the log. Large logs are verified in
    segments on several processes when that is safe (see `_can_fork`).

    Args:
        engine: The governance database.
        sealer: With the seal key, every entry's seal is checked too (see
            governance.seal_check): the first entry without a valid seal is the first broken
            one, unless an `audit_sealed_existing` entry vouches for it.
        workers: Processes to use; None picks up to four when the log is large.
        batch: Rows per fetch.
    """
    with translate_errors():
        with engine.connect() as conn, conn.execution_options(**_snapshot_options(engine)).begin():
            head = conn.execute(
                select(ChainHeadRow.seq, ChainHeadRow.head_hash).where(ChainHeadRow.id == 1)
            ).one()
            last = conn.execute(select(func.max(AuditEventRow.seq))).scalar() or 0
            scan = None
            if sealer is not None:
                scan = SealScan(sealer, legacy_through(conn, sealer))
            if workers is None:
                big = last >= PARALLEL_MIN_EVENTS and _can_fork()
                workers = min(4, os.cpu_count() or 1) if big else 1
            result = None
            if workers <= 1 or last < workers:
                rows = stream_records(conn, batch=batch, with_seal=scan is not None)
                result = verify_chain(scan.checked(rows) if scan is not None else rows)
                if scan is not None:
                    result = scan.result(result)
        if result is None:
            result = _verify_parallel(engine, int(last), workers, scan)
    return _check_head(result, int(head.seq), str(head.head_hash))


def _check_head(result: VerifyResult, head_seq: int, head_hash: str) -> VerifyResult:
    if not result.ok:
        return result
    last_seq = result.last_seq or 0
    if head_seq == last_seq and head_hash == result.head_hash:
        return result
    return replace(
        result,
        ok=False,
        first_broken_seq=last_seq if head_seq == last_seq else min(head_seq, last_seq) + 1,
        reason=(
            f"the chain head names seq {head_seq} ({head_hash[:12]}...) but the log ends at "
            f"seq {last_seq} ({result.head_hash[:12]}...): entries were removed or added "
            "around the lock"
        ),
    )


HASH_LOOKUP_CHUNK = 500


def entry_hashes(engine: Engine, seqs: Iterable[int]) -> dict[int, str]:
    """The stored entry hash at each of `seqs` that the log holds, from one read-only snapshot.

    Signed checkpoints name (seq, entry hash) pairs; comparing them needs only these rows.
    """
    wanted = sorted({int(seq) for seq in seqs})
    found: dict[int, str] = {}
    snapshot = _snapshot_options(engine)
    with translate_errors(), engine.connect() as conn, conn.execution_options(**snapshot).begin():
        for k in range(0, len(wanted), HASH_LOOKUP_CHUNK):
            rows = conn.execute(
                select(AuditEventRow.seq, AuditEventRow.entry_hash).where(
                    AuditEventRow.seq.in_(wanted[k : k + HASH_LOOKUP_CHUNK])
                )
            )
            found.update((int(seq), str(digest)) for seq, digest in rows)
    return found
