"""Webhook payloads and their HMAC-SHA256 signatures (standard library only).

A receiver checks `X-Countersign-Signature: v1=<hex>` where hex is HMAC-SHA256 with the shared
secret over `<X-Countersign-Timestamp>.<raw body>`, refuses timestamps older than a few minutes
(replays), and drops a repeated `X-Countersign-Delivery` id (a retry after a lost answer).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import uuid
from collections.abc import Mapping
from typing import Any

SIGNATURE_HEADER = "X-Countersign-Signature"
TIMESTAMP_HEADER = "X-Countersign-Timestamp"
DELIVERY_HEADER = "X-Countersign-Delivery"
EVENT_HEADER = "X-Countersign-Event"
SIGNATURE_VERSION = "v1"
# Delivery ids are stable across retries: uuid5 of (endpoint, seq) in our own namespace.
_NAMESPACE = uuid.UUID("6f2b8a52-3c1e-4d0b-9a57-2f1f0c9e7d11")

# Audit actions that notify, with the words used in the Slack-style "text".
NOTIFIED_ACTIONS: Mapping[str, str] = {
    "request_created": "Promotion requested",
    "rollback_requested": "Rollback requested",
    "break_glass": "Break-glass promotion",
    "follow_up_opened": "Follow-up review opened",
    "vote_recorded": "Vote recorded",
    "request_approved": "Request approved",
    "request_rejected": "Request rejected",
    "request_cancelled": "Request cancelled",
    "request_expired": "Request expired",
    "request_superseded": "Request superseded",
    "execution_succeeded": "Executed in MLflow",
    "execution_failed": "Execution FAILED",
    "out_of_band_change": "OUT-OF-BAND CHANGE in MLflow",
    "out_of_band_reverted": "Out-of-band change PUT BACK in MLflow",
    "out_of_band_revert_failed": "Out-of-band change could NOT be put back",
    "monitoring_alert": "MONITORING ALERT",
}


def endpoint_key(url: str) -> str:
    """What the database stores for an endpoint: a hash, never the URL (it may hold a token)."""
    return hashlib.sha256(url.encode("utf-8")).hexdigest()[:32]


def redacted(url: str) -> str:
    """scheme://host[:port] only: what logs and messages may show of an endpoint."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host = parts.hostname or "?"
    return f"{parts.scheme}://{host}{f':{parts.port}' if parts.port else ''}/..."


def delivery_id(key: str, seq: int) -> str:
    """The id of the delivery of audit entry `seq` to the endpoint `key` (same on every retry)."""
    return str(uuid.uuid5(_NAMESPACE, f"{key}:{seq}"))


_LINE_BREAKS = re.compile(r"[\r\n\v\f\x85\u2028\u2029]+")


def slack_escape(value: object) -> str:
    """A value from MLflow or a person, as inert text inside a Slack message.

    Slack reads `<...>` as a control sequence (`<!channel>`, `<!here>`, `<@U123>`,
    `<https://x|label>`) and asks for `&`, `<` and `>` to be sent as `&amp;`, `&lt;`, `&gt;`.
    Line breaks become spaces, so a value cannot add a line that looks like another event.
    """
    text = _LINE_BREAKS.sub(" ", str(value))
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def summary_text(event: Mapping[str, Any], data: Mapping[str, Any]) -> str:
    """One line for chat: what happened, to which model version and target, and by whom.

    Every value comes from the audit entry (names, targets, actors typed by people or read from
    MLflow) and is escaped with `slack_escape`; only the words around them are ours.
    """
    esc = slack_escape
    action = str(event["action"])
    what = NOTIFIED_ACTIONS.get(action) or esc(action.replace("_", " "))
    subject = ""
    if data.get("model"):
        subject = f" {esc(data['model'])}"
        if data.get("version"):
            subject += f" v{esc(data['version'])}"
        if data.get("target"):
            subject += f" -> {esc(data['target'])}"
    detail = ""
    if action == "vote_recorded" and data.get("decision"):
        detail = f" ({esc(data['decision'])})"
    elif action == "monitoring_alert":
        check, value, limit = (esc(data.get(k)) for k in ("check", "value", "limit"))
        detail = f" ({check} {value} breaks {limit})"
    elif data.get("state") and action not in ("request_created", "vote_recorded"):
        detail = f" (state: {esc(data['state'])})"
    return (
        f"Countersign: {what}{subject}{detail} by {esc(event['actor'])} "
        f"[{esc(event['object_type'])} {esc(event['object_id'])}, audit #{esc(event['seq'])}]"
    )


def build_body(event: Mapping[str, Any], delivery: str) -> bytes:
    """The JSON body: the audit entry as recorded plus a chat-ready `text` field."""
    data = json.loads(str(event["payload"]))
    body = {
        "id": delivery,
        "event": event["action"],
        "seq": event["seq"],
        "occurred_at": event["ts"],
        "actor": event["actor"],
        "object_type": event["object_type"],
        "object_id": event["object_id"],
        "data": data,
        "entry_hash": event["entry_hash"],
        "text": summary_text(event, data),
        # Slack then shows `text` as typed: `*`, `_`, `~` and back-ticks in a value style nothing.
        "mrkdwn": False,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """`v1=<hex>`: HMAC-SHA256 over `<timestamp>.<body>` with the shared secret."""
    mac = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, "sha256")
    return f"{SIGNATURE_VERSION}={mac.hexdigest()}"


def signature_valid(
    secret: str, timestamp: str, body: bytes, header: str, *, now: float, tolerance_s: int = 300
) -> bool:
    """What a receiver does: constant-time comparison and a freshness window against replays."""
    try:
        age = abs(now - int(timestamp))
    except ValueError:
        return False
    if age > tolerance_s:
        return False
    return hmac.compare_digest(signature(secret, timestamp, body), header.strip())
