"""The store's SQLite schema and its migrations (append only; index + 1 is the version)."""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from collections.abc import Callable

log = logging.getLogger(__name__)


class StoreError(RuntimeError):
    """The database cannot be used by this version of hubagent (e.g. a newer schema)."""


# -- schema migrations: append only; the index + 1 is the schema version ---------------
def _m1_initial(conn: sqlite3.Connection) -> None:
    conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB)")
    conn.execute(
        "CREATE TABLE states (entity_id TEXT PRIMARY KEY, state TEXT NOT NULL,"
        " available INTEGER NOT NULL DEFAULT 1, last_changed REAL NOT NULL)"
    )
    conn.execute(
        "CREATE TABLE history (id INTEGER PRIMARY KEY, entity_id TEXT NOT NULL,"
        " state TEXT NOT NULL, ts REAL NOT NULL)"
    )
    conn.execute("CREATE INDEX history_ts ON history(ts)")
    conn.execute(
        "CREATE TABLE audit (id INTEGER PRIMARY KEY, ts REAL NOT NULL, requester TEXT,"
        " channel TEXT, text BLOB, understood BLOB, decision TEXT NOT NULL, reason TEXT)"
    )


def _m2_context_outbox(conn: sqlite3.Connection) -> None:
    conn.execute(
        "CREATE TABLE context (conversation_id TEXT PRIMARY KEY, data BLOB NOT NULL,"
        " updated REAL NOT NULL)"
    )
    conn.execute(
        "CREATE TABLE outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,"
        " topic TEXT NOT NULL, payload TEXT NOT NULL, qos INTEGER NOT NULL,"
        " retain INTEGER NOT NULL, created REAL NOT NULL, expires REAL NOT NULL,"
        " status TEXT NOT NULL DEFAULT 'pending', done_at REAL)"
    )
    conn.execute("CREATE INDEX outbox_status ON outbox(status, seq)")


def _m3_indexes(conn: sqlite3.Connection) -> None:
    conn.execute("CREATE INDEX history_entity_ts ON history(entity_id, ts)")
    conn.execute("CREATE INDEX audit_ts ON audit(ts)")


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [
    _m1_initial,
    _m2_context_outbox,
    _m3_indexes,
]
SCHEMA_VERSION = len(MIGRATIONS)


def migrate(conn: sqlite3.Connection, target: int = SCHEMA_VERSION) -> int:
    """Apply the missing migrations up to `target`, each in its own transaction."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"database schema v{version} is newer than this hubagent (v{SCHEMA_VERSION})"
        )
    for number in range(version + 1, target + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            MIGRATIONS[number - 1](conn)
            conn.execute(f"PRAGMA user_version = {number}")
            conn.execute("COMMIT")
        except BaseException:
            rollback(conn)
            raise
        log.info("store schema migrated to v%d", number)
    return max(version, target)


def rollback(conn: sqlite3.Connection) -> None:
    # SQLite may already have rolled back (SQLITE_FULL does), so ROLLBACK can itself fail.
    if conn.in_transaction:
        with contextlib.suppress(sqlite3.DatabaseError):
            conn.execute("ROLLBACK")
