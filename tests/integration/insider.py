"""What a database insider can do with SQL access: rewrite the audit chain consistently.

A DBA (or anyone holding the governance database's owner credentials) can drop or disable the
append-only triggers, rewrite entries, recompute every hash with the published algorithm
(`governance.audit`), move the chain head and put the triggers back. The hash chain then
verifies on its own. What the insider does not hold is the seal key (a file mounted into the
app and the jobs, never on the database host): the best they can do is keep the seals of the
entries they left alone and copy old seals onto the entries they wrote (a replay). Those fail,
and so do the signed checkpoints.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, MetaData, Table, text

from governance.audit import AuditRecord, seal
from governance.audit_store import AUDIT_COLUMNS
from tests.export_data import resealed

AUDIT_TABLES = ("audit_events", "audit_chain_head")


@contextmanager
def triggers_off(conn: Connection) -> Iterator[None]:
    """The append-only triggers out of the way for the length of the block, then back."""
    if conn.dialect.name == "postgresql":
        for table in AUDIT_TABLES:
            conn.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER USER"))
        yield
        for table in AUDIT_TABLES:
            conn.execute(text(f"ALTER TABLE {table} ENABLE TRIGGER USER"))
        return
    triggers = conn.execute(
        text(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' "
            "AND tbl_name IN ('audit_events', 'audit_chain_head')"
        )
    ).all()
    assert triggers, "the append-only triggers should exist"
    for name, _ in triggers:
        conn.execute(text(f'DROP TRIGGER "{name}"'))
    yield
    for _, sql in triggers:
        conn.execute(text(sql))


def read_seals(conn: Connection) -> dict[int, str | None]:
    """The stored seal of every entry by seq (readable to anyone with SQL access)."""
    return {
        int(seq): seal for seq, seal in conn.execute(text("SELECT seq, seal FROM audit_events"))
    }


def read_chain(conn: Connection) -> list[AuditRecord]:
    names = [column.key for column in AUDIT_COLUMNS]
    rows = conn.execute(text(f"SELECT {', '.join(names)} FROM audit_events ORDER BY seq")).all()
    return [AuditRecord(**dict(zip(names, row, strict=True))) for row in rows]


def rewrite_chain(
    engine: Engine,
    edit: Callable[[list[AuditRecord]], list[AuditRecord]],
    *,
    also: Callable[[Connection], None] = lambda conn: None,
) -> int:
    """Rewrite the chain with `edit` (insert, drop, change entries), recompute every hash, move
    the head, and run `also` (the matching changes to users, votes...) in the same transaction.

    Returns:
        The first seq whose entry changed.
    """
    with engine.begin() as conn:
        old = read_chain(conn)
        seals = read_seals(conn)
        by_hash = {rec.entry_hash: seals.get(rec.seq) for rec in old}
        new = resealed(edit(list(old)))
        first = next(
            (i for i, (a, b) in enumerate(zip(old, new, strict=False)) if a != b),
            min(len(old), len(new)),
        )
        with triggers_off(conn):
            conn.execute(text("DELETE FROM audit_events WHERE seq > :seq"), {"seq": first})
            names = [column.key for column in AUDIT_COLUMNS] + ["seal"]
            insert = text(
                f"INSERT INTO audit_events ({', '.join(names)}) "
                f"VALUES ({', '.join(':' + n for n in names)})"
            )
            for rec in new[first:]:
                # No seal key: an unchanged entry keeps its seal, a new one replays the old
                # seal at its seq (the best an insider can do; it does not verify).
                seal = by_hash.get(rec.entry_hash, seals.get(rec.seq))
                conn.execute(insert, {**rec.as_dict(), "seal": seal})
            head = new[-1]
            conn.execute(
                text("UPDATE audit_chain_head SET seq = :seq, head_hash = :hash WHERE id = 1"),
                {"seq": head.seq, "hash": head.entry_hash},
            )
            also(conn)
    return first + 1


def insert_row(conn: Connection, table: str, values: dict[str, Any]) -> None:
    """INSERT one row as a SQL client would: the table as the database describes it, no seal.

    Columns the database does not have are left out, so the same attack runs against a schema
    from before sealed records.
    """
    reflected = Table(table, MetaData(), autoload_with=conn)
    sqlite = conn.dialect.name == "sqlite"
    row = {
        name: (value.replace(tzinfo=None) if sqlite and isinstance(value, datetime) else value)
        for name, value in values.items()
        if name in reflected.c
    }
    conn.execute(reflected.insert().values(**row))


def append_entry(conn: Connection, **fields: Any) -> AuditRecord:
    """Append a well-formed entry at the head, hashes recomputed, head moved, triggers on.

    The append-only triggers allow INSERT and a forward move of the head: this is the cheapest
    forgery there is. Without the seal key the insider replays the seal of the entry before.
    """
    head_seq, head_hash = conn.execute(
        text("SELECT seq, head_hash FROM audit_chain_head WHERE id = 1")
    ).one()
    record = seal(prev_hash=str(head_hash), seq=int(head_seq) + 1, **fields)
    values: dict[str, Any] = record.as_dict()
    columns = {c.name for c in Table("audit_events", MetaData(), autoload_with=conn).c}
    if "seal" in columns:
        values["seal"] = conn.execute(
            text("SELECT seal FROM audit_events WHERE seq = :s"), {"s": head_seq}
        ).scalar()
    insert_row(conn, "audit_events", values)
    conn.execute(
        text("UPDATE audit_chain_head SET seq = :seq, head_hash = :hash WHERE id = 1"),
        {"seq": record.seq, "hash": record.entry_hash},
    )
    return record
