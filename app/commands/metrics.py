"""`python -m app.cli metrics serve --port P`: Prometheus metrics of the governance database."""

from __future__ import annotations

import argparse
import signal
import threading
from typing import Any

from app.errors import InvalidInput


def register(registry: Any) -> None:
    group = registry.group("metrics", "Prometheus metrics of the governance workflow")
    serve = group.add_parser("serve", help="serve /metrics until stopped")
    serve.add_argument("--port", type=int, required=True, help="TCP port, e.g. 9108")
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to bind (0.0.0.0 in a container)"
    )
    serve.set_defaults(func=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    from prometheus_client import CollectorRegistry, start_http_server
    from prometheus_client.process_collector import ProcessCollector

    from app.metrics import GovernanceCollector
    from app.seal_keys import load_sealer
    from app.settings import Settings
    from governance.db import check_schema, make_engine

    if not 0 < args.port < 65536:
        raise InvalidInput(f"--port must be between 1 and 65535, got {args.port}")
    settings = Settings.from_env()
    sealer = load_sealer(settings)
    engine = make_engine(settings.db_url, pool_size=2, max_overflow=2)
    try:
        check_schema(engine)
        registry = CollectorRegistry()
        registry.register(
            GovernanceCollector(
                engine, sealer=sealer, verify_interval_s=settings.metrics_verify_interval_s
            )
        )
        ProcessCollector(registry=registry)
        try:
            server, thread = start_http_server(args.port, addr=args.host, registry=registry)
        except OSError as exc:
            raise InvalidInput(f"cannot listen on {args.host}:{args.port}: {exc.strerror}") from exc
        print(f"serving metrics on http://{args.host}:{args.port}/metrics", flush=True)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        stop.wait()
        server.shutdown()
        thread.join(timeout=5)
        return 0
    finally:
        engine.dispose()
