"""The store's sensitive records: the audit log and conversation context.

Their texts are sealed (encrypted at rest) when a store key is set. The audit log keeps
entries in memory while the disk refuses writes (up to `audit_pending_max`, oldest dropped
and counted beyond) and writes them, in order, as soon as a write succeeds again: at the
next audit or the next flush. Contexts are cached in an LRU.
`SealedRecordsMixin` is mixed into `Store`, which provides the connection, the cipher,
`transact` and `query`.
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
from typing import TYPE_CHECKING, Any, TypeVar

from hubagent.store.crypto import Cipher, StoreKeyError
from hubagent.store.states import _dumps

log = logging.getLogger(__name__)
T = TypeVar("T")

AUDIT_MEMORY_CAP = 10_000  # default of store.audit_pending_max
_INSERT_AUDIT = (
    "INSERT INTO audit(ts, requester, channel, text, understood, decision, reason)"
    " VALUES (?,?,?,?,?,?,?)"
)
CONTEXT_CACHE_CAP = 1_000


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


class SealedRecordsMixin:
    """Audit log and conversation context of `Store` (see the module docstring)."""

    # Set up by Store.__init__.
    path: Path
    _cipher: Cipher | None
    _buf_lock: threading.Lock
    _lock: threading.RLock
    _audit_mem: deque[AuditEntry]
    _context: OrderedDict[str, dict[str, Any]]
    audit_dropped: int

    if TYPE_CHECKING:  # provided by Store

        def _ensure_flusher(self) -> None: ...

        def transact(
            self, kind: str, fn: Callable[[sqlite3.Connection], T]
        ) -> tuple[bool, T | None]: ...

        def query(self, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]: ...

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

    # -- audit -------------------------------------------------------------------------
    def audit(self, entry: AuditEntry) -> None:
        """Record one decision (texts encrypted at rest when a key is set). While the disk
        refuses writes it is held in memory and written later, after those held before."""
        with self._lock:
            if self._audit_mem:
                self._hold(entry)
                self._write_pending_audit()
                return
            ok, _ = self.transact("audit", lambda c: c.execute(_INSERT_AUDIT, self._row(entry)))
            if not ok:
                self._hold(entry)

    @property
    def audit_pending(self) -> int:
        """Audit entries held in memory, waiting for the disk."""
        return len(self._audit_mem)

    def _row(self, entry: AuditEntry) -> tuple[Any, ...]:
        text = self._seal(entry.text, "audit.text")
        data = self._seal(entry.understood, "audit.understood")
        return (entry.ts, entry.requester, entry.channel, text, data, entry.decision, entry.reason)

    def _hold(self, entry: AuditEntry) -> None:
        if len(self._audit_mem) == self._audit_mem.maxlen:
            self.audit_dropped += 1
            if self.audit_dropped == 1 or self.audit_dropped % 1000 == 0:
                log.error(
                    "store: %d audit entries held in memory; the oldest are dropped (%d so far)",
                    len(self._audit_mem),
                    self.audit_dropped,
                )
        self._audit_mem.append(entry)
        self._ensure_flusher()  # retries the write every flush interval

    def _write_pending_audit(self) -> None:
        """Write the held audit entries in one transaction (all or none, in order)."""
        with self._lock:
            if not self._audit_mem:
                return
            held = list(self._audit_mem)
            rows = [self._row(e) for e in held]
            ok, _ = self.transact("audit", lambda c: c.executemany(_INSERT_AUDIT, rows))
            if ok:
                self._audit_mem.clear()
                log.warning("store: %d audit entries held during the outage written", len(held))

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
