"""Limits of the HTTP API: what a JSON body may hold, how many connections, how long.

Python's json accepts NaN, Infinity, 1e309 (infinity) and integers of any length, and
recurses on nesting; each of those reached the handlers as a 500. `parse_json_body` turns
them into a 400 with a clear message. `CappedSite` refuses connections past a cap with a
503, and `RateLimitedErrors` keeps the event loop's repeated errors (e.g. "Too many open
files" on every accept) to one line per kind per minute.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from typing import Any

from aiohttp import web

log = logging.getLogger(__name__)

MAX_JSON_DEPTH = 32  # an action is 3 levels deep; deeper nesting is an attack on parsers
MAX_INT_DIGITS = 30  # longer integers are no value any device takes
ERROR_LOG_INTERVAL_S = 60.0  # one line per kind of repeated server error per minute


class BadRequest(ValueError):
    """A client error whose message is safe to send back."""


def _reject_constant(name: str) -> Any:
    raise BadRequest(f"body contains {name}, which is not a JSON number")


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise BadRequest(f"body contains an integer of {len(text)} digits")
    return int(text)


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e309 parses to infinity
        raise BadRequest(f"body contains a number out of range ({text[:20]})")
    return value


def _depth_ok(value: Any) -> bool:
    """Whether `value` nests at most MAX_JSON_DEPTH levels (iterative: no recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > MAX_JSON_DEPTH:
                return False
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return True


def parse_json_body(body: bytes) -> dict[str, Any]:
    """A request body as a JSON object; BadRequest (400) for anything Python's json
    accepts but a client must not send: NaN/Infinity, huge integers, deep nesting."""
    try:
        data = json.loads(
            body.decode("utf-8"),
            parse_constant=_reject_constant,
            parse_int=_parse_int,
            parse_float=_parse_float,
        )
    except BadRequest:
        raise  # from the hooks above, with their own message
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise BadRequest("body is not valid JSON") from None
    except RecursionError:
        raise BadRequest(f"body nests deeper than {MAX_JSON_DEPTH} levels") from None
    except ValueError:  # e.g. Python's own limit on integer digits
        raise BadRequest("body contains a value out of range") from None
    if not isinstance(data, dict):
        raise BadRequest("body must be a JSON object")
    if not _depth_ok(data):
        raise BadRequest(f"body nests deeper than {MAX_JSON_DEPTH} levels")
    return data


class _Busy(asyncio.Protocol):
    """Answers 503 and closes: the connection cap is reached."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.write(
            b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        transport.close()


class CappedSite(web.TCPSite):
    """A TCP site with at most `max_connections` open (instead of accepting until the
    process runs out of file descriptors). At the cap a new connection closes the oldest
    one that has no request in progress (a half-open or idle one), so a client holding
    many silent connections cannot lock others out; only when all are busy is it a 503."""

    def __init__(self, runner: web.AppRunner, host: str, port: int, max_connections: int):
        super().__init__(runner, host, port)
        self.max_connections = max(1, max_connections)
        self.refused = 0
        self.evicted = 0
        self._pending = 0
        self._closing: set[Any] = set()  # evicted handlers until the server drops them
        self._last_log = -ERROR_LOG_INTERVAL_S

    def _settle(self) -> None:
        self._pending -= 1

    def _protocol(self) -> asyncio.Protocol:
        server = self._runner.server
        assert server is not None
        handlers = server.connections  # in connection order: the oldest first
        self._closing.intersection_update(handlers)
        live = [h for h in handlers if h not in self._closing]
        # asyncio accepts a burst of connections before any of them is "made" (and counted
        # by the server), so the ones handed out in this loop iteration count too.
        if len(live) + self._pending >= self.max_connections:
            # aiohttp has no public "idle" flag; _request_in_progress is what it uses itself.
            idle = next((h for h in live if not getattr(h, "_request_in_progress", True)), None)
            if idle is None:
                self.refused += 1
                self._log(len(live), "all busy, refusing new ones with 503")
                return _Busy()
            self._closing.add(idle)
            idle.force_close()
            self.evicted += 1
            self._log(len(live), "closing the oldest idle one for each new one")
        self._pending += 1
        loop = asyncio.get_running_loop()
        loop.call_soon(loop.call_soon, self._settle)  # after connection_made has run
        return server()

    def _log(self, count: int, what: str) -> None:
        now = time.monotonic()
        if now - self._last_log >= ERROR_LOG_INTERVAL_S:
            self._last_log = now
            log.warning(
                "HTTP: %d connections open (http.max_connections); %s"
                " (%d closed, %d refused so far)",
                count,
                what,
                self.evicted,
                self.refused,
            )

    async def start(self) -> None:
        await web.BaseSite.start(self)  # registers the site with the runner (for cleanup)
        loop = asyncio.get_running_loop()
        # TCPSite.start with our protocol factory; BaseSite.stop closes self._server.
        self._server = await loop.create_server(
            self._protocol,
            self._host,
            self._port,
            backlog=self._backlog,
            reuse_address=self._reuse_address,
        )
        sockets = self._server.sockets
        self._bound_port = sockets[0].getsockname()[1] if sockets else self._port


class RateLimitedErrors:
    """The loop's exception handler, at most one line per kind of error per minute: with
    no file descriptors left, asyncio logs every failed accept (79,039 lines in an audit)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._previous = loop.get_exception_handler()
        self._last: dict[str, float] = {}
        self._skipped: dict[str, int] = {}

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        key = f"{context.get('message', '')}|{type(exc).__name__}|{getattr(exc, 'errno', '')}"
        now = time.monotonic()
        if now - self._last.get(key, -ERROR_LOG_INTERVAL_S) < ERROR_LOG_INTERVAL_S:
            self._skipped[key] = self._skipped.get(key, 0) + 1
            return
        if len(self._last) > 256:
            self._last.clear()
        self._last[key] = now
        skipped = self._skipped.pop(key, 0)
        if skipped:
            context = {**context, "message": f"{context.get('message')} ({skipped} more)"}
        if self._previous is not None:
            self._previous(loop, context)
        else:
            loop.default_exception_handler(context)
