"""Tables of the voice assistant: timers and list items, in the hub's SQLite file.

They live beside the store's own schema (not in its migrations), created with
`CREATE TABLE IF NOT EXISTS` on first use, so the assistant can be added to an existing
store without a schema version bump or an edit to `store/db.py`. What people said (timer
names and commands, list items) is sealed like the audit log: encrypted at rest when the
store has a key. Every write goes through `Store.transact`, which turns a full disk into
degraded mode instead of an exception.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from hubagent.store.crypto import StoreKeyError
from hubagent.store.db import Store

log = logging.getLogger(__name__)

_TABLES = (
    "CREATE TABLE IF NOT EXISTS assist_timers (id TEXT PRIMARY KEY, data BLOB NOT NULL)",
    "CREATE TABLE IF NOT EXISTS assist_list_items ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT, list TEXT NOT NULL, item BLOB NOT NULL,"
    " done INTEGER NOT NULL DEFAULT 0, created REAL NOT NULL)",
)


def ensure_tables(store: Store) -> bool:
    """Create the assistant's tables when missing; False when the store cannot write."""

    def create(conn: sqlite3.Connection) -> None:
        for sql in _TABLES:
            conn.execute(sql)

    ok, _ = store.transact("assist tables", create)
    return ok


def _unseal(store: Store, stored: Any, aad: str) -> Any:
    """A sealed value, or None (logged) when it cannot be read (wrong key, damaged row)."""
    try:
        return store._unseal(stored, aad)  # noqa: SLF001 - the store's own sealing, one package
    except (StoreKeyError, ValueError) as exc:
        log.warning("assistant row %s not readable, skipped: %s", aad, exc)
        return None


class TimerTable:
    """Running and paused timers, one sealed JSON row each; finished ones are deleted."""

    def __init__(self, store: Store) -> None:
        self.store = store
        ensure_tables(store)

    def save(self, timer_id: str, data: dict[str, Any]) -> None:
        sealed = self.store._seal(data, f"timer:{timer_id}")  # noqa: SLF001
        self.store.transact(
            "timer",
            lambda c: c.execute(
                "INSERT OR REPLACE INTO assist_timers (id, data) VALUES (?, ?)", (timer_id, sealed)
            ),
        )

    def delete(self, timer_id: str) -> None:
        self.store.transact(
            "timer", lambda c: c.execute("DELETE FROM assist_timers WHERE id = ?", (timer_id,))
        )

    def load(self) -> list[dict[str, Any]]:
        rows = self.store.query("SELECT id, data FROM assist_timers")
        found = [_unseal(self.store, data, f"timer:{timer_id}") for timer_id, data in rows]
        return [d for d in found if isinstance(d, dict)]


@dataclass(frozen=True)
class ListItem:
    id: int
    list: str
    item: str
    done: bool


class ListTable:
    """Items of named lists (the shopping list is one of them), in insertion order."""

    def __init__(self, store: Store) -> None:
        self.store = store
        ensure_tables(store)

    def add(self, list_name: str, item: str) -> bool:
        sealed = self.store._seal(item, f"list:{list_name}")  # noqa: SLF001
        ok, _ = self.store.transact(
            "list",
            lambda c: c.execute(
                "INSERT INTO assist_list_items (list, item, done, created) VALUES (?, ?, 0, ?)",
                (list_name, sealed, time.time()),
            ),
        )
        return ok

    def items(self, list_name: str, include_done: bool = False) -> list[ListItem]:
        rows = self.store.query(
            "SELECT id, item, done FROM assist_list_items WHERE list = ? ORDER BY id",
            (list_name,),
        )
        out = []
        for row_id, sealed, done in rows:
            item = _unseal(self.store, sealed, f"list:{list_name}")
            if isinstance(item, str) and (include_done or not done):
                out.append(ListItem(row_id, list_name, item, bool(done)))
        return out

    def complete(self, list_name: str, item: str) -> int:
        """Mark the open items equal to `item` (case-insensitive) done; how many."""
        ids = [i.id for i in self.items(list_name) if _same(i.item, item)]
        return self._change("UPDATE assist_list_items SET done = 1 WHERE id = ?", ids)

    def remove(self, list_name: str, item: str) -> int:
        ids = [i.id for i in self.items(list_name, True) if _same(i.item, item)]
        return self._change("DELETE FROM assist_list_items WHERE id = ?", ids)

    def _change(self, sql: str, ids: list[int]) -> int:
        if not ids:
            return 0
        ok, _ = self.store.transact(
            "list", lambda c: c.executemany(sql, [(row_id,) for row_id in ids])
        )
        return len(ids) if ok else 0


def _same(a: str, b: str) -> bool:
    return a.strip().casefold() == b.strip().casefold()
