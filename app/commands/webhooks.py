"""`python -m app.cli webhooks deliver [--once]`: send signed notifications from the audit log.

Endpoints and the secret come from Settings (COUNTERSIGN_WEBHOOK_URLS, COUNTERSIGN_WEBHOOK_SECRET
or COUNTERSIGN_WEBHOOK_SECRET_FILE). Without --once the command runs until SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import signal
import threading
from typing import Any

from app.errors import InvalidInput

WEBHOOKS_HELP = "Webhooks: signed notifications out, MLflow's registry events in"


def register(registry: Any) -> None:
    group = registry.group("webhooks", WEBHOOKS_HELP)
    deliver = group.add_parser("deliver", help="deliver queued notifications to every endpoint")
    deliver.add_argument("--once", action="store_true", help="one pass, then exit")
    deliver.add_argument(
        "--poll-seconds", type=float, default=2.0, help="pause between passes (default 2)"
    )
    deliver.set_defaults(func=cmd_deliver)
    prune = group.add_parser("prune", help="delete old delivered and given-up outbox rows")
    prune.add_argument("--older-than-days", type=int, default=30, help="default 30")
    prune.set_defaults(func=cmd_prune)


def cmd_prune(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime, timedelta

    from app.settings import Settings
    from app.webhooks.outbox import Outbox
    from governance.db import check_schema, make_engine

    if args.older_than_days < 1:
        raise InvalidInput("--older-than-days must be at least 1")
    engine = make_engine(Settings.from_env().db_url, pool_size=1, max_overflow=1)
    try:
        check_schema(engine)
        cutoff = datetime.now(UTC) - timedelta(days=args.older_than_days)
        removed = Outbox(engine).prune(cutoff)
    finally:
        engine.dispose()
    print(f"removed {removed} outbox rows older than {args.older_than_days} days")
    return 0


def cmd_deliver(args: argparse.Namespace) -> int:
    from app.settings import Settings
    from app.webhooks.dispatcher import WebhookDispatcher
    from app.webhooks.signing import redacted
    from governance.db import check_schema, make_engine

    settings = Settings.from_env()
    if not settings.webhook_urls:
        raise InvalidInput("no endpoints: set COUNTERSIGN_WEBHOOK_URLS (comma-separated URLs)")
    if not settings.webhook_secret:
        raise InvalidInput(
            "webhooks are signed: set COUNTERSIGN_WEBHOOK_SECRET or COUNTERSIGN_WEBHOOK_SECRET_FILE"
        )
    if args.poll_seconds <= 0:
        raise InvalidInput("--poll-seconds must be positive")
    engine = make_engine(settings.db_url, pool_size=2, max_overflow=2)
    try:
        check_schema(engine)
        dispatcher = WebhookDispatcher(
            engine,
            settings.webhook_urls,
            settings.webhook_secret,
            max_attempts=settings.webhook_max_attempts,
            backoff_s=settings.webhook_backoff_s,
            timeout_s=settings.webhook_timeout_s,
            log=lambda line: print(line, flush=True),
        )
        if args.once:
            print(dispatcher.run_once().line())
            return 0
        names = ", ".join(redacted(url) for url in settings.webhook_urls)
        print(f"delivering to {names}; stop with Ctrl-C or SIGTERM", flush=True)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        dispatcher.run_forever(stop, args.poll_seconds)
        return 0
    finally:
        engine.dispose()
