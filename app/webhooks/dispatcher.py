"""Delivering the outbox over HTTP: signed POSTs, retries with exponential backoff.

Delivery is at least once per (endpoint, audit seq): a dispatcher that dies between the answer
and recording it re-sends after its lease, with the same `X-Countersign-Delivery` id, so a
receiver drops repeats by that id. Nothing here logs a URL (beyond scheme and host) or a secret.
"""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from app.webhooks.outbox import Outbox
from app.webhooks.signing import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    build_body,
    endpoint_key,
    redacted,
    signature,
)
from governance.db import Engine

USER_AGENT = "Countersign-Webhooks/1"


@dataclass(frozen=True)
class PassReport:
    """What one pass over every endpoint did."""

    queued: int = 0
    delivered: int = 0
    retrying: int = 0
    gave_up: int = 0

    def __add__(self, other: PassReport) -> PassReport:
        return PassReport(
            self.queued + other.queued,
            self.delivered + other.delivered,
            self.retrying + other.retrying,
            self.gave_up + other.gave_up,
        )

    def line(self) -> str:
        return (
            f"webhooks: {self.queued} queued, {self.delivered} delivered, "
            f"{self.retrying} to retry, {self.gave_up} given up"
        )


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # A redirected POST would silently become a GET without the body: count it as a failure.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def post(url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> str | None:
    """POST once; None on a 2xx answer, else a short reason that names no URL or secret."""
    if not url.startswith(("https://", "http://")):
        return "refused: only http and https endpoints are supported"
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
    try:
        with _OPENER.open(request, timeout=timeout_s) as response:
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return f"{type(exc).__name__}: {type(reason).__name__}"
    return None if 200 <= status < 300 else f"HTTP {status}"


def utc_now() -> datetime:
    return datetime.now(UTC)


class WebhookDispatcher:
    """Moves audit entries to every configured endpoint through the outbox."""

    def __init__(
        self,
        engine: Engine,
        urls: Sequence[str],
        secret: str,
        *,
        max_attempts: int = 8,
        backoff_s: int = 10,
        timeout_s: float = 10,
        clock: Callable[[], datetime] = utc_now,
        send: Callable[[str, bytes, dict[str, str], float], str | None] = post,
        log: Callable[[str], None] = print,
    ) -> None:
        self.outbox = Outbox(engine)
        self.urls = tuple(urls)
        self._secret = secret
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.timeout_s = timeout_s
        self.clock = clock
        self.send = send
        self.log = log

    def run_once(self) -> PassReport:
        """Queue what is new for every endpoint, then attempt every due delivery once."""
        report = PassReport()
        for url in self.urls:
            report += self._endpoint(url)
        return report

    def _endpoint(self, url: str) -> PassReport:
        key = endpoint_key(url)
        queued = self.outbox.enqueue(key, self.clock())
        lease = timedelta(seconds=self.timeout_s * 3 + 30)
        delivered = retrying = gave_up = 0
        for item in self.outbox.claim(key, self.clock(), lease):
            body = build_body(item.event, item.delivery_id)
            stamp = str(int(self.clock().timestamp()))
            headers = {
                "Content-Type": "application/json",
                "User-Agent": USER_AGENT,
                DELIVERY_HEADER: item.delivery_id,
                EVENT_HEADER: str(item.event["action"]),
                TIMESTAMP_HEADER: stamp,
                SIGNATURE_HEADER: signature(self._secret, stamp, body),
            }
            error = self.send(url, body, headers, self.timeout_s)
            if error is None:
                self.outbox.delivered(key, item.seq, self.clock())
                delivered += 1
                continue
            final = self.outbox.failed(
                key,
                item.seq,
                self.clock(),
                error,
                max_attempts=self.max_attempts,
                backoff_s=self.backoff_s,
            )
            gave_up += final
            retrying += not final
            self.log(
                f"webhook to {redacted(url)} for audit #{item.seq} failed ({error}); "
                + ("giving up" if final else f"attempt {item.attempts + 1}, will retry")
            )
        return PassReport(queued, delivered, retrying, gave_up)

    def run_forever(self, stop: threading.Event, poll_s: float = 2.0) -> None:
        """Poll until `stop` is set; a database hiccup is logged and retried, never fatal."""
        from governance.errors import GovernanceError

        while not stop.is_set():
            try:
                report = self.run_once()
                if report != PassReport():
                    self.log(report.line())
            except GovernanceError as exc:
                self.log(f"webhooks: pass failed ({exc}); retrying")
            stop.wait(poll_s)
