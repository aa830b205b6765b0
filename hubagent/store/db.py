"""The hub's SQLite store: last known state, history, audit log, conversation context, outbox.

One connection guarded by a lock, because the hub calls in from the MQTT network thread and
from the asyncio loop. WAL mode lets readers and the writer overlap; `synchronous=NORMAL`
in WAL mode fsyncs only at checkpoints, so a commit survives a crash or kill of the process
(it is in the WAL file) and only an OS crash or power cut can lose the last commits, never
corrupt the file — the right trade for thousands of state messages per second on an SD
card. State writes go through a write-behind buffer (latest value per entity wins) flushed
every `flush_interval_s` and on close. A full disk or a read-only file never stops the hub:
writes fail into `degraded` mode, data stays in memory where cheap, and the log says why.

This module holds the connection, key setup, degraded mode and lifecycle; `Store` mixes in
the states/history code (`hubagent.store.states`) and the audit log and conversation
context (`hubagent.store.sealed`).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from hubagent.store.crypto import Cipher, StoreKeyError, derive_key, new_salt
from hubagent.store.schema import SCHEMA_VERSION, StoreError, migrate, rollback
from hubagent.store.sealed import AUDIT_MEMORY_CAP, AuditEntry, SealedRecordsMixin
from hubagent.store.states import StatesMixin

# AuditEntry is re-exported: callers import it from here.
__all__ = ["REMINDER_INTERVAL_S", "AuditEntry", "Store"]

log = logging.getLogger(__name__)
T = TypeVar("T")

REMINDER_INTERVAL_S = 60.0  # read at call time: tests patch it here


class Store(StatesMixin, SealedRecordsMixin):
    """The hub's persistent memory. Thread-safe; every write failure degrades, never raises."""

    def __init__(
        self,
        path: Path | str,
        key: str | None = None,
        history_days: float = 7.0,
        *,
        readonly: bool = False,
        flush_interval_s: float = 0.5,
        history_max_rows: int = 20_000,
        history_max_bytes: int = 4 * 1024 * 1024,
        max_state_bytes: int = 16 * 1024,
        audit_pending_max: int = AUDIT_MEMORY_CAP,
    ) -> None:
        self.path = Path(path)
        self.history_days = history_days
        self.history_max_rows = max(1, history_max_rows)
        self.history_max_bytes = max(1, history_max_bytes)
        self.max_state_bytes = max(256, max_state_bytes)
        self.flush_interval_s = flush_interval_s
        self.degraded = False
        self.degraded_reason = ""
        self.in_memory = False  # True when the file could not be opened at all
        self._lock = threading.RLock()  # the connection
        self._buf_lock = threading.Lock()  # the write-behind buffers (ingest never waits on I/O)
        # Newest state per entity, encoded only when written: at ingest rates most buffered
        # states are replaced before a flush, so encoding each one would be wasted work.
        self._states_buf: dict[str, tuple[str, dict[str, Any], int, float]] = {}
        self._history_buf: list[tuple[str, dict[str, Any], float]] = []
        self._audit_mem: deque[AuditEntry] = deque(maxlen=max(1, audit_pending_max))
        self.audit_dropped = 0
        self._history_size: dict[str, list[int]] = {}
        self._oversize_logged: set[str] = set()
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
                self._private_files()
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

    def _private_files(self) -> None:
        """The database 0600 before SQLite opens it (SQLite gives its -wal and -shm files
        the database file's mode; existing files are tightened) and a new folder 0700. An
        existing folder is the admin's choice (the working directory, a volume): a loose
        one is only mentioned."""
        folder = self.path.parent
        if not folder.exists():
            folder.mkdir(parents=True, mode=0o700)
            os.chmod(folder, 0o700)  # mkdir's mode is filtered by the umask
        elif folder.stat().st_mode & 0o007:
            log.info(
                "store folder %s is open to other users (mode %o); the store files are 0600",
                folder,
                stat.S_IMODE(folder.stat().st_mode),
            )
        if not self.path.exists():
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))
        for suffix in ("", "-wal", "-shm"):
            file = self.path.with_name(self.path.name + suffix)
            if file.exists() and file.stat().st_mode & 0o077:
                os.chmod(file, 0o600)

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
                "store %s: no encryption key (HUBAGENT_STORE_KEY): audit texts,"
                " conversation context, states and history are stored in PLAIN TEXT",
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

    # -- lifecycle -------------------------------------------------------------------------
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
