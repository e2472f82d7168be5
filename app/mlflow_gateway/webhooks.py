"""Registering Countersign's receiver as a webhook in MLflow (`webhooks register`).

MLflow (3.3+, `mlflow server` with a SQL backend) then signs and sends its registry events to
the receiver. Registering again with the same receiver URL updates that webhook (events, secret,
status) instead of adding a second one, so the command is safe to re-run (e.g. to rotate the
secret). MLflow's server decides whether the URL is allowed: by default only https and public
addresses (`MLFLOW_WEBHOOK_ALLOWED_SCHEMES`, `MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS` on the server).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.mlflow_gateway._support import apply_fast_fail_env, mlflow_errors

WEBHOOK_NAME = "countersign-ledger"
EVENTS = (
    "model_version_alias.created",
    "model_version_alias.deleted",
    "model_version_tag.set",
    "model_version.created",
    "registered_model.created",
)


@dataclass(frozen=True)
class RegisteredWebhook:
    """The webhook as MLflow stored it; `created` False when an existing one was updated."""

    webhook_id: str
    created: bool
    events: tuple[str, ...]


def _same_url(webhooks: Any, url: str) -> Any:
    for hook in webhooks:
        if str(hook.url) == url:
            return hook
    return None


def register_receiver(mlflow_uri: str, receiver_url: str, secret: str) -> RegisteredWebhook:
    """Create (or update) the MLflow webhook that sends registry events to the receiver.

    Args:
        mlflow_uri: The MLflow tracking server, e.g. https://mlflow.example.org.
        receiver_url: The receiver's full URL, ending in /mlflow/webhooks.
        secret: The shared secret MLflow signs with (the receiver's
            COUNTERSIGN_MLFLOW_WEBHOOK_SECRET).

    Raises:
        InvalidQuery: MLflow refused the URL (scheme or private address not allowed there).
        StoreUnavailable: MLflow cannot be reached, or does not support webhooks.
    """
    apply_fast_fail_env()
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=mlflow_uri, registry_uri=mlflow_uri)
    with mlflow_errors(mlflow_uri, "webhooks"):
        existing, token = None, None
        while existing is None:
            page = client.list_webhooks(max_results=100, page_token=token)
            existing = _same_url(page, receiver_url)
            token = page.token
            if not token:
                break
        description = "Countersign: registry events compared with the governance ledger"
        if existing is not None:
            hook = client.update_webhook(
                existing.webhook_id,
                events=list(EVENTS),
                secret=secret,
                status="ACTIVE",
                description=description,
            )
            created = False
        else:
            hook = client.create_webhook(
                name=WEBHOOK_NAME,
                url=receiver_url,
                events=list(EVENTS),
                description=description,
                secret=secret,
            )
            created = True
    return RegisteredWebhook(str(hook.webhook_id), created, EVENTS)
