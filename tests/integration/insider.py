"""What a database insider can do with SQL access: rewrite the audit chain consistently.

A DBA (or anyone holding the governance database's owner credentials) can drop or disable the
append-only triggers, rewrite entries, recompute every hash with the published algorithm
(`governance.audit`), move the chain head and put the triggers back. The chain then verifies
on its own; only checkpoints signed with the key the database never sees can tell.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, text

from governance.audit import AuditRecord
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
        new = resealed(edit(list(old)))
        first = next(
            (i for i, (a, b) in enumerate(zip(old, new, strict=False)) if a != b),
            min(len(old), len(new)),
        )
        with triggers_off(conn):
            conn.execute(text("DELETE FROM audit_events WHERE seq > :seq"), {"seq": first})
            names = [column.key for column in AUDIT_COLUMNS]
            insert = text(
                f"INSERT INTO audit_events ({', '.join(names)}) "
                f"VALUES ({', '.join(':' + n for n in names)})"
            )
            for rec in new[first:]:
                conn.execute(insert, rec.as_dict())
            head = new[-1]
            conn.execute(
                text("UPDATE audit_chain_head SET seq = :seq, head_hash = :hash WHERE id = 1"),
                {"seq": head.seq, "hash": head.entry_hash},
            )
            also(conn)
    return first + 1
