"""Waiting for a racing transaction to block on a lock, for deterministic race tests."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

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


def race_a_user_change(
    facade: Any, url: str, name: str, change: dict[str, Any], action: Callable[[], object]
) -> BaseException | None:
    """Run `action` in a thread while another transaction, holding the users lock, changes user
    `name` (`change`: fields to replace); commit once the action waits for a lock.

    Returns:
        What `action` raised, or None when it succeeded.
    """
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            action()
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    racer = threading.Thread(target=run)
    with facade.store.unit_of_work() as other:
        other.lock_users()
        user = other.users.find(name)
        assert user is not None
        other.users.update(replace(user, **change))
        racer.start()
        wait_until_a_session_waits_for_a_lock(url)
        other.commit()
    racer.join()
    assert len(outcome) == 1
    return outcome[0]
