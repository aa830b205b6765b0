"""The hub's SQLite store: last known state, history, audit log, conversation context, outbox.

One connection guarded by a lock, because the hub calls in from the MQTT network thread and
from the asyncio loop. WAL mode lets readers and the writer overlap; `synchronous=NORMAL`
in WAL mode fsyncs only at checkpoints, so a commit survives a crash or kill of the process
(it is in the WAL file) and only an OS crash or power cut can lose the last commits, never
corrupt the file — the right trade for thousands of state messages per second on an SD
card. State writes go through a write-behind buffer (latest value per entity wins) flushed
every `flush_interval_s` and on close. A full disk or a read-only file never stops the hub:
writes fail into `degraded` mode, data stays in memory where cheap, and the log says why.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from hubagent.store.crypto import Cipher, StoreKeyError, derive_key, new_salt
from hubagent.store.schema import SCHEMA_VERSION, StoreError, migrate, rollback

log = logging.getLogger(__name__)
T = TypeVar("T")

REMINDER_INTERVAL_S = 60.0
HISTORY_MEMORY_CAP = 10_000  # history rows kept in memory while the disk refuses writes
FLUSH_BATCH = 5_000  # buffered history rows that trigger an immediate flush
AUDIT_MEMORY_CAP = 1_000
CONTEXT_CACHE_CAP = 1_000
PRUNE_INTERVAL_S = 3600.0
CONTEXT_RETENTION_S = 86400.0  # a conversation idle for a day starts fresh


@dataclass
class AuditEntry:
    """One decision of the hub: who asked, over which channel, what was understood, why."""

    requester: str
    channel: str
    text: str
    understood: Any  # JSON-able: actions, intent, per-action decisions
    decision: str  # executed | refused | needs_confirmation | confirmed | partial | ...
    reason: str = ""
    ts: float = field(default_factory=time.time)
    id: int | None = None


def _encoded(
    rows: Iterable[tuple[str, dict[str, Any], int, float]],
) -> list[tuple[str, str, int, float]]:
    """State rows as the `states` table stores them (state as JSON text)."""
    return [(e, _dumps(s), a, t) for e, s, a, t in rows]


def _dumps(value: Any) -> str:
    return json.dumps(value, default=str, separators=(",", ":"), ensure_ascii=False)


class Store:
    """The hub's persistent memory. Thread-safe; every write failure degrades, never raises."""

    def __init__(
        self,
        path: Path | str,
        key: str | None = None,
        history_days: float = 7.0,
        *,
        readonly: bool = False,
        flush_interval_s: float = 0.5,
    ) -> None:
        self.path = Path(path)
        self.history_days = history_days
        self.flush_interval_s = flush_interval_s
        self.degraded = False
        self.degraded_reason = ""
        self.in_memory = False  # True when the file could not be opened at all
        self._lock = threading.RLock()  # the connection
        self._buf_lock = threading.Lock()  # the write-behind buffers (ingest never waits on I/O)
        # Newest state per entity, encoded only when written: at ingest rates most buffered
        # states are replaced before a flush, so encoding each one would be wasted work.
        self._states_buf: dict[str, tuple[str, dict[str, Any], int, float]] = {}
        self._history_buf: list[tuple[str, str, float]] = []
        self._audit_mem: deque[AuditEntry] = deque(maxlen=AUDIT_MEMORY_CAP)
        self._context: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._logged_errors: set[str] = set()
        self._last_reminder = 0.0
        self._last_prune = 0.0
        self._stop = threading.Event()
        self._flusher: threading.Thread | None = None
        self._conn = self._open(readonly)
        try:
            self._cipher = self._setup_key(key)
        except BaseException:
            self._conn.close()
            raise

    # -- opening -------------------------------------------------------------------------
    def _open(self, readonly: bool) -> sqlite3.Connection:
        mode = "ro" if readonly else "rwc"
        try:
            if not readonly:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                f"file:{quote(str(self.path))}?mode={mode}",
                uri=True,
                check_same_thread=False,  # guarded by self._lock instead
                isolation_level=None,  # explicit BEGIN/COMMIT
                timeout=5.0,
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
        except (OSError, sqlite3.DatabaseError) as exc:
            self._fail("open", exc)
            return self._memory_fallback()
        try:
            migrate(conn)
        except StoreError:
            conn.close()
            raise
        except sqlite3.DatabaseError as exc:
            self._fail("migrate", exc)
            if conn.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
                conn.close()  # without the full schema even reads fail: work in memory
                return self._memory_fallback()
        return conn

    def _memory_fallback(self) -> sqlite3.Connection:
        self.in_memory = True
        conn = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
        migrate(conn)
        return conn

    def _setup_key(self, key: str | None) -> Cipher | None:
        check = self._meta("key_check")
        if not key:
            if check is not None:
                raise StoreKeyError(
                    f"{self.path}: this store is encrypted; set HUBAGENT_STORE_KEY"
                    " (store.encryption_key) to open it"
                )
            log.warning(
                "store %s: no encryption key (HUBAGENT_STORE_KEY): audit texts and"
                " conversation context are stored in PLAIN TEXT",
                self.path,
            )
            return None
        salt = self._meta("kdf_salt")
        if salt is None:
            salt = new_salt()
            self._set_meta("kdf_salt", salt)
        cipher = Cipher(derive_key(key, bytes(salt)))
        if check is None:
            self._set_meta("key_check", cipher.key_check())
        elif not cipher.verify(bytes(check)):
            raise StoreKeyError(
                f"{self.path}: wrong store encryption key (HUBAGENT_STORE_KEY does not"
                " match the key this database was encrypted with)"
            )
        return cipher

    def _meta(self, key: str) -> bytes | None:
        rows = self.query("SELECT value FROM meta WHERE key = ?", (key,))
        return rows[0][0] if rows else None

    def _set_meta(self, key: str, value: bytes) -> None:
        sql = "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)"
        self.transact("meta", lambda c: c.execute(sql, (key, value)))

    @property
    def encrypted(self) -> bool:
        """True when sensitive fields are encrypted at rest."""
        return self._cipher is not None

    # -- generic access (also used by the outbox) ---------------------------------------
    def transact(self, kind: str, fn: Callable[[sqlite3.Connection], T]) -> tuple[bool, T | None]:
        """Run `fn` in one write transaction; (False, None) and degraded mode on failure."""
        with self._lock:
            before = self._conn.total_changes
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    result = fn(self._conn)
                    self._conn.execute("COMMIT")
                except BaseException:
                    rollback(self._conn)
                    raise
            except sqlite3.DatabaseError as exc:
                self._fail(kind, exc)
                return False, None
            # Only a write that changed rows proves the disk is back (a no-op "succeeds" on a
            # read-only file too).
            # Writes to the in-memory fallback succeed but persist nothing: still degraded.
            if self.degraded and not self.in_memory and self._conn.total_changes > before:
                self._recovered()
            return True, result

    def query(self, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        """Rows of a read; [] (logged) when the database cannot be read."""
        with self._lock:
            try:
                return self._conn.execute(sql, tuple(params)).fetchall()
            except sqlite3.DatabaseError as exc:
                self._fail("read", exc)
                return []

    def _fail(self, kind: str, exc: BaseException) -> None:
        self.degraded = True
        self.degraded_reason = f"{kind}: {exc}"
        now = time.monotonic()
        if str(exc) not in self._logged_errors:
            self._logged_errors.add(str(exc))
            self._last_reminder = now
            log.error(
                "STORE DEGRADED (%s on %s: %s): the hub keeps running and holds data in"
                " memory; free disk space or fix permissions to persist again",
                kind,
                self.path,
                exc,
            )
        elif now - self._last_reminder >= REMINDER_INTERVAL_S:
            self._last_reminder = now
            log.error("store still degraded (%s): %s", self.path, self.degraded_reason)

    def _recovered(self) -> None:
        log.warning("store %s recovered: writes succeed again", self.path)
        self.degraded = False
        self.degraded_reason = ""
        self._logged_errors.clear()

    # -- sensitive values ------------------------------------------------------------------
    def _seal(self, value: Any, aad: str) -> str | bytes:
        text = _dumps(value)
        return self._cipher.encrypt(text, aad) if self._cipher else text

    def _unseal(self, stored: str | bytes | None, aad: str) -> Any:
        if stored is None:
            return None
        if isinstance(stored, bytes):
            if self._cipher is None:
                raise StoreKeyError(f"{self.path}: encrypted value but no key")
            stored = self._cipher.decrypt(stored, aad)
        return json.loads(stored)

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
        """Buffer one history row (written with the next flush)."""
        with self._buf_lock:
            self._history_buf.append((entity_id, _dumps(state), time.time() if ts is None else ts))
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
            conn.executemany("INSERT INTO history(entity_id, state, ts) VALUES (?,?,?)", history)

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

    # -- audit -------------------------------------------------------------------------
    def audit(self, entry: AuditEntry) -> None:
        """Record one decision (texts encrypted at rest when a key is set)."""
        text = self._seal(entry.text, "audit.text")
        data = self._seal(entry.understood, "audit.understood")
        row = (entry.ts, entry.requester, entry.channel, text, data, entry.decision, entry.reason)
        sql = (
            "INSERT INTO audit(ts, requester, channel, text, understood, decision, reason)"
            " VALUES (?,?,?,?,?,?,?)"
        )
        ok, _ = self.transact("audit", lambda c: c.execute(sql, row))
        if not ok:
            self._audit_mem.append(entry)

    def audit_entries(self, limit: int = 100) -> list[AuditEntry]:
        """The newest entries first (including those only held in memory)."""
        rows = self.query(
            "SELECT id, ts, requester, channel, text, understood, decision, reason"
            " FROM audit ORDER BY id DESC LIMIT ?",
            (limit,),
        )
        out = sorted(self._audit_mem, key=lambda e: e.ts, reverse=True)
        for rid, ts, requester, channel, text, understood, decision, reason in rows:
            try:
                text, understood = (
                    self._unseal(text, "audit.text"),
                    self._unseal(understood, "audit.understood"),
                )
            except (StoreKeyError, ValueError) as exc:
                log.warning("store: audit entry %s unreadable (%s), skipped", rid, exc)
                continue
            entry = AuditEntry(requester, channel, text, understood, decision, reason or "", ts)
            entry.id = rid
            out.append(entry)
        return out[:limit]

    # -- conversation context -----------------------------------------------------------
    def set_context(self, conversation_id: str, data: dict[str, Any]) -> None:
        """Remember a conversation's context (encrypted at rest when a key is set)."""
        self._remember_context(conversation_id, data)
        row = (conversation_id, self._seal(data, "context.data"), time.time())
        sql = "INSERT OR REPLACE INTO context(conversation_id, data, updated) VALUES (?,?,?)"
        self.transact("context", lambda c: c.execute(sql, row))

    def get_context(self, conversation_id: str) -> dict[str, Any] | None:
        """The conversation's context, or None when unknown."""
        with self._buf_lock:
            if conversation_id in self._context:
                return dict(self._context[conversation_id])
        rows = self.query("SELECT data FROM context WHERE conversation_id = ?", (conversation_id,))
        if not rows:
            return None
        try:
            data = self._unseal(rows[0][0], "context.data")
        except (StoreKeyError, ValueError) as exc:
            log.warning("store: context %s unreadable (%s)", conversation_id, exc)
            return None
        self._remember_context(conversation_id, data)
        return dict(data)

    def _remember_context(self, conversation_id: str, data: dict[str, Any]) -> None:
        with self._buf_lock:
            self._context[conversation_id] = dict(data)
            self._context.move_to_end(conversation_id)
            while len(self._context) > CONTEXT_CACHE_CAP:
                self._context.popitem(last=False)

    # -- background flushing and lifecycle ---------------------------------------------
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

    def close(self) -> None:
        """Flush the buffers and close the database."""
        self._stop.set()
        if self._flusher is not None:
            self._flusher.join(timeout=5)
        self.flush()
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_UPSERT_STATE = (
    "INSERT INTO states(entity_id, state, available, last_changed) VALUES (?,?,?,?)"
    " ON CONFLICT(entity_id) DO UPDATE SET state=excluded.state,"
    " available=excluded.available, last_changed=excluded.last_changed"
)
