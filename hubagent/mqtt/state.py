"""DiscoveryManager: discovery configs, state, attributes and availability -> the registry.

Feed it every MQTT message (`handle_message`); it upserts/removes discovered entities,
subscribes (once) to each topic they need, turns state payloads into registry state and
tracks availability (`availability_mode` all/any/latest). Bad input is counted and logged
once per topic; nothing raises out of `handle_message`. Turning state and availability
payloads into registry state lives in `hubagent.mqtt.state_delivery` (mixed in).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from hubagent.home.registry import Registry
from hubagent.mqtt.discovery import (
    DiscoveredComponent,
    DiscoveryError,
    parse_message,
    parse_topic,
    valid_subscribe_topic,
)
from hubagent.mqtt.state_delivery import StateDeliveryMixin, _Tracked
from hubagent.mqtt.state_parse import STATE_TOPIC_KEYS, Availability, availability_from_config
from hubagent.types import Entity, MqttMessage

log = logging.getLogger(__name__)
_MAX_LOGGED = 4096  # distinct problem keys remembered for log-once


def _device_key(config: dict[str, Any]) -> str:
    device = config.get("device") or {}
    ids = device.get("identifiers") if isinstance(device, dict) else None
    if isinstance(ids, list) and ids:
        return "|".join(sorted(str(i) for i in ids))
    if isinstance(ids, str | int):
        return str(ids)
    return f"uid:{config.get('unique_id')}"


class DiscoveryManager(StateDeliveryMixin):
    """Routes MQTT messages to the registry; see the module docstring."""

    def __init__(
        self,
        registry: Registry,
        prefix: str = "homeassistant",
        subscribe: Callable[[str], None] | None = None,
        device_root: str | None = None,
    ) -> None:
        """`device_root`: with the generated ACLs, device account A owns `<device_root>/A/...`
        and announces under `<prefix>/<component>/A/...`; a config whose command topic lies
        in another account's tree is then a device trying to steer someone else's device."""
        self.registry = registry
        self.prefix = prefix.rstrip("/")
        self.device_root = device_root.strip("/") if device_root else None
        self._subscribe = subscribe
        self._lock = threading.RLock()
        self._tracked: dict[str, _Tracked] = {}  # discovery key -> entity
        self._by_topic: dict[str, set[str]] = {}  # discovery topic -> keys
        self._routes: dict[str, list[tuple[str, str]]] = {}  # topic -> (key, role)
        self._wildcards: dict[str, list[tuple[str, str]]] = {}  # filters with + or #
        self._subscribed: set[str] = set()
        self._last: dict[str, str] = {}  # exact routed topic -> last payload
        self._command_owner: dict[str, tuple[str, str, str]] = {}  # topic -> (dev, comp, key)
        self._unique: dict[tuple[str, str], str] = {}  # (platform, unique_id) -> key
        self._logged: set[str] = set()
        self.birth_listeners: list[Callable[[], None]] = []
        self.counters: dict[str, int] = {
            "configs": 0,
            "removed": 0,
            "bad_config": 0,
            "bad_state": 0,
            "template_errors": 0,
            "template_budget": 0,
            "rejected": 0,
        }
        for topic in self.base_topics():
            self._want(topic)

    # -- topics --------------------------------------------------------------------------
    def base_topics(self) -> list[str]:
        return [f"{self.prefix}/+/+/config", f"{self.prefix}/+/+/+/config", f"{self.prefix}/status"]

    def topics(self) -> set[str]:
        """Every topic filter the manager needs to hear."""
        with self._lock:
            return set(self._subscribed)

    def resubscribe(self) -> None:
        """Subscribe again to every topic (after a reconnect without a persistent session)."""
        for topic in sorted(self.topics()):
            self._call_subscribe(topic)

    def birth_message(self) -> MqttMessage:
        """`<prefix>/status online`: asks devices to re-announce their configs."""
        return MqttMessage(f"{self.prefix}/status", "online", qos=1, retain=False)

    def _call_subscribe(self, topic: str) -> None:
        if self._subscribe is None:
            return
        try:
            self._subscribe(topic)
        except Exception:  # the client's problem must not break discovery
            log.exception("subscribing to %s failed", topic)

    def _want(self, topic: str) -> None:
        if topic in self._subscribed:
            return
        self._subscribed.add(topic)
        self._call_subscribe(topic)

    def _warn_once(self, key: str, message: str, *args: Any) -> None:
        if key in self._logged:
            return
        if len(self._logged) < _MAX_LOGGED:
            self._logged.add(key)
        log.warning(message, *args)

    # -- entry point ---------------------------------------------------------------------
    def handle_message(self, topic: str, payload: bytes, retained: bool = False) -> None:
        """Route one MQTT message; never raises."""
        try:
            if isinstance(payload, str):
                payload = payload.encode()
            if topic == f"{self.prefix}/status":
                self._birth(payload)
            elif parse_topic(topic, self.prefix) is not None:
                self._discovery(topic, payload)
            else:
                self._state(topic, payload)
        except Exception:  # last line of defence: one bad message must not stop the hub
            self.counters["bad_state"] += 1
            self._warn_once(f"crash:{topic}", "unexpected error on %s", topic[:200], exc_info=True)

    def _birth(self, payload: bytes) -> None:
        if payload.strip().lower() != b"online":
            return
        for listener in list(self.birth_listeners):
            try:
                listener()
            except Exception:
                log.exception("birth listener failed")

    # -- discovery -----------------------------------------------------------------------
    def _discovery(self, topic: str, payload: bytes) -> None:
        try:
            msg = parse_message(topic, payload, self.prefix)
        except DiscoveryError as exc:
            self.counters["bad_config"] += 1
            self._warn_once(f"cfg:{topic}", "ignoring discovery config on %s: %s", topic[:200], exc)
            return
        with self._lock:
            old_keys = set(self._by_topic.get(topic, ()))
            if msg.remove_all:
                for key in old_keys:
                    self._remove(key)
                self._by_topic.pop(topic, None)
                return
            new_keys = {c.key for c in msg.components}
            for key in msg.removed:
                self._remove(key)
            if msg.device_based:  # components left out of an updated device config go away
                for key in old_keys - new_keys:
                    self._remove(key)
            for component in msg.components:
                self._add(topic, component)
            keys = {k for k in self._by_topic.get(topic, set()) if k in self._tracked}
            self._by_topic[topic] = keys

    def _add(self, topic: str, cmp: DiscoveredComponent) -> None:
        entity = cmp.entity
        if entity is None:  # device triggers: nothing to show, nothing to subscribe
            return
        old = self._tracked.get(cmp.key)
        if old is not None and old.config == cmp.config and old.component == cmp.component:
            return  # HA ignores a re-sent identical config
        problem = (
            self._foreign_command_topic(topic, cmp)
            or self._command_conflict(cmp)
            or self._unique_conflict(cmp)
        )
        if problem:
            self._warn_once(
                f"cmd:{cmp.key}", "ignoring %s from %s: %s", entity.entity_id, topic, problem
            )
            self.counters["rejected"] += 1  # after the log: watchers of the count see both
            return
        if old is not None and old.component != cmp.component:
            self._remove(cmp.key)  # a different platform is a different entity
            old = None
        if old is not None:
            entity.entity_id = old.entity_id  # ids stay stable across config updates
        else:
            entity.entity_id = self._free_id(entity.entity_id)
        avail = availability_from_config(cmp.config)
        tracked = _Tracked(cmp.key, topic, entity.entity_id, cmp.component, cmp.config, avail)
        if old is not None:
            self._unroute(cmp.key)
        self._tracked[cmp.key] = tracked
        self._by_topic.setdefault(topic, set()).add(cmp.key)
        if avail is not None:
            entity.available = False  # as HA: unavailable until the device says otherwise
            if old is not None and old.availability is not None:
                avail.seen, avail.latest = old.availability.seen, old.availability.latest
                entity.available = avail.available()
        for key in ("command_topic", *[k for k in cmp.config if k.endswith("command_topic")]):
            if isinstance(cmp.config.get(key), str):
                self._command_owner[cmp.config[key]] = (
                    _device_key(cmp.config),
                    cmp.component,
                    cmp.key,
                )
        if cmp.config.get("unique_id"):
            self._unique[(cmp.component, str(cmp.config["unique_id"]))] = cmp.key
        self.registry.upsert(entity)
        self.counters["configs"] += 1
        self._route_all(cmp.key, cmp.config, avail)

    def _route_all(self, key: str, config: dict[str, Any], avail: Availability | None) -> None:
        topics = [config[r] for r in STATE_TOPIC_KEYS if isinstance(config.get(r), str)]
        for role in STATE_TOPIC_KEYS:
            topic = config.get(role)
            if isinstance(topic, str) and valid_subscribe_topic(topic):
                self._route(topic, key, role)
        for index, (avty_topic, *_rest) in enumerate(avail.topics if avail else []):
            self._route(avty_topic, key, f"availability:{index}")
            topics.append(avty_topic)
        self._replay(key, list(dict.fromkeys(topics)))

    def _foreign_command_topic(self, topic: str, cmp: DiscoveredComponent) -> str | None:
        """A command topic in another device account's tree (see `device_root`)."""
        parsed = parse_topic(topic, self.prefix)
        node = parsed[1] if parsed else None
        if not self.device_root or not node:
            return None  # node-less topics cannot be published by device accounts
        root = self.device_root + "/"
        for key, value in cmp.config.items():
            if key.endswith("command_topic") and isinstance(value, str) and value.startswith(root):
                owner = value[len(root) :].split("/", 1)[0]
                if owner != node:
                    return f"{key} {value!r} belongs to device account {owner!r}, not {node!r}"
        return None

    def _command_conflict(self, cmp: DiscoveredComponent) -> str | None:
        """A command topic under the discovery prefix, or one already owned by another
        device's entity of a different platform (e.g. a "light" on a lock's topic)."""
        device = _device_key(cmp.config)
        for key, topic in cmp.config.items():
            if not key.endswith("command_topic") or not isinstance(topic, str):
                continue
            if topic.startswith(self.prefix + "/"):
                return f"{key} {topic!r} is inside the discovery prefix"
            owner = self._command_owner.get(topic)
            if (
                owner
                and owner[2] in self._tracked
                and owner[2] != cmp.key
                and owner[0] != device
                and owner[1] != cmp.component
            ):
                return f"{key} {topic!r} belongs to another device's {owner[1]}"
        return None

    def _unique_conflict(self, cmp: DiscoveredComponent) -> str | None:
        """HA refuses a second entity with the same platform and unique_id."""
        unique = cmp.config.get("unique_id")
        if not unique:
            return None
        holder = self._tracked.get(self._unique.get((cmp.component, str(unique)), ""))
        if holder is not None and holder.key != cmp.key:
            return f"unique_id {unique!r} is already used by {holder.entity_id}"
        return None

    def _free_id(self, entity_id: str) -> str:
        used = {t.entity_id for t in self._tracked.values()}
        if entity_id not in used:
            return entity_id
        n = 2
        while f"{entity_id}_{n}" in used:
            n += 1
        return f"{entity_id}_{n}"

    def _remove(self, key: str) -> None:
        tracked = self._tracked.pop(key, None)
        if tracked is None:
            return
        self._unroute(key)
        self.registry.remove(tracked.entity_id)
        self.counters["removed"] += 1

    def _route(self, topic: str, key: str, role: str) -> None:
        table = self._wildcards if ("+" in topic or "#" in topic) else self._routes
        table.setdefault(topic, []).append((key, role))
        self._want(topic)

    def _unroute(self, key: str) -> None:
        for table in (self._routes, self._wildcards):
            for topic in list(table):
                kept = [r for r in table[topic] if r[0] != key]
                if kept:
                    table[topic] = kept
                else:
                    del table[topic]

    # -- home-file entities --------------------------------------------------------------
    def watch(self, entity: Entity) -> None:
        """Follow the state/availability topics of an entity that is not discovered (a
        home file's explicit `mqtt:` block) with the same parsing as discovered ones."""
        config = dict(entity.mqtt)
        if not config:
            return
        key = f"home:{entity.entity_id}"
        with self._lock:
            if key in self._tracked:
                self._unroute(key)
            avail = availability_from_config(config)
            component = str(config.get("component") or entity.domain)
            self._tracked[key] = _Tracked(key, "", entity.entity_id, component, config, avail)
            self._route_all(key, config, avail)

    # -- queries -------------------------------------------------------------------------
    def entity_ids(self, discovery_topic: str) -> list[str]:
        """Entity ids announced by one discovery topic (eval and tests)."""
        with self._lock:
            keys = self._by_topic.get(discovery_topic, set())
            return sorted(self._tracked[k].entity_id for k in keys if k in self._tracked)
