"""The offline outbox: device commands persisted before they are published.

`send` commits the command to SQLite first, then publishes when connected; what cannot go
out now waits, in order, for the next `flush` (`act.delivery.Courier` flushes on `kick()`,
e.g. when a device is back, and a few times a second). A command is marked sent only after
`publish` succeeded, an id is never sent twice, and a command older than its TTL is dropped
and reported (`on_expired`), never sent late. If the process dies between publish and the
"sent" mark, that command is published again on restart (at-least-once at that edge, as
MQTT QoS 1). When the store is degraded the outbox keeps commands in memory.

Device commands carry a `Target`; a `Gate` (see `act.delivery`) says when the device can
receive, and order is kept per device, so one absent device holds up no other. `publish`
may answer NO_SUBSCRIBERS (MQTT 5 PUBACK 0x10: not delivered, tried again after RETRY_S)
or UNCERTAIN (no PUBACK). Published commands stay in flight until the state echo confirms
them or `echo_s` passes; those in flight when the connection drops are settled by the gate
once the device is back: done, resent when a repeat is harmless, or reported. Call `send`
and `flush` off the MQTT network thread: they wait for PUBACKs.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hubagent.store.db import Store
from hubagent.types import MqttMessage

log = logging.getLogger(__name__)

DONE_RETENTION_S = 86400.0  # sent/expired ids are remembered this long to ignore duplicates
PRUNE_INTERVAL_S = 3600.0
NO_SUBSCRIBERS = "no_subscribers"  # publish result: the broker had nobody to deliver to
UNCERTAIN = "uncertain"  # publish result: sent, but no PUBACK came back
RETRY_S = 1.0  # a command the broker had no subscriber for is tried again this much later
ECHO_S = 5.0  # a published command not echoed within this is taken as delivered

Publish = Callable[[MqttMessage], "bool | str"]


@dataclass(frozen=True)
class Target:
    """Delivery facts of a device command (see `act.delivery.target_for`)."""

    entity: str
    verb: str = ""
    expect: tuple[tuple[str, Any], ...] = ()  # state keys the device reports once applied
    resend_safe: bool = False
    requester: str = ""
    channel: str = ""


class Gate:
    """When a device can receive, and what a command in doubt comes to. This default (no
    device knowledge) lets everything go and takes every publish as delivered."""

    def ready(self, target: Target) -> bool:
        return True

    def can_judge(self, target: Target) -> bool:
        """Whether the device is back and has had time to report its state, so its state
        can tell whether a command in doubt arrived."""
        return True

    def confirmed(self, target: Target) -> bool:
        """Whether the device's current state shows the command applied."""
        return True


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
    target: Target | None = None

    @property
    def key(self) -> str:
        """Commands with the same key keep their order: one device, or one topic."""
        return self.target.entity if self.target else self.msg.topic


@dataclass
class _Flight:
    item: _Item
    published: float
    uncertain: bool = False  # the connection dropped before the device confirmed it

    @property
    def target(self) -> Target:
        assert self.item.target is not None  # only device commands fly
        return self.item.target


class Outbox:
    """Persistent, ordered, exactly-once-per-id queue in front of an MQTT publish function."""

    def __init__(
        self,
        store: Store,
        publish: Publish,
        ttl_s: float = 300.0,
        clock: Callable[[], float] = time.time,
        *,
        gate: Gate | None = None,
        on_expired: Callable[[str, MqttMessage, Target | None], None] | None = None,
        echo_s: float = ECHO_S,
    ) -> None:
        self.store = store
        self.publish = publish
        self.ttl_s = ttl_s
        self.clock = clock  # wall clock: expiry must hold across restarts
        self.gate = gate or Gate()
        self.on_expired = on_expired
        self.echo_s = echo_s
        self.connected = False
        self._lock = threading.RLock()  # one flush at a time: never two publishes of an id
        # Flights have their own lock, never held while publishing: the echo arrives on the
        # MQTT network thread, which must not wait for a flush that waits for its PUBACK.
        self._flight_lock = threading.Lock()
        self._flights: dict[str, _Flight] = {}
        self._targets: dict[str, Target] = {}  # pending id -> its target (this process)
        self._retry_at: dict[str, float] = {}
        self._memory: list[_Item] = []  # only while the store refuses writes
        self._done: set[str] = set()  # ids sent or expired whose mark may not be on disk
        self._last_prune = 0.0
        self.wake: Callable[[], None] = lambda: None  # set by the courier (act.delivery)

    def send(
        self,
        msg: MqttMessage,
        command_id: str | None = None,
        ttl_s: float | None = None,
        target: Target | None = None,
    ) -> str:
        """Persist `msg`, publish it now when connected; the command id (duplicates ignored)."""
        cid = command_id or uuid.uuid4().hex
        now = self.clock()
        item = _Item(cid, msg, now, now + (self.ttl_s if ttl_s is None else ttl_s), 0, target)
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
            if target is not None:
                self._targets[cid] = target
            if self.connected:
                self.flush(now)
        return cid

    def is_pending(self, command_id: str) -> bool:
        """Whether the command still waits to be published."""
        with self._lock:
            return any(i.id == command_id for i in self._pending())

    def flush(self, now: float | None = None) -> FlushReport:
        """Publish every pending command that may go, in order per device; settle commands
        in doubt; drop and report the expired ones."""
        report = FlushReport()
        with self._lock:
            now = self.clock() if now is None else now
            held = self._settle_flights() if self.connected else set()
            blocked = False  # after a failed publish, later commands wait (order) but expire
            for item in self._pending():
                if item.id in self._done:
                    self._forget(item)
                    continue
                if item.expires <= now:
                    self._expire(item, now)
                    report.expired.append(item.id)
                    continue
                if blocked or item.key in held:
                    continue
                if self._retry_at.get(item.id, 0.0) > now or (
                    item.target is not None and not self.gate.ready(item.target)
                ):
                    held.add(item.key)  # its device is not back: its later commands wait
                    continue
                tracked = item.target is not None and bool(item.target.expect)
                if tracked:  # before publishing: the echo may come before the PUBACK does
                    with self._flight_lock:
                        self._flights[item.id] = _Flight(item, time.monotonic())
                result = self._publish(item)
                if tracked and (result is False or result == NO_SUBSCRIBERS):
                    self._land(item)
                if result == NO_SUBSCRIBERS and item.target is not None:
                    log.info("outbox: nobody subscribed to %s yet; retrying", item.msg.topic)
                    self._retry_at[item.id] = now + RETRY_S
                    held.add(item.key)
                    continue
                if not result:
                    blocked = True  # disconnected: keep the order, later commands wait too
                    continue
                self._mark(item, "sent", now)
                report.sent.append(item.id)
                if item.target is not None and result == UNCERTAIN:  # no PUBACK: in doubt
                    with self._flight_lock:
                        flight = self._flights.setdefault(item.id, _Flight(item, 0.0))
                        flight.uncertain = True
            report.pending = self.pending_count()
            self._prune(now)
        return report

    def set_connected(self, connected: bool) -> FlushReport | None:
        """Connection hook of the MQTT client: flushes on (re)connect; on a drop, commands
        not yet confirmed by their device become "in doubt"."""
        self.connected = connected
        if not connected:
            self.doubt(None)
            return None
        return self.flush()

    def doubt(self, entity_id: str | None) -> None:
        """The device (None: every device) lost its connection: commands it has not
        confirmed yet may be lost and are settled when it is back."""
        with self._flight_lock:
            for flight in self._flights.values():
                if entity_id is None or flight.item.key == entity_id:
                    flight.uncertain = True

    def resume(self) -> None:
        """Connected: let the courier flush (for callers on the MQTT network thread, which
        must not wait for PUBACKs)."""
        self.connected = True
        self.kick()

    def confirm(self, entity_id: str) -> None:
        """The entity reported its state: commands in flight that it shows are done, and so
        are the ones published before them (a device gets one publisher's commands in order)."""
        with self._flight_lock:
            mine = [f for f in self._flights.values() if f.item.key == entity_id]
            shown = [i for i, f in enumerate(mine) if self.gate.confirmed(f.target)]
            for flight in mine[: shown[-1] + 1] if shown else ():
                del self._flights[flight.item.id]
        if shown:
            self.kick()

    def pending_count(self) -> int:
        """Commands waiting to be published."""
        with self._lock:
            rows = self.store.query("SELECT id FROM outbox WHERE status = 'pending'")
            ids = {r[0] for r in rows} | {i.id for i in self._memory}
            return len(ids - self._done)

    def in_flight(self) -> int:
        """Commands published but not yet confirmed by their device."""
        with self._flight_lock:
            return len(self._flights)

    def kick(self) -> None:
        """Something changed (a device is back, an echo): flush soon, from the courier."""
        self.wake()

    # -- internals -----------------------------------------------------------------------
    def _settle_flights(self) -> set[str]:
        """Settle commands in doubt; the devices whose pending commands must wait for it."""
        with self._flight_lock:
            flights = list(self._flights.values())
        now = time.monotonic()
        doubtful: dict[str, list[_Flight]] = {}
        for flight in flights:
            if flight.uncertain:
                doubtful.setdefault(flight.item.key, []).append(flight)
            elif now - flight.published >= self.echo_s:  # no echo: it went through
                self._land(flight.item)
        held: set[str] = set()
        for key, group in doubtful.items():
            if not self.gate.can_judge(group[-1].target):
                held.add(key)  # not back, or its state may still be on the way
                continue
            # The newest command its state shows arrived, and so did every one before it.
            shown = [i for i, f in enumerate(group) if self.gate.confirmed(f.target)]
            first_lost = shown[-1] + 1 if shown else 0
            for flight in group[:first_lost]:
                self._land(flight.item)
            for flight in group[first_lost:]:
                if not self._redo(flight, now):
                    held.add(key)
                    break
        return held

    def _redo(self, flight: _Flight, now: float) -> bool:
        """A command that did not arrive: sent again when that is harmless and still in
        time, else reported. False when it could not be sent (try again later)."""
        item, target = flight.item, flight.target
        if item.expires <= self.clock() or not target.resend_safe:
            why = "expired" if item.expires <= self.clock() else "a repeat would not be harmless"
            log.warning(
                "outbox: %s (%s on %s) may not have arrived; not repeated: %s",
                item.id,
                target.verb,
                target.entity,
                why,
            )
            self._land(item)
            return True
        log.warning("outbox: %s may not have arrived; sent again", item.id)
        if self._publish(item) is not True:
            return False
        flight.uncertain, flight.published = False, now
        return True

    def _land(self, item: _Item) -> None:
        with self._flight_lock:
            self._flights.pop(item.id, None)

    def _expire(self, item: _Item, now: float) -> None:
        log.warning(
            "outbox: dropped expired command %s (%s <- %r, %.0f s old)",
            item.id,
            item.msg.topic,
            item.msg.payload[:200],
            now - item.created,
        )
        self._mark(item, "expired", now)
        if self.on_expired is not None:
            try:
                self.on_expired(item.id, item.msg, item.target)
            except Exception:  # reporting must not stop the queue
                log.exception("outbox: expiry report failed for %s", item.id)

    def _publish(self, item: _Item) -> bool | str:
        try:
            return self.publish(item.msg)
        except Exception:  # a broken client must not lose the queue
            log.exception("outbox: publish of %s failed", item.id)
            return False

    def _pending(self) -> list[_Item]:
        rows = self.store.query(
            "SELECT seq, id, topic, payload, qos, retain, created, expires FROM outbox"
            " WHERE status = 'pending' ORDER BY seq"
        )
        items = [
            _Item(
                cid,
                MqttMessage(topic, payload, int(qos), bool(retain)),
                created,
                expires,
                seq,
                self._targets.get(cid),
            )
            for seq, cid, topic, payload, qos, retain, created, expires in rows
        ]
        known = {i.id for i in items}
        items += [i for i in self._memory if i.id not in known]
        return [i for i in items if i.id not in self._done]

    def _mark(self, item: _Item, status: str, now: float) -> None:
        # Remember in memory first: if the disk refuses the mark, the id is still never resent.
        self._done.add(item.id)
        self._forget(item)
        self._targets.pop(item.id, None)
        self._retry_at.pop(item.id, None)
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
    msg = item.msg
    row = (item.id, msg.topic, msg.payload, msg.qos, int(msg.retain), item.created, item.expires)
    sql = "INSERT OR IGNORE INTO outbox(id, topic, payload, qos, retain, created, expires)"
    return conn.execute(sql + " VALUES (?,?,?,?,?,?,?)", row).rowcount == 1
