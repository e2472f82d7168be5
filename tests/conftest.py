"""Fixtures shared by every layer of the suite.

PostgreSQL: COUNTERSIGN_TEST_PG_URL names a server (CI sets it for 127.0.0.1:5432). Each test
session gets its own fresh database there, dropped afterwards, so parallel runs never collide.
Without the variable the PostgreSQL tests are skipped locally; with CI=true they fail instead.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

PG_ENV = "COUNTERSIGN_TEST_PG_URL"

# Real MLflow stores and a real `mlflow server`: demo_data_dir, demo_settings, mlflow_server_uri.
pytest_plugins = ["tests.fixtures_mlflow", "tests.byo_fixtures"]


def _admin_dsn(url: str) -> str:
    # SQLAlchemy URL -> libpq URL for psycopg
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for this test session, as a SQLAlchemy URL."""
    base = os.environ.get(PG_ENV, "")
    if not base:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{PG_ENV} is not set; CI requires the PostgreSQL run")
        pytest.skip(f"{PG_ENV} is not set")
    import psycopg

    name = f"cs_test_{uuid.uuid4().hex[:12]}"
    try:
        with psycopg.connect(_admin_dsn(base), autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL at {PG_ENV} is unreachable: {exc}")
    head, _, _ = base.rpartition("/")
    try:
        yield f"{head}/{name}"
    finally:
        with psycopg.connect(_admin_dsn(base), autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def any_db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The same test on a temporary SQLite file and on the session's PostgreSQL database.

    The PostgreSQL database is shared by the session: tests that use it must clean up or use
    names of their own. Tests that need an empty schema should use `empty_db_url`.
    """
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('db') / 'governance.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_db_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A brand-new empty database per test, on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'governance.db'}"
        return
    base = str(request.getfixturevalue("pg_url"))
    import psycopg

    name = f"cs_t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_admin_dsn(base), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    head, _, _ = base.rpartition("/")
    try:
        yield f"{head}/{name}"
    finally:
        with psycopg.connect(_admin_dsn(base), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
