"""A whole request within a deadline: uvicorn's HTTP/1.1 protocol with a read timeout.

uvicorn waits for ever on a connection that sends nothing, half its headers, or half its body
(it times out only idle keep-alive connections after an answer), so anyone who can reach the
receiver could hold its connections and descriptors open until MLflow's deliveries are turned
away. Here each connection must deliver a whole request, headers and body, within
`read_timeout_s` of opening (or of the previous answer); otherwise it is closed. A request
that arrived in full is never cut off while the application answers it.
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

READ_TIMEOUT_S = 10.0  # MLflow sends a few hundred bytes at once
MAX_CONNECTIONS = 256  # beyond this, uvicorn answers 503 (MLflow retries with backoff)


class DeadlineH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, closing a connection whose request is not whole in time."""

    read_timeout_s = READ_TIMEOUT_S
    _read_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self._arm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        if not self.transport.is_closing():
            self._read_deadline = self.loop.call_later(self.read_timeout_s, self._expire)

    def _disarm(self) -> None:
        if self._read_deadline is not None:
            self._read_deadline.cancel()
            self._read_deadline = None

    def _expire(self) -> None:
        self._read_deadline = None
        if self.transport.is_closing() or self.conn.their_state is h11.DONE:
            return  # the request is whole: the application is answering it
        self.transport.close()


def protocol(read_timeout_s: float = READ_TIMEOUT_S) -> type[DeadlineH11Protocol]:
    """The protocol class with the given deadline (uvicorn instantiates it per connection)."""
    return type("DeadlineH11Protocol", (DeadlineH11Protocol,), {"read_timeout_s": read_timeout_s})
