"""Waiting for a racing transaction to block on a lock, for deterministic race tests."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import create_engine, text


def wait_until_a_session_waits_for_a_lock(url: str) -> None:
    """PostgreSQL: return once another session of this database waits for a lock. (SQLite
    blocks the other writer at its BEGIN IMMEDIATE, before it reads anything.)"""
    if url.startswith("sqlite"):
        return
    engine = create_engine(url)
    query = text(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    deadline = time.monotonic() + 60
    try:
        with engine.connect() as conn:
            while not conn.execute(query).scalar_one():
                if time.monotonic() > deadline:
                    pytest.fail("the racing demotion never waited for the lock")
                time.sleep(0.02)
                conn.rollback()  # a fresh snapshot of pg_stat_activity on the next query
    finally:
        engine.dispose()
