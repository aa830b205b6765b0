"""Builds the hub from a Config and runs it: registry, store, MQTT, discovery, understanding,
policy, outbox. Owns start-up order and clean shutdown; no request logic lives here.
"""

from __future__ import annotations

import gc
import logging
import signal
import threading
import time
from pathlib import Path
from typing import Any

from hubagent.act.policy import Policy
from hubagent.agent import Agent
from hubagent.automations import AutomationEngine
from hubagent.config import Config, expand
from hubagent.home.homefile import apply_home, load_home
from hubagent.home.registry import Registry
from hubagent.mqtt.client import MqttClient
from hubagent.mqtt.state import DiscoveryManager
from hubagent.store.db import Store
from hubagent.store.outbox import Outbox
from hubagent.types import Entity, MqttMessage
from hubagent.understand.cascade import Cascade
from hubagent.understand.llm import LlmUnderstander
from hubagent.understand.matcher import LocalMatchers
from hubagent.understand.runtime import Runtime
from hubagent.understand.warmup import PrefixWarmer

log = logging.getLogger(__name__)


def open_llm(cfg: Config, use_llm: bool = True) -> Runtime | None:
    """The configured model runtime, or None (logged) when it is off or cannot load."""
    if not use_llm or cfg.llm.backend == "none":
        return None
    from hubagent.understand.runtime import open_runtime

    try:
        return open_runtime(cfg.llm)
    except (ValueError, OSError, ImportError) as exc:
        log.error("LLM unavailable, running with the local matcher only: %s", exc)
        return None


def open_student(cfg: Config, registry: Registry) -> Any:
    """The configured distilled student's cascade path, or None (logged) when it is off."""
    if not cfg.llm.student:
        return None
    from hubagent.compress.student import Student, StudentPath

    try:
        student = Student.load(expand(cfg.llm.student))
    except ValueError as exc:
        log.warning("student not loaded, continuing without it: %s", exc)
        return None
    return StudentPath(student, registry, cfg.llm.student_threshold)


def load_homes(
    registry: Registry, paths: tuple[str, ...] | list[str], *, static: bool
) -> list[Entity]:
    """Apply home files; returns the static entities that have their own MQTT topics.

    With `static` False, devices only enrich what discovery announces (names, aliases, areas)
    unless they declare `mqtt` topics themselves.
    """
    own_topics: list[Entity] = []
    for path in paths:
        home = load_home(expand(path))
        apply_home(registry, home, enrich_only=True)
        for entity in home.entities:
            if static or entity.mqtt.get("command_topic") or entity.mqtt.get("state_topic"):
                registry.upsert(entity)
                if entity.mqtt:
                    own_topics.append(entity)
    return own_topics


class Hub:
    """The running hub. `start()` connects; `agent.handle(text)` serves requests."""

    def __init__(
        self, cfg: Config, *, use_llm: bool = True, runtime: Runtime | None = None
    ) -> None:
        self.cfg = cfg
        self.registry = Registry()
        self.warmer: PrefixWarmer | None = None  # set below when a model is loaded
        self.store = Store(expand(cfg.store.path), cfg.store.encryption_key, cfg.store.history_days)
        self._restored = self.store.load_states()
        self.registry.subscribe(self._on_registry_change)
        static = load_homes(self.registry, cfg.homes, static=False)

        self.mqtt = MqttClient(cfg.mqtt, client_id=cfg.mqtt.client_id)
        self.discovery = DiscoveryManager(
            self.registry,
            cfg.mqtt.discovery_prefix,
            subscribe=self._subscribe,
            device_root=cfg.acl.device_root,
        )
        for entity in static:
            self.discovery.watch(entity)
        self.outbox = Outbox(self.store, self._publish, cfg.store.outbox_ttl_s)
        self._resume: threading.Timer | None = None
        self.mqtt.on_connection_change(self._on_connection_change)

        self.policy = Policy(cfg.policy, self.registry)
        self.matcher = LocalMatchers(self.registry, cfg.served_languages)
        self.runtime = runtime if runtime is not None else open_llm(cfg, use_llm)
        self.understander = LlmUnderstander(self.registry, self.runtime, cfg.language)
        if self.runtime is not None and hasattr(self.runtime, "warm"):
            # The prompt prefix goes into the model's cache at start and after the
            # registry's structure changes, in the background: templates serve meanwhile.
            self.warmer = PrefixWarmer(
                self.understander.warm,
                lambda: self.registry.version,
                debounce_s=cfg.llm.warm_debounce_s,
            )
        self.cascade = Cascade(self.matcher, self.understander, self._student(cfg))
        self.ha = self._ha_bridge(cfg)
        self.agent = Agent(
            self.registry,
            self.cascade,
            self.policy,
            self._send,
            self.store,
            cfg.served_languages,
            ha=self.ha,
        )
        self.automations = (
            AutomationEngine(self, expand(cfg.automations)) if cfg.automations else None
        )
        self.started_at: float | None = None
        self._stopping = False
        self._ha_stop = threading.Event()  # ends the Home Assistant bridge's follower
        self._ha_follower: Any = None

    def _student(self, cfg: Config) -> Any:
        return open_student(cfg, self.registry)

    def _ha_bridge(self, cfg: Config) -> Any:
        if not cfg.homeassistant.url:
            return None
        from hubagent.interfaces.homeassistant import HomeAssistantBridge, HomeAssistantError

        try:
            return HomeAssistantBridge(cfg.homeassistant, self.registry)
        except HomeAssistantError as exc:
            log.error("Home Assistant bridge off: %s", exc)
            return None

    # -- MQTT plumbing -----------------------------------------------------------------
    def _subscribe(self, topic: str) -> None:
        self.mqtt.subscribe(topic, self._on_message)

    def _on_message(self, topic: str, payload: bytes, retained: bool) -> None:
        self.discovery.handle_message(topic, payload, retained)

    def _publish(self, message: MqttMessage) -> bool:
        return self.mqtt.publish(message.topic, message.payload, message.qos, message.retain).ok

    def _send(self, message: MqttMessage) -> str:
        return self.outbox.send(message)

    def _on_connection_change(self, connected: bool) -> None:
        if self._resume is not None:
            self._resume.cancel()
            self._resume = None
        if not connected:
            if not self._stopping:
                log.warning("broker connection lost; commands are kept in the outbox")
            self.outbox.set_connected(False)
            return
        log.info("connected to the broker at %s:%s", self.cfg.mqtt.host, self.cfg.mqtt.port)
        delay = self.cfg.store.outbox_resume_delay_s
        if delay <= 0 or self.outbox.pending_count() == 0:
            self._resume_outbox()
            return
        self._resume = threading.Timer(delay, self._resume_outbox)
        self._resume.daemon = True
        self._resume.start()

    def _resume_outbox(self) -> None:
        if not self.mqtt.connected:
            return
        report = self.outbox.set_connected(True)
        if report is not None and report.expired:
            log.warning(
                "%d queued command(s) expired while offline and were dropped", len(report.expired)
            )

    # -- state persistence -------------------------------------------------------------
    def _on_registry_change(self, kind: str, entity: Entity, changed: dict[str, Any]) -> None:
        if kind != "state" and self.warmer is not None:
            self.warmer.changed()
        if kind == "added" and not entity.state and entity.entity_id in self._restored:
            # Last known state until the device's retained state arrives.
            restored = self._restored[entity.entity_id]
            self.registry.update_state(entity.entity_id, dict(restored.get("state") or {}))
            return
        if kind == "state":  # the store copies or encodes what it keeps
            self.store.save_state(
                entity.entity_id, entity.state, entity.available, entity.last_changed
            )
            self.store.add_history(entity.entity_id, entity.state, entity.last_changed)

    # -- lifecycle ---------------------------------------------------------------------
    def start(self, wait: float = 0.0) -> bool:
        """Connect (in the background); with `wait`, block up to that long for the broker."""
        self.matcher.warm()
        if self.warmer is not None:
            self.warmer.start()
        gc.collect()
        gc.freeze()  # long-lived registry/intents objects: keeps GC pauses off the hot path
        self.mqtt.start()
        self.started_at = time.time()
        connected = self.mqtt.wait_connected(wait) if wait else self.mqtt.connected
        if self.ha is not None:
            from hubagent.interfaces.ha_follow import HaFollower

            self._ha_follower = HaFollower(self.ha, self.cfg.homeassistant.refresh_s)
            threading.Thread(
                target=self._ha_follower.run, args=(self._ha_stop,), name="ha-bridge", daemon=True
            ).start()
        if self.automations is not None:
            self.automations.start()
        return connected

    def stop(self) -> None:
        self._stopping = True
        self._ha_stop.set()
        if self.warmer is not None:
            self.warmer.stop()
        if self._ha_follower is not None:
            self._ha_follower.close()
        if self.automations is not None:
            self.automations.stop()
        self.mqtt.stop()
        self.store.close()
        if self.runtime is not None:
            self.runtime.close()

    def health(self) -> dict[str, Any]:
        """A summary for `GET /api/health` and the demo banner."""
        return {
            "mqtt_connected": self.mqtt.connected,
            "entities": len(self.registry),
            "outbox_pending": self.outbox.pending_count(),
            "store_degraded": self.store.degraded,
            "store_in_memory": self.store.in_memory,
            "store_encrypted": self.store.encrypted,
            "llm": self.runtime is not None,
            "llm_warm": self.warmer is not None and self.warmer.ready.is_set(),
            "uptime_s": round(time.time() - self.started_at, 1) if self.started_at else 0.0,
        }


def wait_for_signal(stop: threading.Event | None = None) -> None:
    """Block until SIGINT/SIGTERM/SIGHUP (or `stop` is set)."""
    stop = stop or threading.Event()
    # SIGHUP too: a closed terminal or tmux session must still shut down cleanly.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.is_set():
        stop.wait(0.5)


def run_hub(cfg: Config, config_path: Path | None = None) -> int:
    """`hubagent run`: start the hub and its interfaces and serve until Ctrl-C."""
    from hubagent.interfaces.server import Interfaces

    hub = Hub(cfg)
    hub.start()
    interfaces = Interfaces(hub)
    try:
        for name, address in interfaces.start().items():
            log.info("%s: %s", name, address)
    except OSError as exc:
        log.error("cannot listen: %s", exc)
        hub.stop()
        return 1
    log.info("hubagent running with %d entities known so far; Ctrl-C stops", len(hub.registry))
    try:
        wait_for_signal()
    finally:
        interfaces.stop()  # before hub.stop(): the request topic uses hub.mqtt
        hub.stop()
    return 0
