"""Uvicorn's HTTP/1.1 protocol with the two bounds it lacks: a header deadline and a connection cap.

Uvicorn closes idle keep-alive connections but waits forever for a request's headers, so a
thousand clients that send half a request each hold a thousand descriptors, and then nothing,
Slack's acks included, gets in. ``BoundedH11Protocol`` gives every connection
``header_timeout`` seconds to deliver its request headers (again after each response, on a
kept-alive connection) and closes it otherwise; and it closes at once any connection beyond
``max_connections``, keeping descriptors for the store and the provider clients. The body's
deadline and size are the gate's (``bot.slack.gate``), which reads it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["BoundedH11Protocol", "HEADER_TIMEOUT", "MAX_CONNECTIONS", "bounded_protocol"]

log = logging.getLogger("bot.http")

HEADER_TIMEOUT = 10.0
MAX_CONNECTIONS = 256


class BoundedH11Protocol(H11Protocol):
    header_timeout = HEADER_TIMEOUT
    max_connections = MAX_CONNECTIONS

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._header_deadline: asyncio.TimerHandle | None = None
        self._waiting_since_cycle: Any = None
        if len(self.connections) > self.max_connections:
            log.warning("refused a connection from %s: %d open", _peer(self.client), len(self.connections) - 1)
            transport.close()
            return
        self._arm()

    def _arm(self) -> None:
        self._disarm()
        self._waiting_since_cycle = self.cycle
        self._header_deadline = self.loop.call_later(self.header_timeout, self._headers_late)

    def _disarm(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_late(self) -> None:
        self._header_deadline = None
        if not self.transport.is_closing():
            log.warning("closed a connection from %s: no complete request headers in %.0fs", _peer(self.client), self.header_timeout)
            self.transport.close()

    def handle_events(self) -> None:
        super().handle_events()
        # A new cycle means a request's headers are in: from here its body is the gate's to time.
        if self._header_deadline is not None and self.cycle is not self._waiting_since_cycle:
            self._disarm()

    def on_response_complete(self) -> None:
        answered = self.cycle
        super().on_response_complete()
        # A kept-alive connection gets the same deadline for its next request (unless a pipelined
        # one was already waiting and has just started).
        if not self.transport.is_closing() and self.cycle is answered:
            self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)


def _peer(client: Any) -> str:
    return str(client[0]) if client else "unknown"


def bounded_protocol(*, header_timeout: float = HEADER_TIMEOUT, max_connections: int = MAX_CONNECTIONS) -> type[H11Protocol]:
    """A protocol class with these bounds, for ``uvicorn.Config(http=...)``."""
    return type(
        "BoundedH11Protocol",
        (BoundedH11Protocol,),
        {"header_timeout": header_timeout, "max_connections": max_connections},
    )
