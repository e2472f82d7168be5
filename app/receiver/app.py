"""The ASGI application: `POST /mlflow/webhooks` verifies, stores and answers; nothing more.

The work (comparing with the ledger, recording, putting back) is the worker's, so MLflow gets
its answer in milliseconds and a slow MLflow read never holds a delivery open. Answers:

- 200 `accepted`: verified and stored (the worker is woken).
- 400: headers missing, or a verified body that is not an MLflow event; 413: body too large.
- 401: bad signature, malformed delivery id or a timestamp outside five minutes.
- 409: a delivery id seen before (a replay; MLflow's own retry after a lost answer lands here
  too, harmlessly: the first copy is stored).
- 503: the governance database is unavailable (MLflow retries 503 with backoff).

Every refusal is counted by the RefusalLog, which audits them at a bounded rate.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from app.receiver import signature as sig
from app.receiver.refusals import RefusalLog
from governance.errors import GovernanceError
from governance.mlflow_deliveries import SqlMlflowDeliveries

PATH = "/mlflow/webhooks"
MAX_BODY = 256 * 1024  # MLflow's registry payloads are a few hundred bytes
STATUS = {
    sig.MISSING_HEADERS: 400,
    sig.MALFORMED_BODY: 400,
    sig.TOO_LARGE: 413,
    sig.BAD_DELIVERY_ID: 401,
    sig.STALE_TIMESTAMP: 401,
    sig.BAD_SIGNATURE: 401,
    sig.REPLAYED: 409,
}


def parse_event(body: bytes) -> tuple[str, str] | None:
    """(event, model) of an MLflow webhook body, e.g. ("model_version_alias.created", "iris").

    The model is "" for events that name none; None when the body is not an MLflow event.
    """
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    entity, action, payload = data.get("entity"), data.get("action"), data.get("data")
    if not (isinstance(entity, str) and isinstance(action, str) and isinstance(payload, dict)):
        return None
    event = f"{entity}.{action}"
    name = payload.get("name")
    model = name if isinstance(name, str) and 0 < len(name) <= 256 else ""
    return (event, model) if len(event) <= 64 else None


async def _read_bounded(request: Request, limit: int) -> bytes | None:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def build_app(
    secret: str,
    deliveries: SqlMlflowDeliveries,
    refusals: RefusalLog,
    *,
    wake: threading.Event | None = None,
    clock: Callable[[], float] = time.time,
    max_body: int = MAX_BODY,
) -> Starlette:
    """The receiver's application over a deliveries store.

    Args:
        secret: The secret the MLflow webhook was registered with.
        deliveries: Where verified deliveries are stored.
        refusals: Counts and audits refused deliveries.
        wake: Set after each stored delivery, so the worker in this process starts at once.
        clock: Unix time (tests move it).
        max_body: Bodies above this many bytes are refused unread.
    """
    if not secret:
        raise ValueError("the receiver needs the webhook secret")

    def refuse(reason: str, delivery_id: str, remote: str) -> JSONResponse:
        refusals.note(reason, delivery_id=delivery_id, remote=remote)
        return JSONResponse({"error": reason}, status_code=STATUS[reason])

    async def receive(request: Request) -> JSONResponse:
        remote = request.client.host if request.client else ""
        headers = request.headers
        delivery_id = headers.get(sig.DELIVERY_HEADER, "")
        shown_id = delivery_id if sig.DELIVERY_ID_RE.match(delivery_id) else ""
        try:
            body = await _read_bounded(request, max_body)
        except ClientDisconnect:  # gone before its body arrived (or cut off at the deadline)
            return JSONResponse({"error": "incomplete body"}, status_code=400)
        if body is None:
            return refuse(sig.TOO_LARGE, shown_id, remote)
        timestamp = headers.get(sig.TIMESTAMP_HEADER)
        reason = sig.check(
            secret,
            delivery_id=delivery_id,
            timestamp=timestamp,
            signature=headers.get(sig.SIGNATURE_HEADER),
            body=body,
            now=clock(),
        )
        if reason is not None:
            return refuse(reason, shown_id, remote)
        parsed = parse_event(body)
        if parsed is None:
            return refuse(sig.MALFORMED_BODY, delivery_id, remote)
        event, model = parsed
        try:
            stored = await run_in_threadpool(
                deliveries.accept,
                delivery_id=delivery_id,
                sent_at=int(timestamp or 0),
                event=event,
                model=model,
                body=body.decode("utf-8", errors="replace"),
                now=datetime.now(UTC),
            )
        except GovernanceError:
            return JSONResponse({"error": "storage unavailable"}, status_code=503)
        if not stored:
            return refuse(sig.REPLAYED, delivery_id, remote)
        if wake is not None:
            wake.set()
        return JSONResponse({"status": "accepted", "delivery_id": delivery_id})

    async def health(_request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    routes: list[Any] = [
        Route(PATH, receive, methods=["POST"]),
        Route("/healthz", health, methods=["GET"]),
    ]
    return Starlette(routes=routes)
