"""Incoming device messages are handled on their own thread, never on paho's network thread.

paho reads the socket and writes queued publishes on one thread. When discovery, templates,
the registry and the store ran there, one slow state message (a hostile template rendered
for seconds) stopped every command from going out while health said "connected". Now the
network thread only appends to a queue; `IngestWorker` handles messages in arrival order.

The queue is bounded (messages and bytes): past the bound new messages are dropped,
counted and logged at most once a minute, so a flood costs bounded memory and no log spam.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable

log = logging.getLogger(__name__)

MAX_MESSAGES = 100_000
MAX_BYTES = 64 * 1024 * 1024
DROP_LOG_INTERVAL_S = 60.0

Handler = Callable[[str, bytes, bool], None]


class IngestWorker:
    """A FIFO of (topic, payload, retained) handled by one daemon thread."""

    def __init__(
        self, handle: Handler, max_messages: int = MAX_MESSAGES, max_bytes: int = MAX_BYTES
    ) -> None:
        self._handle = handle
        self.max_messages = max_messages
        self.max_bytes = max_bytes
        self._queue: deque[tuple[str, bytes, bool]] = deque()
        self._bytes = 0
        self._busy = False
        self._cond = threading.Condition()
        self._stop = False
        self._thread: threading.Thread | None = None
        self.dropped = 0
        self._last_drop_log = -DROP_LOG_INTERVAL_S

    def start(self) -> None:
        with self._cond:
            if self._thread is not None:
                return
            self._stop = False
            self._thread = threading.Thread(target=self._run, name="mqtt-ingest", daemon=True)
            self._thread.start()

    def submit(self, topic: str, payload: bytes, retained: bool = False) -> None:
        """Queue one message; never blocks (the caller is paho's network thread)."""
        size = len(payload) + len(topic)
        with self._cond:
            if len(self._queue) >= self.max_messages or self._bytes + size > self.max_bytes:
                self._drop(topic)
                return
            self._queue.append((topic, payload, retained))
            self._bytes += size
            if len(self._queue) == 1:
                self._cond.notify()

    def _drop(self, topic: str) -> None:
        self.dropped += 1
        now = time.monotonic()
        if now - self._last_drop_log >= DROP_LOG_INTERVAL_S:
            self._last_drop_log = now
            log.warning(
                "incoming MQTT backlog full (%d messages, %d bytes): dropping messages"
                " (%d so far; latest on %s)",
                len(self._queue),
                self._bytes,
                self.dropped,
                topic[:200],
            )

    @property
    def backlog(self) -> int:
        """Messages waiting (plus the one being handled)."""
        with self._cond:
            return len(self._queue) + (1 if self._busy else 0)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._stop:
                    self._busy = False
                    self._cond.notify_all()  # wake wait_idle()
                    self._cond.wait()
                if not self._queue:  # stopping and drained
                    self._busy = False
                    self._cond.notify_all()
                    return
                topic, payload, retained = self._queue.popleft()
                self._bytes -= len(payload) + len(topic)
                self._busy = True
            try:
                self._handle(topic, payload, retained)
            except Exception:  # the handler guards itself; this keeps the thread alive
                log.exception("handling a message on %s failed", topic[:200])

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Block until everything queued so far is handled (tests, shutdown)."""
        end = time.monotonic() + timeout
        with self._cond:
            while self._queue or self._busy:
                left = end - time.monotonic()
                if left <= 0 or self._thread is None:
                    return False
                self._cond.wait(left)
        return True

    def stop(self, timeout: float = 2.0) -> None:
        """Handle what is queued (up to `timeout`), then end the thread."""
        with self._cond:
            thread, self._stop = self._thread, True
            self._cond.notify_all()
        if thread is not None:
            thread.join(timeout)
        with self._cond:
            self._thread = None
            left = len(self._queue)
        if left:
            log.warning("stopping with %d incoming MQTT messages not handled", left)
