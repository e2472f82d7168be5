"""MLflow's webhook signature (standard library only).

MLflow 3.3+ signs each delivery with `X-MLflow-Signature: v1,<base64 HMAC-SHA256>` over
`<X-MLflow-Delivery-Id>.<X-MLflow-Timestamp>.<raw body>` with the webhook's secret (see
mlflow/webhooks/delivery.py, `_generate_hmac_signature`). A receiver compares in constant time
and refuses timestamps outside a window, so a captured delivery cannot be replayed later.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

SIGNATURE_HEADER = "X-MLflow-Signature"
TIMESTAMP_HEADER = "X-MLflow-Timestamp"
DELIVERY_HEADER = "X-MLflow-Delivery-Id"
VERSION = "v1"
TOLERANCE_S = 300  # five minutes, either way (clocks drift; a future stamp is no fresher)
# MLflow sends a uuid4; anything else that is short and plain is accepted, nothing that could
# carry markup or a path into the audit log.
DELIVERY_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")

# Refusal reasons (also the audit object ids of the refusal entries).
MISSING_HEADERS = "missing_headers"
BAD_DELIVERY_ID = "bad_delivery_id"
STALE_TIMESTAMP = "stale_timestamp"
BAD_SIGNATURE = "bad_signature"
REPLAYED = "replayed_delivery_id"
MALFORMED_BODY = "malformed_body"
TOO_LARGE = "body_too_large"


def sign(secret: str, delivery_id: str, timestamp: str, body: bytes) -> str:
    """The header value MLflow would send for this delivery."""
    signed = f"{delivery_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).digest()
    return f"{VERSION},{base64.b64encode(digest).decode('ascii')}"


def check(
    secret: str,
    *,
    delivery_id: str | None,
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    now: float,
    tolerance_s: int = TOLERANCE_S,
) -> str | None:
    """None when the delivery is authentic and fresh, else the refusal reason.

    The signature header may list several space-separated signatures (key rotation, as in
    Standard Webhooks); one valid `v1` signature suffices. Every candidate is compared with
    `hmac.compare_digest`.
    """
    if not (delivery_id and timestamp and signature):
        return MISSING_HEADERS
    if not DELIVERY_ID_RE.match(delivery_id):
        return BAD_DELIVERY_ID
    # ASCII digits only: str.isdigit() also accepts "²" (a header byte 0xB2), which int() refuses.
    if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 12:
        return STALE_TIMESTAMP
    if abs(now - int(timestamp)) > tolerance_s:
        return STALE_TIMESTAMP
    expected = sign(secret, delivery_id, timestamp, body)
    valid = False
    for candidate in signature.split()[:8]:
        valid |= hmac.compare_digest(expected.encode(), candidate.encode())
    return None if valid else BAD_SIGNATURE
