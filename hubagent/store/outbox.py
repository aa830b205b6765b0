"""The offline outbox: device commands persisted before they are published.

`send` commits the command to SQLite first, then publishes when connected; a command that
cannot go out now waits, in order, for the next `flush` (e.g. on reconnect). A command is
marked sent only after `publish` returned True, an id is never sent twice, and a command
older than its TTL is dropped and logged, never sent late (a "open the garage" from ten
minutes ago is worse than none). If the process dies between publish and the "sent" mark,
that one command is published again on restart (at-least-once at that edge; MQTT QoS 1
has the same contract). When the store is degraded the outbox keeps commands in memory.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from hubagent.store.db import Store
from hubagent.types import MqttMessage

log = logging.getLogger(__name__)

DONE_RETENTION_S = 86400.0  # sent/expired ids are remembered this long to ignore duplicates
PRUNE_INTERVAL_S = 3600.0


@dataclass
class FlushReport:
    """What one flush did: ids published, ids dropped as expired, and how many still wait."""

    sent: list[str] = field(default_factory=list)
    expired: list[str] = field(default_factory=list)
    pending: int = 0


@dataclass
class _Item:
    id: str
    msg: MqttMessage
    created: float
    expires: float
    seq: int = 0


class Outbox:
    """Persistent, ordered, exactly-once-per-id queue in front of an MQTT publish function."""

    def __init__(
        self,
        store: Store,
        publish: Callable[[MqttMessage], bool],
        ttl_s: float = 300.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.publish = publish
        self.ttl_s = ttl_s
        self.clock = clock  # wall clock: expiry must hold across restarts
        self.connected = False
        self._lock = threading.RLock()  # one flush at a time: never two publishes of an id
        self._memory: list[_Item] = []  # only while the store refuses writes
        self._done: set[str] = set()  # ids sent or expired whose mark may not be on disk
        self._last_prune = 0.0

    def send(
        self, msg: MqttMessage, command_id: str | None = None, ttl_s: float | None = None
    ) -> str:
        """Persist `msg`, publish it now when connected; the command id (duplicates ignored)."""
        cid = command_id or uuid.uuid4().hex
        now = self.clock()
        item = _Item(cid, msg, now, now + (self.ttl_s if ttl_s is None else ttl_s))
        with self._lock:
            if cid in self._done or any(i.id == cid for i in self._memory):
                log.info("outbox: duplicate command %s ignored", cid)
                return cid
            ok, added = self.store.transact("outbox", lambda c: _insert(c, item))
            if not ok:
                log.warning("outbox: store unavailable, command %s kept in memory", cid)
                self._memory.append(item)
            elif not added:
                log.info("outbox: duplicate command %s ignored", cid)
                return cid
            if self.connected:
                self.flush(now)
        return cid

    def flush(self, now: float | None = None) -> FlushReport:
        """Publish every pending command in FIFO order; drop and report the expired ones."""
        report = FlushReport()
        with self._lock:
            now = self.clock() if now is None else now
            blocked = False  # after a failed publish, later commands wait (order) but expire
            for item in self._pending():
                if item.id in self._done:
                    self._forget(item)
                    continue
                if item.expires <= now:
                    log.warning(
                        "outbox: dropped expired command %s (%s <- %r, %.0f s old)",
                        item.id,
                        item.msg.topic,
                        item.msg.payload[:200],
                        now - item.created,
                    )
                    self._mark(item, "expired", now)
                    report.expired.append(item.id)
                    continue
                if blocked or not self._publish(item):
                    blocked = True  # disconnected: keep the order, later commands wait too
                    continue
                self._mark(item, "sent", now)
                report.sent.append(item.id)
            report.pending = self.pending_count()
            self._prune(now)
        return report

    def set_connected(self, connected: bool) -> FlushReport | None:
        """Connection hook of the MQTT client: flushes on (re)connect."""
        self.connected = connected
        return self.flush() if connected else None

    def pending_count(self) -> int:
        """Commands waiting to be published."""
        with self._lock:
            rows = self.store.query("SELECT id FROM outbox WHERE status = 'pending'")
            ids = {r[0] for r in rows} | {i.id for i in self._memory}
            return len(ids - self._done)

    # -- internals -----------------------------------------------------------------------
    def _publish(self, item: _Item) -> bool:
        try:
            return bool(self.publish(item.msg))
        except Exception:  # a broken client must not lose the queue
            log.exception("outbox: publish of %s failed", item.id)
            return False

    def _pending(self) -> list[_Item]:
        rows = self.store.query(
            "SELECT seq, id, topic, payload, qos, retain, created, expires FROM outbox"
            " WHERE status = 'pending' ORDER BY seq"
        )
        items = [
            _Item(cid, MqttMessage(topic, payload, int(qos), bool(retain)), created, expires, seq)
            for seq, cid, topic, payload, qos, retain, created, expires in rows
        ]
        known = {i.id for i in items}
        items += [i for i in self._memory if i.id not in known]
        return [i for i in items if i.id not in self._done]

    def _mark(self, item: _Item, status: str, now: float) -> None:
        # Remember in memory first: if the disk refuses the mark, the id is still never resent.
        self._done.add(item.id)
        self._forget(item)
        sql = "UPDATE outbox SET status = ?, done_at = ? WHERE id = ?"
        ok, _ = self.store.transact("outbox", lambda c: c.execute(sql, (status, now, item.id)))
        if ok and item.seq:
            self._done.discard(item.id)

    def _forget(self, item: _Item) -> None:
        self._memory = [i for i in self._memory if i.id != item.id]

    def _prune(self, now: float) -> None:
        if now - self._last_prune < PRUNE_INTERVAL_S:
            return
        self._last_prune = now
        sql = "DELETE FROM outbox WHERE status != 'pending' AND done_at < ?"
        self.store.transact("outbox", lambda c: c.execute(sql, (now - DONE_RETENTION_S,)))


def _insert(conn: sqlite3.Connection, item: _Item) -> bool:
    cur = conn.execute(
        "INSERT OR IGNORE INTO outbox(id, topic, payload, qos, retain, created, expires)"
        " VALUES (?,?,?,?,?,?,?)",
        (
            item.id,
            item.msg.topic,
            item.msg.payload,
            item.msg.qos,
            int(item.msg.retain),
            item.created,
            item.expires,
        ),
    )
    return cur.rowcount == 1
