"""Last known states and history for `Store`: the write-behind buffer, its flusher, pruning.

State writes are buffered (latest value per entity wins) and written by a background
thread every `flush_interval_s`; history rows are buffered too and written with them.
`StatesMixin` is mixed into `Store`, which provides the connection, `transact` and `query`.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")

HISTORY_MEMORY_CAP = 10_000  # history rows kept in memory while the disk refuses writes
FLUSH_BATCH = 5_000  # buffered history rows that trigger an immediate flush
PRUNE_INTERVAL_S = 3600.0
CONTEXT_RETENTION_S = 86400.0  # a conversation idle for a day starts fresh

_UPSERT_STATE = (
    "INSERT INTO states(entity_id, state, available, last_changed) VALUES (?,?,?,?)"
    " ON CONFLICT(entity_id) DO UPDATE SET state=excluded.state,"
    " available=excluded.available, last_changed=excluded.last_changed"
)


def _encoded(
    rows: Iterable[tuple[str, dict[str, Any], int, float]],
) -> list[tuple[str, str, int, float]]:
    """State rows as the `states` table stores them (state as JSON text)."""
    return [(e, _dumps(s), a, t) for e, s, a, t in rows]


# One encoder for every row: json.dumps with options builds a new encoder per call.
_ENCODER = json.JSONEncoder(default=str, separators=(",", ":"), ensure_ascii=False)


def _dumps(value: Any) -> str:
    return _ENCODER.encode(value)


class StatesMixin:
    """Saved states and history of `Store` (see the module docstring)."""

    # Set up by Store.__init__.
    history_days: float
    flush_interval_s: float
    degraded: bool
    _lock: threading.RLock
    _buf_lock: threading.Lock
    _states_buf: dict[str, tuple[str, dict[str, Any], int, float]]
    _history_buf: list[tuple[str, dict[str, Any], float]]
    _last_prune: float
    _stop: threading.Event
    _flusher: threading.Thread | None

    if TYPE_CHECKING:  # provided by Store

        def transact(
            self, kind: str, fn: Callable[[sqlite3.Connection], T]
        ) -> tuple[bool, T | None]: ...

        def query(self, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]: ...

    # -- state (write-behind) ----------------------------------------------------------
    def save_state(
        self,
        entity_id: str,
        state: dict[str, Any],
        available: bool = True,
        last_changed: float | None = None,
    ) -> None:
        """Buffer the entity's last known state; written within `flush_interval_s`."""
        when = time.time() if last_changed is None else last_changed
        row = (entity_id, dict(state), int(available), when)
        with self._buf_lock:
            self._states_buf[entity_id] = row
        self._ensure_flusher()

    def save_states_many(self, rows: Iterable[tuple[str, dict[str, Any], bool, float]]) -> bool:
        """Write many states now in one transaction; False (degraded) when it fails."""
        rows = [(e, dict(s), int(a), t) for e, s, a, t in rows]
        data = _encoded(rows)
        ok, _ = self.transact("save_states", lambda c: c.executemany(_UPSERT_STATE, data))
        if not ok:
            with self._buf_lock:
                for row in rows:
                    self._states_buf.setdefault(row[0], row)
        return ok

    def add_history(self, entity_id: str, state: dict[str, Any], ts: float | None = None) -> None:
        """Buffer one history row (written with the next flush); none with `history_days` 0."""
        if self.history_days <= 0:
            return  # history off: the cheapest ingest (writing history is most of its cost)
        # Encoded at flush, like states: a copy here is far cheaper than JSON per message.
        with self._buf_lock:
            self._history_buf.append((entity_id, dict(state), time.time() if ts is None else ts))
            size = len(self._history_buf)
            if self.degraded and size > HISTORY_MEMORY_CAP:  # bounded memory while the disk fails
                del self._history_buf[: size - HISTORY_MEMORY_CAP]
        if size >= FLUSH_BATCH and not self.degraded:
            self.flush()  # a burst: write now rather than grow the buffer (back-pressure)
        self._ensure_flusher()

    def flush(self) -> bool:
        """Write the buffered states and history now; False when the disk refused them."""
        with self._buf_lock:
            states, self._states_buf = self._states_buf, {}
            history, self._history_buf = self._history_buf, []
        if not states and not history:
            return True

        def write(conn: sqlite3.Connection) -> None:
            conn.executemany(_UPSERT_STATE, _encoded(states.values()))
            conn.executemany(
                "INSERT INTO history(entity_id, state, ts) VALUES (?,?,?)",
                [(e, _dumps(s), t) for e, s, t in history],
            )

        ok, _ = self.transact("flush", write)
        if not ok:  # keep them for the next try; newer values that arrived meanwhile win
            with self._buf_lock:
                self._states_buf = {**states, **self._states_buf}
                self._history_buf = (history + self._history_buf)[-HISTORY_MEMORY_CAP:]
        return ok

    def load_states(self) -> dict[str, dict[str, Any]]:
        """entity_id -> {"state": {...}, "available": bool, "last_changed": float}."""
        rows = self.query("SELECT entity_id, state, available, last_changed FROM states")
        with self._buf_lock:
            rows += _encoded(self._states_buf.values())
        out: dict[str, dict[str, Any]] = {}
        for entity_id, state, available, last_changed in rows:
            try:
                out[entity_id] = {
                    "state": json.loads(state),
                    "available": bool(available),
                    "last_changed": float(last_changed),
                }
            except (ValueError, TypeError):
                log.warning("store: unreadable saved state of %s skipped", entity_id)
        return out

    def history(
        self, entity_id: str, since: float = 0.0, limit: int = 1000
    ) -> list[tuple[float, dict[str, Any]]]:
        """(ts, state) of one entity, oldest first."""
        self.flush()
        rows = self.query(
            "SELECT ts, state FROM history WHERE entity_id = ? AND ts >= ? ORDER BY ts LIMIT ?",
            (entity_id, since, limit),
        )
        return [(ts, json.loads(state)) for ts, state in rows]

    def prune_history(self, now: float | None = None) -> int:
        """Delete history older than `history_days` (and stale conversation contexts);
        the number of history rows removed."""
        now = time.time() if now is None else now
        cutoff = now - self.history_days * 86400

        def prune(conn: sqlite3.Connection) -> int:
            conn.execute("DELETE FROM context WHERE updated < ?", (now - CONTEXT_RETENTION_S,))
            return conn.execute("DELETE FROM history WHERE ts < ?", (cutoff,)).rowcount

        return self.transact("prune", prune)[1] or 0

    # -- background flushing -----------------------------------------------------------
    def _ensure_flusher(self) -> None:
        if self._flusher is None and not self._stop.is_set():
            with self._lock:
                if self._flusher is None:
                    self._flusher = threading.Thread(
                        target=self._flush_loop, name="store-flush", daemon=True
                    )
                    self._flusher.start()

    def _flush_loop(self) -> None:
        while not self._stop.wait(self.flush_interval_s):
            self.flush()
            if time.monotonic() - self._last_prune >= PRUNE_INTERVAL_S:
                self._last_prune = time.monotonic()
                self.prune_history()
