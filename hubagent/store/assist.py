"""Tables of the voice assistant: timers and list items, in the hub's SQLite file.

They live beside the store's own schema (not in its migrations), created with
`CREATE TABLE IF NOT EXISTS` on first use, so the assistant can be added to an existing
store without a schema version bump. Every write goes through `Store.transact`, which turns a
full disk into degraded mode instead of an exception.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from hubagent.store.db import Store

_TABLES = (
    "CREATE TABLE IF NOT EXISTS assist_timers (id TEXT PRIMARY KEY, data TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS assist_list_items ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT, list TEXT NOT NULL, item TEXT NOT NULL,"
    " done INTEGER NOT NULL DEFAULT 0, created REAL NOT NULL)",
)


def ensure_tables(store: Store) -> bool:
    """Create the assistant's tables when missing; False when the store cannot write."""

    def create(conn: sqlite3.Connection) -> None:
        for sql in _TABLES:
            conn.execute(sql)

    ok, _ = store.transact("assist tables", create)
    return ok


class TimerTable:
    """Running and paused timers as JSON rows; finished and cancelled ones are deleted."""

    def __init__(self, store: Store) -> None:
        self.store = store
        ensure_tables(store)

    def save(self, timer_id: str, data: dict[str, Any]) -> None:
        text = json.dumps(data, ensure_ascii=False)
        self.store.transact(
            "timer",
            lambda c: c.execute(
                "INSERT OR REPLACE INTO assist_timers (id, data) VALUES (?, ?)", (timer_id, text)
            ),
        )

    def delete(self, timer_id: str) -> None:
        self.store.transact(
            "timer", lambda c: c.execute("DELETE FROM assist_timers WHERE id = ?", (timer_id,))
        )

    def load(self) -> list[dict[str, Any]]:
        out = []
        for (text,) in self.store.query("SELECT data FROM assist_timers"):
            try:
                out.append(json.loads(text))
            except ValueError:
                continue  # a row we cannot read is not worth stopping the hub for
        return out


@dataclass(frozen=True)
class ListItem:
    list: str
    item: str
    done: bool


class ListTable:
    """Items of named lists (the shopping list is one of them), in insertion order."""

    def __init__(self, store: Store) -> None:
        self.store = store
        ensure_tables(store)

    def add(self, list_name: str, item: str) -> bool:
        ok, _ = self.store.transact(
            "list",
            lambda c: c.execute(
                "INSERT INTO assist_list_items (list, item, done, created) VALUES (?, ?, 0, ?)",
                (list_name, item, time.time()),
            ),
        )
        return ok

    def items(self, list_name: str, include_done: bool = False) -> list[ListItem]:
        rows = self.store.query(
            "SELECT list, item, done FROM assist_list_items WHERE list = ? ORDER BY id",
            (list_name,),
        )
        return [ListItem(r[0], r[1], bool(r[2])) for r in rows if include_done or not r[2]]

    def complete(self, list_name: str, item: str) -> int:
        """Mark the open items equal to `item` (case-insensitive) done; how many."""
        return self._change(
            "UPDATE assist_list_items SET done = 1"
            " WHERE list = ? AND lower(item) = lower(?) AND done = 0",
            list_name,
            item,
        )

    def remove(self, list_name: str, item: str) -> int:
        return self._change(
            "DELETE FROM assist_list_items WHERE list = ? AND lower(item) = lower(?)",
            list_name,
            item,
        )

    def _change(self, sql: str, list_name: str, item: str) -> int:
        ok, count = self.store.transact(
            "list", lambda c: c.execute(sql, (list_name, item.strip())).rowcount
        )
        return int(count or 0) if ok else 0
