"""Wyoming timer events for the satellite that started each timer, and the package's
version and project URL for the `info` answer.

The TimerManager calls its listeners from its own thread; the events are written on the
server's loop to the satellite's latest open connection (a satellite that reconnects gets
the events of timers it started before).
"""

from __future__ import annotations

import asyncio
import logging
from importlib.metadata import PackageNotFoundError, metadata
from typing import Any

from wyoming.timer import TimerCancelled, TimerFinished, TimerStarted, TimerUpdated

import hubagent

log = logging.getLogger(__name__)


def package_info() -> tuple[str, str]:
    """(version, project URL) from the installed package's metadata ("" when unknown)."""
    try:
        meta = metadata("hubagent")
    except PackageNotFoundError:
        return hubagent.__version__, ""
    urls = [u.split(",", 1)[-1].strip() for u in meta.get_all("Project-URL") or []]
    url = meta.get("Home-page") or (urls[0] if urls else "")
    return meta.get("Version") or hubagent.__version__, url or ""


def timer_event(event: str, timer: Any) -> Any:
    """The wyoming event for a TimerManager event."""
    if event == "started":
        return TimerStarted(
            id=timer.id,
            total_seconds=int(timer.total_seconds),
            name=timer.name,
            start_hours=timer.start_hours,
            start_minutes=timer.start_minutes,
            start_seconds=timer.start_seconds,
        ).event()
    if event == "updated":
        return TimerUpdated(
            id=timer.id, is_active=timer.is_active, total_seconds=int(timer.seconds_left())
        ).event()
    if event == "cancelled":
        return TimerCancelled(id=timer.id).event()
    return TimerFinished(id=timer.id).event()


class SatelliteTimers:
    """Satellite id -> its open connection; forwards the timers' events to it."""

    def __init__(self, timers: Any) -> None:
        self.timers = timers
        self._connections: dict[str, Any] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.timers.add_listener(self._on_timer)

    def detach(self) -> None:
        self.timers.remove_listener(self._on_timer)
        self._loop = None

    def join(self, satellite: str, handler: Any) -> None:
        for key, known in list(self._connections.items()):
            if known is handler and key != satellite:
                del self._connections[key]
        self._connections[satellite] = handler

    def leave(self, handler: Any) -> None:
        for key, known in list(self._connections.items()):
            if known is handler:
                del self._connections[key]

    def _on_timer(self, event: str, timer: Any) -> None:
        handler = self._connections.get(timer.satellite or "")
        loop = self._loop
        if handler is None or loop is None or loop.is_closed():
            return
        wyoming_event = timer_event(event, timer)
        asyncio.run_coroutine_threadsafe(self._write(handler, wyoming_event), loop)

    async def _write(self, handler: Any, event: Any) -> None:
        try:
            await handler.write_event(event)
        except (ConnectionError, RuntimeError) as exc:  # the satellite went away meanwhile
            log.debug("timer event not delivered to %s: %s", handler.satellite, exc)
            self.leave(handler)
