"""`webhooks receive` and `webhooks register`: MLflow's own registry webhooks, received.

`receive` serves `POST /mlflow/webhooks` (secret from COUNTERSIGN_MLFLOW_WEBHOOK_SECRET or
COUNTERSIGN_MLFLOW_WEBHOOK_SECRET_FILE) and compares every event with the ledger;
`register` creates the webhook in MLflow that sends them, and prints its id.
"""

from __future__ import annotations

import argparse
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from app.commands.webhooks import WEBHOOKS_HELP
from app.errors import InvalidInput

RECEIVER_PATH = "/mlflow/webhooks"


def register(registry: Any) -> None:
    group = registry.group("webhooks", WEBHOOKS_HELP)
    p = group.add_parser(
        "receive", help="receive MLflow's registry webhooks and enforce the ledger"
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8090, help="port to listen on (default 8090)")
    p.set_defaults(func=cmd_receive)
    p = group.add_parser("register", help="create the MLflow webhook that sends to the receiver")
    p.add_argument("--mlflow", required=True, metavar="URL", help="the MLflow tracking server")
    p.add_argument(
        "--receiver", required=True, metavar="URL", help=f"the receiver (…{RECEIVER_PATH})"
    )
    p.set_defaults(func=cmd_register)


def receiver_url(url: str) -> str:
    """The receiver URL with the endpoint path (a bare host gets /mlflow/webhooks)."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(f"--receiver must be an http(s) URL, got {url!r}")
    if parts.username or parts.password:
        raise InvalidInput("--receiver must not carry credentials: MLflow signs each delivery")
    path = parts.path.rstrip("/") or RECEIVER_PATH
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


def cmd_receive(args: argparse.Namespace) -> int:
    from app.receiver.serve import serve
    from app.settings import Settings

    return serve(Settings.from_env(), args.host, args.port, log=lambda s: print(s, flush=True))


def cmd_register(args: argparse.Namespace) -> int:
    from app.mlflow_gateway.webhooks import register_receiver
    from app.settings import Settings

    settings = Settings.from_env()
    if not settings.mlflow_webhook_secret:
        raise InvalidInput(
            "set COUNTERSIGN_MLFLOW_WEBHOOK_SECRET or COUNTERSIGN_MLFLOW_WEBHOOK_SECRET_FILE: "
            "MLflow signs every delivery with it and the receiver checks it"
        )
    mlflow = args.mlflow.strip()
    if urlsplit(mlflow).scheme not in ("http", "https"):
        raise InvalidInput(f"--mlflow must be the URL of an MLflow server, got {mlflow!r}")
    hook = register_receiver(mlflow, receiver_url(args.receiver), settings.mlflow_webhook_secret)
    verb = "created" if hook.created else "updated"
    print(f"{hook.webhook_id}")
    print(f"webhook {verb} for {', '.join(hook.events)}")
    return 0
