"""Passwords inside tracking and database URIs never reach a log line or an error message."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest
from sqlalchemy.exc import OperationalError

from app.errors import StoreUnavailable, message_of
from app.log_redaction import install_log_redaction
from app.mlflow_gateway._support import mlflow_errors, redact
from governance.db import translate
from governance.redaction import redact_secrets

URI = "postgresql://u:s3cret@db.internal:5432/mlflow"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (URI, "postgresql://u:***@db.internal:5432/mlflow"),
        ("postgresql+psycopg://u:p@ss/w0rd@h/db", "postgresql+psycopg://u:***@h/db"),
        ("see http://ann:s3cret@mlflow:5000/api", "see http://ann:***@mlflow:5000/api"),
        ("postgresql://:s3cret@h/db", "postgresql://:***@h/db"),
        ("host=h password=s3cret dbname=x", "host=h password=*** dbname=x"),
        ("h/db?user=u&password=s3cret&sslmode=require", "h/db?user=u&password=***&sslmode=require"),
        ("PASSWORD='s3cret'", "PASSWORD='***'"),
        ("sqlite:////data/governance.db", "sqlite:////data/governance.db"),
        (
            "mail ann@example.org at http://mlflow:5000",
            "mail ann@example.org at http://mlflow:5000",
        ),
    ],
)
def test_passwords_in_uris_and_settings_are_masked_and_nothing_else(
    text: str, expected: str
) -> None:
    assert redact_secrets(text) == expected
    assert redact(text) == expected


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """A handler on a logger of its own, with the standard formatter (tracebacks included)."""
    install_log_redaction()
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    logger = logging.getLogger("countersign.test.redaction")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        yield out
    finally:
        logger.removeHandler(handler)


def test_a_log_record_echoing_a_uri_is_redacted_before_any_handler_sees_it(
    captured: io.StringIO,
) -> None:
    logger = logging.getLogger("countersign.test.redaction")
    logger.warning("cannot reach %s, retrying", URI)
    logger.info("dsn %r", {"url": URI})
    try:
        raise ConnectionError(f"could not connect to {URI}")
    except ConnectionError:
        logger.exception("store down")
    text = captured.getvalue()
    assert "s3cret" not in text
    assert "postgresql://u:***@db.internal:5432/mlflow" in text
    assert "ConnectionError: could not connect to postgresql://u:***@" in text


def test_the_redaction_covers_loggers_configured_elsewhere(
    caplog: pytest.LogCaptureFixture,
) -> None:
    install_log_redaction()
    install_log_redaction()  # idempotent: one wrapper, not two
    with caplog.at_level(logging.INFO, logger="alembic.runtime.migration"):
        logging.getLogger("alembic.runtime.migration").info("Context impl for %s", URI)
    assert [r.getMessage() for r in caplog.records] == [
        "Context impl for postgresql://u:***@db.internal:5432/mlflow"
    ]


def test_a_database_error_echoing_its_connection_string_is_redacted() -> None:
    driver = Exception(f'connection to "{URI}" failed: timeout expired')
    error = translate(OperationalError("SELECT 1", {}, driver))
    assert "s3cret" not in str(error)
    assert "u:***@db.internal" in str(error)


def test_an_mlflow_store_error_echoing_the_uri_is_redacted() -> None:
    class DriverError(Exception):
        pass

    DriverError.__module__ = "sqlalchemy.exc"
    with pytest.raises(StoreUnavailable) as caught, mlflow_errors(URI):
        raise DriverError(f"(psycopg.OperationalError) cannot open {URI}")
    assert "s3cret" not in str(caught.value)


def test_the_message_shown_for_any_error_is_redacted() -> None:
    assert message_of(RuntimeError(f"boom at {URI}")) == (
        "boom at postgresql://u:***@db.internal:5432/mlflow"
    )
