"""The receiver under uvicorn, as `webhooks receive` configures it, over raw HTTP/1.1.

Clients that open connections and never finish a request (nothing sent, half the headers, half
the body) are closed by the server at the whole-request deadline, and a signed delivery still
gets in. A header byte that is a digit only to str.isdigit() (0xB2, "²") is a refusal, not a
500 with a traceback in the log.

Without the deadline uvicorn keeps such connections open for ever: a few hundred of them from
anyone who can reach the port use up the receiver's connections while MLflow's deliveries
wait. The deadline is shortened to one second here; the client waits up to 60 s for the close.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from app.receiver import signature as sig
from app.receiver.app import PATH, build_app
from app.receiver.serve import server_config
from tests.fixtures_mlflow import free_port
from tests.integration.test_receiver import (  # noqa: F401 (fixtures)
    SECRET,
    Stack,
    empty_db_url_pg,
    headers,
    mlflow_body,
    stack,
)

pytestmark = pytest.mark.slow


@pytest.fixture
def port(stack: Stack) -> Iterator[int]:  # noqa: F811 (the fixture above)
    import uvicorn

    number = free_port()
    app = build_app(SECRET, stack.deliveries, stack.refusals)
    server = uvicorn.Server(server_config(app, "127.0.0.1", number, read_timeout_s=1.0))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:  # uvicorn sets this once it listens
        assert thread.is_alive(), "the receiver did not start"
        time.sleep(0.05)
    try:
        yield number
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def _until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (60 s at most)."""
    received = b""
    while chunk := sock.recv(4096):
        received += chunk
    return received


def _post(port: int, body: bytes, sent: dict[str, str]) -> bytes:
    lines = [f"POST {PATH} HTTP/1.1", "Host: receiver", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in sent.items()] + ["Connection: close", "", ""]
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall("\r\n".join(lines).encode("latin-1") + body)
        return _until_closed(sock)


@pytest.mark.parametrize(
    "sent",
    [
        b"",
        f"POST {PATH} HTTP/1.1\r\nHost: receiver\r\n".encode(),
        f"POST {PATH} HTTP/1.1\r\nHost: receiver\r\nContent-Length: 300\r\n\r\n{{".encode(),
    ],
    ids=["nothing", "half-the-headers", "half-the-body"],
)
def test_a_client_that_never_finishes_its_request_is_cut_off(
    port: int,
    stack: Stack,  # noqa: F811
    sent: bytes,
) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(sent)
        assert _until_closed(sock) == b""  # closed by the server, nothing answered
    body = mlflow_body()
    answer = _post(port, body, headers(body))
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]
    assert stack.deliveries.counts() == {"pending": 1}


def test_a_timestamp_of_digits_that_are_not_ascii_is_refused_as_stale(
    port: int,
    stack: Stack,  # noqa: F811
) -> None:
    body = mlflow_body()
    sent = headers(body)
    sent[sig.TIMESTAMP_HEADER] = "\u00b2"  # sent as the single byte 0xB2
    answer = _post(port, body, sent)
    assert answer.startswith(b"HTTP/1.1 401 "), answer[:200]
    assert b'"error":"stale_timestamp"' in answer
    assert stack.deliveries.counts() == {}
