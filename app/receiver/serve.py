"""`python -m app.cli webhooks receive`: the receiver process (uvicorn + the worker thread).

Several replicas may run behind one Service: each stores what it receives (the delivery id is
unique in the database) and each worker claims deliveries from the shared table, so any replica
may compare any delivery. The process stops on SIGTERM/SIGINT (uvicorn's own handling), then
the worker finishes its pass and writes the pending refusal summaries.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from app.errors import InvalidInput
from app.settings import Settings
from governance.domain import MLFLOW_WEBHOOKS

if TYPE_CHECKING:
    import uvicorn


def server_config(
    app: Any, host: str, port: int, read_timeout_s: float | None = None
) -> uvicorn.Config:
    """uvicorn's settings for the receiver: HTTP/1.1 (h11) with a whole-request deadline, a
    bound on open connections, no access log (the audit chain records refusals)."""
    import uvicorn

    from app.receiver.deadline import MAX_CONNECTIONS, READ_TIMEOUT_S, protocol

    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=protocol(read_timeout_s or READ_TIMEOUT_S),
        limit_concurrency=MAX_CONNECTIONS,
        timeout_keep_alive=5,
        log_level="warning",
        access_log=False,
        lifespan="off",
    )


def serve(settings: Settings, host: str, port: int, log: Callable[[str], None] = print) -> int:
    """Serve `POST /mlflow/webhooks` on host:port until stopped; returns the exit code.

    Raises:
        InvalidInput: No secret is configured, or the port is out of range.
        SchemaOutOfDate, PolicyError, DatabaseUnavailable: The governance side is not ready.
    """
    import uvicorn

    from app.bootstrap import build_governance
    from app.receiver.app import build_app
    from app.receiver.refusals import RefusalLog
    from app.receiver.worker import EnforcementWorker
    from governance.mlflow_deliveries import SqlMlflowDeliveries

    if not settings.mlflow_webhook_secret:
        raise InvalidInput(
            "MLflow's deliveries are signed: set COUNTERSIGN_MLFLOW_WEBHOOK_SECRET or "
            "COUNTERSIGN_MLFLOW_WEBHOOK_SECRET_FILE (the secret given to `webhooks register`)"
        )
    if not 0 < port < 65536:
        raise InvalidInput("--port must be between 1 and 65535")
    facade = build_governance(settings, actor=MLFLOW_WEBHOOKS)
    try:
        deliveries = SqlMlflowDeliveries(facade.store.engine)
        wake, stop = threading.Event(), threading.Event()

        def record(reason: str, details: Mapping[str, object]) -> None:
            facade.record_refused_delivery(MLFLOW_WEBHOOKS, reason, details)

        def compare(model: str, detected_by: Mapping[str, object]) -> None:
            facade.enforce(MLFLOW_WEBHOOKS, (model,), detected_by)

        refusals = RefusalLog(record, wake=wake)
        worker = EnforcementWorker(deliveries, compare, refusals, log=log)
        thread = threading.Thread(
            target=worker.run_forever, args=(stop, wake), name="countersign-receiver", daemon=True
        )
        app = build_app(settings.mlflow_webhook_secret, deliveries, refusals, wake=wake)
        server = uvicorn.Server(server_config(app, host, port))
        thread.start()
        log(f"receiving MLflow webhooks on http://{host}:{port}/mlflow/webhooks")
        try:
            server.run()
        finally:
            stop.set()
            wake.set()
            thread.join(timeout=30)
        return 0
    finally:
        facade.dispose()
