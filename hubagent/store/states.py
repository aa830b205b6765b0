"""Last known states and history for `Store`: the write-behind buffer, its flusher, pruning.

State writes are buffered (latest value per entity wins) and written by a background
thread every `flush_interval_s`; history rows are buffered too and written with them.
Bounds, because devices decide what arrives (a sensor on `#` stores every message): one
state larger than `max_state_bytes` is stored as a stub, and each entity's history keeps at
most `history_max_rows` rows and `history_max_bytes` bytes (oldest go first). With a store
key, states and history are sealed like the audit log: a sensor that reads request texts
must not put them on disk in clear. `StatesMixin` is mixed into `Store`, which provides the
connection, the cipher, `transact` and `query`.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from hubagent.store.crypto import Cipher, StoreKeyError

log = logging.getLogger(__name__)
T = TypeVar("T")

HISTORY_MEMORY_CAP = 10_000  # history rows kept in memory while the disk refuses writes
FLUSH_BATCH = 5_000  # buffered history rows that trigger an immediate flush
PRUNE_INTERVAL_S = 3600.0
CONTEXT_RETENTION_S = 86400.0  # a conversation idle for a day starts fresh
TRIM_TO = 0.9  # an entity over a history bound is trimmed to 90 %: one trim per 10 % growth
_STUB_TEXT = 255  # longest text value a stub keeps (Home Assistant's limit for a state)

_UPSERT_STATE = (
    "INSERT INTO states(entity_id, state, available, last_changed) VALUES (?,?,?,?)"
    " ON CONFLICT(entity_id) DO UPDATE SET state=excluded.state,"
    " available=excluded.available, last_changed=excluded.last_changed"
)


# One encoder for every row: json.dumps with options builds a new encoder per call.
_ENCODER = json.JSONEncoder(default=str, separators=(",", ":"), ensure_ascii=False)


def _dumps(value: Any) -> str:
    return _ENCODER.encode(value)


class StatesMixin:
    """Saved states and history of `Store` (see the module docstring)."""

    # Set up by Store.__init__.
    history_days: float
    history_max_rows: int
    history_max_bytes: int
    max_state_bytes: int
    flush_interval_s: float
    degraded: bool
    _cipher: Cipher | None
    _history_size: dict[str, list[int]]  # entity -> [rows, bytes] on disk, when known
    _oversize_logged: set[str]
    _lock: threading.RLock
    _buf_lock: threading.Lock
    _states_buf: dict[str, tuple[str, dict[str, Any], int, float]]
    _history_buf: list[tuple[str, dict[str, Any], float]]
    _last_prune: float
    _stop: threading.Event
    _flusher: threading.Thread | None

    if TYPE_CHECKING:  # provided by Store

        def _write_pending_audit(self) -> None: ...

        def transact(
            self, kind: str, fn: Callable[[sqlite3.Connection], T]
        ) -> tuple[bool, T | None]: ...

        def query(self, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]: ...

    # -- encoding: size cap and sealing --------------------------------------------------
    def _encode(self, entity_id: str, state: dict[str, Any], column: str) -> str | bytes:
        """A state as stored: JSON text, a stub when too large, sealed when there is a key."""
        text = _dumps(state)
        if len(text) > self.max_state_bytes // 4 and len(text.encode()) > self.max_state_bytes:
            text = _dumps(self._stub(entity_id, state, len(text.encode())))
        if self._cipher is None:
            return text
        return self._cipher.encrypt(text, f"{column}:{entity_id}")

    def _stub(self, entity_id: str, state: dict[str, Any], size: int) -> dict[str, Any]:
        """What is kept of an oversized state: its short scalar values and a marker."""
        if entity_id not in self._oversize_logged and len(self._oversize_logged) < 4096:
            self._oversize_logged.add(entity_id)
            log.warning(
                "store: %s sent a state of %d bytes (limit %d, store.max_state_bytes);"
                " its short values are kept, the rest is not stored",
                entity_id,
                size,
                self.max_state_bytes,
            )
        kept = {
            k: v
            for k, v in state.items()
            if isinstance(v, bool | int | float | type(None))
            or (isinstance(v, str) and len(v) <= _STUB_TEXT)
        }
        stub = {**dict(list(kept.items())[:32]), "oversize_bytes": size}
        return stub if len(_dumps(stub)) <= self.max_state_bytes else {"oversize_bytes": size}

    def _decode(self, entity_id: str, stored: str | bytes, column: str) -> Any:
        if isinstance(stored, bytes):
            if self._cipher is None:
                raise StoreKeyError("sealed state but no store key")
            stored = self._cipher.decrypt(stored, f"{column}:{entity_id}")
        return json.loads(stored)

    def _encoded(
        self, rows: Iterable[tuple[str, dict[str, Any], int, float]]
    ) -> list[tuple[str, str | bytes, int, float]]:
        """State rows as the `states` table stores them."""
        return [(e, self._encode(e, s, "states.state"), a, t) for e, s, a, t in rows]

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
        data = self._encoded(rows)
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
        """Write the buffered states and history (and audit entries held while the disk
        refused them) now; False when the disk refused them."""
        self._write_pending_audit()
        with self._buf_lock:
            states, self._states_buf = self._states_buf, {}
            history, self._history_buf = self._history_buf, []
        if not states and not history:
            return True
        state_rows = self._encoded(states.values())
        history_rows = [(e, self._encode(e, s, "history.state"), t) for e, s, t in history]

        def write(conn: sqlite3.Connection) -> None:
            conn.executemany(_UPSERT_STATE, state_rows)
            conn.executemany(
                "INSERT INTO history(entity_id, state, ts) VALUES (?,?,?)", history_rows
            )
            self._bound_history(conn, history_rows)

        ok, _ = self.transact("flush", write)
        if not ok:  # keep them for the next try; newer values that arrived meanwhile win
            with self._lock:
                self._history_size.clear()  # the rolled-back rows were counted
            with self._buf_lock:
                self._states_buf = {**states, **self._states_buf}
                self._history_buf = (history + self._history_buf)[-HISTORY_MEMORY_CAP:]
        return ok

    def _bound_history(
        self, conn: sqlite3.Connection, rows: list[tuple[str, str | bytes, float]]
    ) -> None:
        """Keep each written entity within history_max_rows / history_max_bytes."""
        added: dict[str, list[int]] = {}
        for entity_id, stored, _ts in rows:
            size = added.setdefault(entity_id, [0, 0])
            size[0] += 1
            size[1] += len(stored)
        for entity_id, (count, nbytes) in added.items():
            known = self._history_size.get(entity_id)
            if known is None:  # first write since start (or a prune): count what is there
                count, nbytes = conn.execute(
                    "SELECT count(*), coalesce(sum(length(state)), 0) FROM history"
                    " WHERE entity_id = ?",
                    (entity_id,),
                ).fetchone()
                known = self._history_size[entity_id] = [count, nbytes]
            else:
                known[0] += count
                known[1] += nbytes
            if known[0] > self.history_max_rows or known[1] > self.history_max_bytes:
                self._trim(conn, entity_id, known)

    def _trim(self, conn: sqlite3.Connection, entity_id: str, known: list[int]) -> None:
        """Delete the entity's oldest rows until it is at TRIM_TO of both bounds."""
        rows_goal = int(self.history_max_rows * TRIM_TO)
        bytes_goal = int(self.history_max_bytes * TRIM_TO)
        count, nbytes, last = known[0], known[1], None
        cursor = conn.execute(
            "SELECT id, length(state) FROM history WHERE entity_id = ? ORDER BY id",
            (entity_id,),
        )
        for row_id, length in cursor:
            if count <= rows_goal and nbytes <= bytes_goal:
                break
            count, nbytes, last = count - 1, nbytes - (length or 0), row_id
        cursor.close()
        if last is not None:
            conn.execute("DELETE FROM history WHERE entity_id = ? AND id <= ?", (entity_id, last))
        known[0], known[1] = count, nbytes

    def load_states(self) -> dict[str, dict[str, Any]]:
        """entity_id -> {"state": {...}, "available": bool, "last_changed": float}."""
        rows = self.query("SELECT entity_id, state, available, last_changed FROM states")
        with self._buf_lock:
            buffered = list(self._states_buf.values())
        rows += self._encoded(buffered)
        out: dict[str, dict[str, Any]] = {}
        for entity_id, state, available, last_changed in rows:
            try:
                out[entity_id] = {
                    "state": self._decode(entity_id, state, "states.state"),
                    "available": bool(available),
                    "last_changed": float(last_changed),
                }
            except (ValueError, TypeError):  # StoreKeyError is a ValueError
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
        out = []
        for ts, state in rows:
            try:
                out.append((ts, self._decode(entity_id, state, "history.state")))
            except (ValueError, TypeError):
                log.warning("store: unreadable history row of %s skipped", entity_id)
        return out

    def prune_history(self, now: float | None = None) -> int:
        """Delete history older than `history_days` (and stale conversation contexts);
        the number of history rows removed."""
        now = time.time() if now is None else now
        cutoff = now - self.history_days * 86400

        def prune(conn: sqlite3.Connection) -> int:
            conn.execute("DELETE FROM context WHERE updated < ?", (now - CONTEXT_RETENTION_S,))
            self._history_size.clear()  # counted again at each entity's next write
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
