"""Who asks: the requester's origin, per-requester rate limits and confirmations that must
come from an authenticated channel.

An `Origin` is the interface plus the peer or user behind a request ("wyoming:192.0.2.7",
"http", "automation:night"). Rate limits are kept per origin and entity, so one requester
flooding a lock exhausts only its own budget, never another requester's "lock the door".
A request from an unauthenticated origin (a Wyoming peer outside `wyoming.trusted_peers`)
for a sensitive action gets a one-time code; only an authenticated channel can confirm it.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from hubagent.types import Action

# Keys kept by a rate limiter: a hostile peer cycling through ids cannot grow it unbounded.
MAX_RATE_KEYS = 4096
MAX_CODES = 64  # open remote confirmations, all origins together
MAX_CODES_PER_ORIGIN = 3


@dataclass(frozen=True)
class Origin:
    """Interface and peer/user of one request; `authenticated` when the channel proved who
    it is (HTTP token, local CLI, a trusted Wyoming peer)."""

    who: str
    authenticated: bool = True


class RateLimiter:
    """Sliding-window counters per key; thread-safe, bounded in keys."""

    def __init__(self, limit: int, window_s: float, clock: Callable[[], float]) -> None:
        self.limit = limit
        self.window_s = window_s
        self.clock = clock
        self._lock = threading.Lock()
        self._recent: OrderedDict[tuple[str, ...], deque[float]] = OrderedDict()

    def allow(self, *key: str) -> bool:
        """Count one event for `key`; False (and not counted) when the window is full."""
        now = self.clock()
        with self._lock:
            recent = self._recent.pop(key, None) or deque()
            while recent and recent[0] <= now - self.window_s:
                recent.popleft()
            allowed = len(recent) < self.limit
            if allowed:
                recent.append(now)
            self._recent[key] = recent  # most recently used last
            while len(self._recent) > MAX_RATE_KEYS:
                self._recent.popitem(last=False)
            return allowed


@dataclass
class RemoteConfirmation:
    """A sensitive request waiting for a confirmation from an authenticated channel."""

    code: str
    actions: list[Action]
    requester: str
    origin: Origin
    expires: float
    channel: str = ""
    created: float = field(default_factory=time.monotonic)


class RemoteConfirmations:
    """Open one-time codes: `open` for an unauthenticated request, `take` to confirm one."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._open: OrderedDict[str, RemoteConfirmation] = OrderedDict()

    def open(
        self, actions: list[Action], requester: str, origin: Origin, channel: str, window_s: float
    ) -> RemoteConfirmation:
        """A new code for `actions`; the requester's earlier open code is replaced, and each
        origin keeps at most MAX_CODES_PER_ORIGIN (oldest dropped)."""
        with self._lock:
            now = self.clock()
            for code, item in list(self._open.items()):
                if item.expires <= now or item.requester == requester:
                    del self._open[code]
            mine = [c for c, i in self._open.items() if i.origin.who == origin.who]
            for code in mine[: max(0, len(mine) - MAX_CODES_PER_ORIGIN + 1)]:
                del self._open[code]
            while len(self._open) >= MAX_CODES:
                self._open.popitem(last=False)
            code = f"{secrets.randbelow(10**6):06d}"
            while code in self._open:
                code = f"{secrets.randbelow(10**6):06d}"
            item = RemoteConfirmation(
                code, list(actions), requester, origin, now + window_s, channel
            )
            self._open[code] = item
            return item

    def take(self, code: str) -> RemoteConfirmation | None:
        """The open confirmation with this code, removed; None when unknown or expired."""
        with self._lock:
            item = self._open.pop(code, None)
        if item is None or item.expires <= self.clock():
            return None
        return item

    def waiting_for(self, requester: str) -> RemoteConfirmation | None:
        """The requester's open, unexpired code, if any."""
        with self._lock:
            now = self.clock()
            return next(
                (i for i in self._open.values() if i.requester == requester and i.expires > now),
                None,
            )

    def cancel(self, requester: str) -> bool:
        """Drop the requester's open code; whether there was one."""
        with self._lock:
            codes = [c for c, i in self._open.items() if i.requester == requester]
            for code in codes:
                del self._open[code]
            return bool(codes)
