"""The receiver's pieces: MLflow's signature, bounded refusal audits, event parsing, the URL."""

from __future__ import annotations

import json
from typing import Any

import pytest

from app.receiver import signature as sig
from app.receiver.app import parse_event
from app.receiver.refusals import RefusalLog

SECRET = "unit-secret"
BODY = b'{"entity": "model_version_alias", "action": "created", "data": {"name": "m"}}'
NOW = 1_800_000_000


def test_our_signature_is_exactly_the_one_mlflow_sends() -> None:
    from mlflow.webhooks.delivery import _generate_hmac_signature

    theirs = _generate_hmac_signature(SECRET, "d-1", str(NOW), BODY.decode())
    assert sig.sign(SECRET, "d-1", str(NOW), BODY) == theirs


def check(**override: Any) -> str | None:
    values: dict[str, Any] = {
        "delivery_id": "d-1",
        "timestamp": str(NOW),
        "signature": sig.sign(SECRET, "d-1", str(NOW), BODY),
        "body": BODY,
        "now": NOW,
    }
    values.update(override)
    return sig.check(SECRET, **values)


@pytest.mark.parametrize(
    ("override", "reason"),
    [
        ({}, None),
        ({"now": NOW + 300}, None),
        ({"now": NOW + 301}, sig.STALE_TIMESTAMP),
        ({"now": NOW - 301}, sig.STALE_TIMESTAMP),
        ({"timestamp": "1e9"}, sig.STALE_TIMESTAMP),
        ({"timestamp": "\u00b2"}, sig.STALE_TIMESTAMP),
        ({"timestamp": "\uff11\uff18" + str(NOW)[2:]}, sig.STALE_TIMESTAMP),
        ({"body": BODY + b" "}, sig.BAD_SIGNATURE),
        ({"delivery_id": "d-2"}, sig.BAD_SIGNATURE),
        ({"signature": "v1," + "A" * 44}, sig.BAD_SIGNATURE),
        ({"signature": "v1,é"}, sig.BAD_SIGNATURE),
        ({"signature": ""}, sig.MISSING_HEADERS),
        ({"delivery_id": None}, sig.MISSING_HEADERS),
        ({"delivery_id": "../../etc"}, sig.BAD_DELIVERY_ID),
        ({"delivery_id": "x" * 65}, sig.BAD_DELIVERY_ID),
    ],
)
def test_only_an_authentic_fresh_delivery_passes(override: dict[str, Any], reason: str) -> None:
    assert check(**override) == reason


def test_one_valid_signature_among_several_suffices() -> None:
    both = "v1,AAAA " + sig.sign(SECRET, "d-1", str(NOW), BODY)
    assert check(signature=both) is None


class Clock:
    def __init__(self) -> None:
        self.now = float(NOW)

    def __call__(self) -> float:
        return self.now


def test_a_flood_of_refusals_costs_two_entries_per_reason_per_minute() -> None:
    written: list[tuple[str, dict[str, Any]]] = []
    clock = Clock()
    log = RefusalLog(lambda reason, data: written.append((reason, dict(data))), clock=clock)
    for k in range(1000):
        log.note(sig.BAD_SIGNATURE, delivery_id=f"d-{k}", remote="10.0.0.9")
        clock.now += 0.01
    log.note(sig.REPLAYED, delivery_id="r-1")
    assert log.flush() == 2  # the first of each reason, at once
    assert [(r, d["count"]) for r, d in written] == [(sig.BAD_SIGNATURE, 1), (sig.REPLAYED, 1)]
    assert written[0][1]["delivery_id"] == "d-0"
    assert log.flush() == 0  # nothing more within the minute
    clock.now += 60
    assert log.flush() == 1  # the summary of the 999 that followed the first
    reason, summary = written[-1]
    assert (reason, summary["count"]) == (sig.BAD_SIGNATURE, 999)
    assert summary["sample_delivery_ids"] == ["d-1", "d-2", "d-3", "d-4", "d-5"]
    log.note(sig.BAD_SIGNATURE, delivery_id="later")
    assert log.flush() == 1  # a new minute starts with a new first entry


def test_stopping_summarises_the_open_minute() -> None:
    written: list[str] = []
    log = RefusalLog(lambda reason, data: written.append(f"{reason}:{data['count']}"))
    for _ in range(3):
        log.note(sig.STALE_TIMESTAMP)
    log.flush(final=True)
    assert written == [f"{sig.STALE_TIMESTAMP}:1", f"{sig.STALE_TIMESTAMP}:2"]


@pytest.mark.parametrize(
    ("body", "parsed"),
    [
        (BODY, ("model_version_alias.created", "m")),
        (b'{"entity": "prompt", "action": "created", "data": {}}', ("prompt.created", "")),
        (b'{"entity": "x", "action": "y", "data": {"name": 7}}', ("x.y", "")),
        (b"[]", None),
        (b"not json", None),
        (b'{"entity": "x", "action": "y"}', None),
        (json.dumps({"entity": "e" * 70, "action": "a", "data": {}}).encode(), None),
    ],
)
def test_only_mlflow_event_bodies_are_understood(body: bytes, parsed: object) -> None:
    assert parse_event(body) == parsed


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("https://cs.example.org", "https://cs.example.org/mlflow/webhooks"),
        ("https://cs.example.org/", "https://cs.example.org/mlflow/webhooks"),
        ("http://127.0.0.1:8090/mlflow/webhooks", "http://127.0.0.1:8090/mlflow/webhooks"),
    ],
)
def test_the_receiver_url_gets_the_endpoint_path(given: str, expected: str) -> None:
    from app.commands.receiver import receiver_url

    assert receiver_url(given) == expected


@pytest.mark.parametrize("bad", ["ftp://x/y", "cs.example.org", "https://u:p@cs.example.org"])
def test_a_receiver_url_that_cannot_work_is_refused_in_one_line(bad: str) -> None:
    from app.commands.receiver import receiver_url
    from app.errors import InvalidInput

    with pytest.raises(InvalidInput):
        receiver_url(bad)
