"""Keeps the model's prompt cache warm: the stable prompt prefix (instructions, exposed
devices, actions) is evaluated in a background thread at hub start and again after the
registry's structure changes, so no request pays for it.

Changes are debounced: discovery announces dozens of devices within a second at start-up,
and one warm-up after they settle replaces dozens. The templates serve meanwhile; a request
that needs the model while a warm-up runs waits for it (the runtime has one slot), which is
no slower than evaluating the prefix itself.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


@dataclass
class WarmupStats:
    """Counters for health, tests and the bench."""

    warms: int = 0  # completed warm-ups
    skipped: int = 0  # wake-ups whose registry version was already warm
    errors: int = 0
    warmed_version: int = -1  # the registry version the cache holds
    last_ms: float = 0.0
    durations_ms: list[float] = field(default_factory=list)


class PrefixWarmer:
    """Runs `warm()` in one background thread whenever `version()` moved, debounced."""

    def __init__(
        self,
        warm: Callable[[], object],
        version: Callable[[], int],
        *,
        debounce_s: float = 2.0,
    ) -> None:
        """`warm` evaluates the current prefix; `version` is the registry's structure version."""
        self._warm = warm
        self._version = version
        self.debounce_s = debounce_s
        self.stats = WarmupStats()
        self.ready = threading.Event()  # set after each completed warm-up, cleared by a change
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._due = 0.0
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Warm in the background once `debounce_s` passed without a change (discovery
        announces the devices right after connecting), then follow changes."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._loop, name="llm-warmup", daemon=True)
        self._due = time.monotonic() + self.debounce_s
        self._wake.set()
        self._thread.start()

    def changed(self) -> None:
        """The registry's structure changed: warm again once changes stop for `debounce_s`."""
        if self._version() == self.stats.warmed_version:
            return  # a state-only change: the prefix holds no state
        self.ready.clear()
        self._due = time.monotonic() + self.debounce_s
        self._wake.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the cache holds the current prefix (True) or `timeout` passes."""
        return self.ready.wait(timeout)

    def stop(self, timeout: float = 60.0) -> None:
        """Stop following changes and wait for a warm-up in progress: the model must not be
        closed, nor the interpreter end, while native code evaluates the prefix."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("the model's warm-up did not finish within %g s of stopping", timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait()
            if self._stop.is_set():
                return
            # Debounce: wait until no change arrived for `debounce_s`.
            while True:
                self._wake.clear()
                delay = self._due - time.monotonic()
                if delay <= 0:
                    break
                if self._stop.wait(delay):
                    return
            self._run_once()

    def _run_once(self) -> None:
        version = self._version()
        if version == self.stats.warmed_version:
            self.stats.skipped += 1
            self.ready.set()
            return
        t0 = time.perf_counter()
        try:
            self._warm()
        except Exception as exc:  # noqa: BLE001 - a failed warm-up only costs the next request
            self.stats.errors += 1
            log.warning("warming the model's prompt cache failed: %s", exc)
            return
        ms = (time.perf_counter() - t0) * 1000
        self.stats.warms += 1
        self.stats.warmed_version = version
        self.stats.last_ms = ms
        self.stats.durations_ms.append(ms)
        log.info("model prompt prefix warm in %.1f s (registry version %d)", ms / 1000, version)
        if self._version() == version and not self._wake.is_set():
            self.ready.set()
