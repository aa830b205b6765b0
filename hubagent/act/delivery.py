"""When a queued command may go out, and how the hub knows the device has it.

After a broker restart the hub reconnects quickly, the devices later (their own backoff),
and a command published before a device has resubscribed is dropped by the broker (MQTT 5
PUBACK 0x10, "no matching subscribers"). So a command waits until its device shows it is
back: a message on one of its state or availability topics since the hub's (re)connect
(`online`, a state, a re-announce). A device without any such topic gets the old grace
delay. Whatever evidence says, a 0x10 PUBACK means "not delivered, try again".

Confirmation: a command whose effect shows in the device's state (`expected_state`) is
confirmed by the state echo. Commands published but not confirmed when the connection
drops are "uncertain": once the device is back and has reported its state, those whose
effect shows are done; the others are sent again only when that is safe (setting a state
is idempotent; a toggle or a button press is not, and is reported instead of repeated).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from hubagent.home.registry import Registry
from hubagent.mqtt.state_parse import STATE_TOPIC_KEYS, availability_from_config
from hubagent.store.outbox import Gate, Outbox, Target
from hubagent.types import VERB_CAPABILITY, Action, Entity

log = logging.getLogger(__name__)

SETTLE_S = 1.0  # after a device is back, how long its re-announced state may take
SILENT_DEVICE_S = 10.0  # a device with only a state topic is given this long to speak
COURIER_INTERVAL_S = 0.25  # retries, expiries and echo timeouts are looked at this often

# Verbs whose repetition changes nothing: resending one that may have been lost is safe.
_IDEMPOTENT = frozenset(
    {"turn_on", "turn_off", "open", "close", "stop", "lock", "unlock", "mute", "set"}
)
# Numeric settings a device echoes in its state under the attribute's own name (the arg
# carries the same name: types.VERB_CAPABILITY).
_ECHOED = frozenset(
    {
        "set_brightness",
        "set_position",
        "set_percentage",
        "set_temperature",
        "set_color_temp",
        "set_humidity",
        "set_volume",
    }
)
_ON_OFF = {"turn_on": "on", "turn_off": "off", "lock": "locked", "unlock": "unlocked"}


def target_for(entity: Entity, action: Action, requester: str = "", channel: str = "") -> Target:
    """The delivery facts of `action` on `entity`."""
    verb = action.action
    expect: dict[str, Any] = {}
    if verb in _ON_OFF and (entity.domain == "lock") == (verb in ("lock", "unlock")):
        expect["state"] = _ON_OFF[verb]
    elif verb in _ECHOED:
        key = VERB_CAPABILITY[verb]
        value = action.args.get(key, action.args.get("value"))
        if isinstance(value, int | float) and not isinstance(value, bool):
            expect[key] = value
            if verb == "set_brightness" and entity.domain == "light":
                expect["state"] = "on" if value > 0 else "off"
    elif verb in ("select_option", "set_value"):
        value = action.args.get("option", action.args.get("value"))
        if value is not None:
            expect["state"] = value
    safe = verb in _IDEMPOTENT or verb.startswith("set_") or verb == "select_option"
    return Target(entity.entity_id, verb, tuple(expect.items()), safe, requester, channel)


def matches(state: dict[str, Any], expect: tuple[tuple[str, Any], ...]) -> bool:
    """Whether the device's reported state shows every expected value (numbers within the
    rounding of a device scale, 0.5: a neighbouring value must not count)."""
    if not expect:
        return False
    for key, want in expect:
        have = state.get(key)
        if isinstance(want, int | float) and not isinstance(want, bool):
            try:
                if abs(float(have) - float(want)) > 0.5:
                    return False
            except (TypeError, ValueError):
                return False
        elif str(have).lower() != str(want).lower():
            return False
    return True


class Readiness:
    """Which devices have shown since the hub's last (re)connect that they are listening."""

    def __init__(
        self, registry: Registry, grace_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.registry = registry
        self.grace_s = grace_s  # for devices with no topic that could show they are back
        self.clock = clock
        self._lock = threading.Lock()
        self._connected_at: float | None = None
        self._seen: dict[str, float] = {}  # entity -> when it first spoke since connect
        # topic -> (entity, its "offline" payload or None for a state topic)
        self._index: dict[str, list[tuple[str, bytes | None]]] = {}
        self._has_evidence: set[str] = set()  # entities with any topic that shows they are back
        self._announces: set[str] = set()  # ... among them those with an availability topic

    def connected(self, up: bool) -> None:
        """The hub's connection changed: what was seen before counts no more."""
        with self._lock:
            self._connected_at = self.clock() if up else None
            self._seen.clear()

    def update(self, entity: Entity) -> None:
        """An entity was added or its config changed: index the topics that show it is back."""
        with self._lock:
            self._drop(entity.entity_id)
            cfg = entity.mqtt or {}
            found = False
            for key in STATE_TOPIC_KEYS:
                topic = cfg.get(key)
                if isinstance(topic, str) and topic:
                    self._index.setdefault(topic, []).append((entity.entity_id, None))
                    found = True
            try:
                avail = availability_from_config(cfg)
            except (KeyError, TypeError, AttributeError):
                avail = None
            for topic, _on, off, _tpl in avail.topics if avail else ():
                self._index.setdefault(topic, []).append((entity.entity_id, off.lower().encode()))
                self._announces.add(entity.entity_id)
                found = True
            if found:
                self._has_evidence.add(entity.entity_id)

    def remove(self, entity_id: str) -> None:
        with self._lock:
            self._drop(entity_id)

    def _drop(self, entity_id: str) -> None:
        self._has_evidence.discard(entity_id)
        self._announces.discard(entity_id)
        for topic in [t for t, ids in self._index.items() if any(e == entity_id for e, _ in ids)]:
            left = [(e, off) for e, off in self._index[topic] if e != entity_id]
            if left:
                self._index[topic] = left
            else:
                del self._index[topic]

    def saw(self, topic: str, payload: bytes) -> list[tuple[str, bool]]:
        """A message arrived on `topic`: the entities it changes, each with True when it is
        newly back, False when it just said it is offline."""
        with self._lock:
            now = self.clock()
            changes = []
            for entity_id, offline in self._index.get(topic, ()):
                if offline is not None and payload.strip().lower() == offline:
                    self._seen.pop(entity_id, None)
                    changes.append((entity_id, False))
                elif entity_id not in self._seen:
                    self._seen[entity_id] = now
                    changes.append((entity_id, True))
            return changes

    def ready(self, entity_id: str) -> bool:
        """Whether a command for this entity may be published now."""
        entity = self.registry.get(entity_id)
        with self._lock:
            if self._connected_at is None:
                return False
            if entity_id in self._seen:
                return entity is None or entity.available
            if entity_id in self._announces:
                return False  # it says "online" when it is back: wait for that
            up = self.clock() - self._connected_at
            if entity is None or entity_id not in self._has_evidence:
                return up >= self.grace_s
            # Only a state topic: a device may stay silent until something changes, so
            # after a while publish anyway (a PUBACK 0x10 still says "not there yet").
            return up >= max(self.grace_s, SILENT_DEVICE_S)

    def since_back(self, entity_id: str) -> float | None:
        """Seconds since the entity (or, without evidence topics, the hub) was back."""
        with self._lock:
            if self._connected_at is None:
                return None
            if entity_id not in self._has_evidence:
                return self.clock() - self._connected_at - self.grace_s
            if entity_id not in self._announces and entity_id not in self._seen:
                return self.clock() - self._connected_at - max(self.grace_s, SILENT_DEVICE_S)
            seen = self._seen.get(entity_id)
            return None if seen is None else self.clock() - seen


class DeliveryGate(Gate):
    """The outbox's view of the devices: readiness, the state echo, commands in doubt."""

    def __init__(self, registry: Registry, readiness: Readiness) -> None:
        self.registry = registry
        self.readiness = readiness

    def ready(self, target: Target) -> bool:
        return self.readiness.ready(target.entity)

    def confirmed(self, target: Target) -> bool:
        entity = self.registry.get(target.entity)
        return entity is not None and matches(entity.state, target.expect)

    def can_judge(self, target: Target) -> bool:
        if not self.readiness.ready(target.entity):
            return False
        back = self.readiness.since_back(target.entity)
        # Its re-announced state may still be on the way; once it shows the command, done.
        return self.confirmed(target) or (back is not None and back >= SETTLE_S)


class Courier:
    """Flushes the outbox from a thread of its own: when kicked and every
    COURIER_INTERVAL_S (retries after PUBACK 0x10, expiries, commands in doubt). Publishing
    waits for PUBACKs, which must never happen on the MQTT network thread."""

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox
        self._kick = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        outbox.wake = self._kick.set

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="outbox", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._kick.set()
        if self._thread is not None:
            self._thread.join(5.0)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            self._kick.wait(COURIER_INTERVAL_S)
            self._kick.clear()
            if self._stop.is_set() or not self.outbox.connected:
                continue
            try:
                if self.outbox.in_flight() or self.outbox.pending_count():
                    self.outbox.flush()
            except Exception:  # the courier must outlive one bad flush
                log.exception("outbox: flush failed")
