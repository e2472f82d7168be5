"""Every log line of the process without passwords: installed once at start-up (app and CLI).

A handler filter would only see the handlers it is attached to (Streamlit, MLflow, Alembic and
uvicorn each configure their own), so the redaction sits in the log record factory instead:
every record of every logger passes through it when it is created, before any handler or
formatter sees it. The message is rendered and redacted at once; a traceback is rendered and
redacted too and kept as the record's `exc_text`, which the standard formatters print as is.
"""

from __future__ import annotations

import logging
import traceback
from typing import Any

from governance.redaction import redact_secrets

_MARK = "_countersign_redacting"


def _redacted_record(factory: Any) -> Any:
    def make(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record: logging.LogRecord = factory(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: leave it for logging's own error report
            return record
        record.msg, record.args = redact_secrets(message), None
        if record.exc_info and record.exc_info[0] is not None and not record.exc_text:
            rendered = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
            record.exc_text = redact_secrets(rendered)
        if record.stack_info:
            record.stack_info = redact_secrets(record.stack_info)
        return record

    setattr(make, _MARK, True)
    return make


def install_log_redaction() -> None:
    """Redact URI passwords from every log record from now on (idempotent)."""
    current = logging.getLogRecordFactory()
    if not getattr(current, _MARK, False):
        logging.setLogRecordFactory(_redacted_record(current))
