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

from hubagent.act.delivery import Courier, DeliveryGate, Readiness
from hubagent.act.policy import Policy
from hubagent.agent import Agent
from hubagent.assist.satellites import Satellites
from hubagent.automations import AutomationEngine
from hubagent.config import Config, expand
from hubagent.home.registry import Registry
from hubagent.mqtt.client import MqttClient
from hubagent.mqtt.ingest import IngestWorker
from hubagent.mqtt.ownership import OwnedDiscoveryManager
from hubagent.mqtt.topics import REQUEST_TOPIC
from hubagent.parts import load_homes, open_llm, open_student
from hubagent.store.db import AuditEntry, Store
from hubagent.store.outbox import NO_SUBSCRIBERS, UNCERTAIN, Outbox, Target
from hubagent.types import Entity, MqttMessage
from hubagent.understand.cascade import Cascade
from hubagent.understand.llm import LlmUnderstander
from hubagent.understand.matcher import LocalMatchers
from hubagent.understand.runtime import Runtime
from hubagent.understand.warmup import PrefixWarmer

log = logging.getLogger(__name__)

PUBACK_TIMEOUT_S = 2.0  # a device command's PUBACK says whether anybody was subscribed


def _device_accounts(cfg: Config) -> list[str]:
    """Accounts that may announce discovery configs only for themselves: the devices
    `hubagent acl` generates for the configured home files, and the hub's and requesters'
    own accounts (the ACL's device patterns apply to every login)."""
    from hubagent.security.acl import device_accounts_from_homes

    own = [cfg.acl.hub_account, *cfg.acl.hub_workers, *cfg.acl.requesters]
    return [*device_accounts_from_homes([expand(p) for p in cfg.homes]), *own]


class Hub:
    """The running hub. `start()` connects; `agent.handle(text)` serves requests."""

    def __init__(
        self, cfg: Config, *, use_llm: bool = True, runtime: Runtime | None = None
    ) -> None:
        self.cfg = cfg
        self.registry = Registry()
        self.warmer: PrefixWarmer | None = None  # set below when a model is loaded
        self.store = Store(
            expand(cfg.store.path),
            cfg.store.encryption_key,
            cfg.store.history_days,
            history_max_rows=cfg.store.history_max_rows,
            history_max_bytes=cfg.store.history_max_bytes,
            max_state_bytes=cfg.store.max_state_bytes,
            audit_pending_max=cfg.store.audit_pending_max,
        )
        self._restored = self.store.load_states()
        # A command goes out when its device shows it is back after a reconnect; devices
        # that cannot show it get `outbox_resume_delay_s` (see act.delivery).
        self.readiness = Readiness(self.registry, cfg.store.outbox_resume_delay_s)
        self.outbox = Outbox(
            self.store,
            self._publish,
            cfg.store.outbox_ttl_s,
            gate=DeliveryGate(self.registry, self.readiness),
            on_expired=self._expired,
        )
        self.courier = Courier(self.outbox)
        self.registry.subscribe(self._on_registry_change)
        static = load_homes(self.registry, cfg.homes, static=False)

        self.mqtt = MqttClient(cfg.mqtt, client_id=cfg.mqtt.client_id)
        self.mqtt.refuse_publish(REQUEST_TOPIC)  # never ask itself (see MqttRequests)
        from hubagent.security.profiles import account_trees

        device_accounts = _device_accounts(cfg)
        self.discovery = OwnedDiscoveryManager(
            self.registry,
            cfg.mqtt.discovery_prefix,
            subscribe=self._subscribe,
            device_root=cfg.acl.device_root,
            device_accounts=device_accounts,
            trees=account_trees(cfg, device_accounts),  # acl.accounts (firmware profiles)
        )
        plain = cfg.broker.plain_listener
        if plain.port:  # opt-in; say so at every start, as loudly as `hubagent acl` does
            from hubagent.security.acl import PLAIN_WARNING

            log.warning(PLAIN_WARNING, plain.port, ", ".join(plain.accounts) or "none")
        for entity in static:
            self.discovery.watch(entity)
        # Device messages are handled off paho's network thread, so commands keep flowing.
        self.ingest = IngestWorker(self._on_device_message)
        self._resume: threading.Timer | None = None
        self.mqtt.on_connection_change(self._on_connection_change)

        self.policy = Policy(cfg.policy, self.registry)
        self.ha = self._ha_bridge(cfg)
        self.satellites = Satellites(cfg.satellites)
        self.assist = self._assistant(cfg)
        handled = self.assist.assistant.intents if self.assist else frozenset()
        self.matcher = LocalMatchers(self.registry, cfg.served_languages, handled=handled)
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
        self.agent = Agent(
            self.registry,
            self.cascade,
            self.policy,
            self._send,
            self.store,
            cfg.served_languages,
            ha=self.ha,
            queue_ttl_s=cfg.store.outbox_ttl_s,
            assist=self.assist.assistant if self.assist else None,
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

    def _assistant(self, cfg: Config) -> Any:
        """Timers, lists, weather, broadcast and media search (hubagent.assist), or None."""
        if not cfg.assistant.enabled:
            return None
        from hubagent.assist import build

        return build(
            self.registry,
            self.store,
            self._send,
            ha=self.ha,
            lists=cfg.assistant.lists,
            run_command=self._timer_command,
        )

    def _timer_command(self, timer: Any) -> None:
        """A finished timer's command ("in 10 minutes turn off the oven light"): a request
        like any other, by whoever set the timer, so policy and audit apply."""
        from hubagent.assist.context import origin

        area = self.registry.find_area(timer.area) if timer.area else None
        with origin(timer.satellite, "timer"):
            reply = self.agent.handle(
                timer.command,
                requester=timer.requester,
                channel="timer",
                area=area.id if area else None,
                language=timer.language,
            )
        log.info("timer %s ran %r: %s", timer.id, timer.command, reply.text)

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
        self.ingest.submit(topic, payload, retained)

    def _on_device_message(self, topic: str, payload: bytes, retained: bool) -> None:
        """On the ingest thread: discovery and state, then what the message says about the
        device being reachable (its queued commands may go, or its unconfirmed ones are in
        doubt)."""
        self.discovery.handle_message(topic, payload, retained)
        for entity_id, back in self.readiness.saw(topic, payload):
            if back:
                self.outbox.kick()
            else:
                self.outbox.doubt(entity_id)

    def _publish(self, message: MqttMessage) -> bool | str:
        timeout = PUBACK_TIMEOUT_S if message.qos else None
        result = self.mqtt.publish(
            message.topic, message.payload, message.qos, message.retain, timeout=timeout
        )
        if result.ok:  # MQTT 5 reason 0x10: accepted, but nobody was subscribed to get it
            return NO_SUBSCRIBERS if result.reason.endswith("(0x10)") else True
        return UNCERTAIN if result.reason.startswith("no PUBACK") else False

    def _send(self, message: MqttMessage, target: Target | None = None) -> bool:
        """Queue one device command; whether it went out at once (else it waits)."""
        cid = self.outbox.send(message, target=target)
        return not self.outbox.is_pending(cid)

    def _expired(self, command_id: str, message: MqttMessage, target: Target | None) -> None:
        """A queued command outlived its TTL: the audit log says so, for whoever asked."""
        who = target.requester if target and target.requester else "outbox"
        what = {"command": command_id, "topic": message.topic}
        if target is not None:
            what |= {"entity": target.entity, "action": target.verb}
        reason = "not delivered within its TTL: the device or the broker was not reachable"
        self.store.audit(
            AuditEntry(
                who, target.channel if target else "outbox", "expired", what, "expired", reason
            )
        )

    def _on_connection_change(self, connected: bool) -> None:
        self.readiness.connected(connected)
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
            self.outbox.resume()  # flushed by the courier: not on this (network) thread
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
            self.warmer.changed()  # the prompt prefix names devices: evaluate it again
        if kind == "removed":
            self.readiness.remove(entity.entity_id)
            return
        if kind != "state":
            self.readiness.update(entity)  # the topics that show the device is back
        if kind == "added" and not entity.state and entity.entity_id in self._restored:
            # Last known state until the device's retained state arrives.
            restored = self._restored[entity.entity_id]
            self.registry.update_state(entity.entity_id, dict(restored.get("state") or {}))
            return
        if kind != "state":
            return
        # the store copies or encodes what it keeps
        self.store.save_state(entity.entity_id, entity.state, entity.available, entity.last_changed)
        self.store.add_history(entity.entity_id, entity.state, entity.last_changed)
        self.outbox.confirm(entity.entity_id)  # the state echo of commands in flight

    # -- lifecycle ---------------------------------------------------------------------
    def start(self, wait: float = 0.0) -> bool:
        """Connect (in the background); with `wait`, block up to that long for the broker."""
        self.matcher.warm()
        if self.warmer is not None:
            self.warmer.start()
        gc.collect()
        gc.freeze()  # long-lived registry/intents objects: keeps GC pauses off the hot path
        self.ingest.start()
        self.courier.start()
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
        if self.assist is not None:
            self.assist.timers.start()
            if self.ha is not None:
                threading.Thread(target=self._learn_satellites, daemon=True).start()
        return connected

    def _learn_satellites(self) -> None:
        """Satellite areas from Home Assistant's device registry (config entries win)."""
        found = self.ha.satellite_areas()
        self.satellites.learn(found)
        log.info("satellite areas from Home Assistant: %d", len(found))

    def stop(self) -> None:
        self._stopping = True
        self._ha_stop.set()
        if self.warmer is not None:
            self.warmer.stop()
        if self._ha_follower is not None:
            self._ha_follower.close()
        if self.automations is not None:
            self.automations.stop()
        if self.assist is not None:
            self.assist.timers.stop()
        self.mqtt.stop()
        self.ingest.stop()  # what was received is handled before the store closes
        self.courier.stop()
        self.store.close()
        if self.runtime is not None:
            self.runtime.close()

    def health(self) -> dict[str, Any]:
        """A summary for `GET /api/health` and the demo banner."""
        return {
            "mqtt_connected": self.mqtt.connected,
            "entities": len(self.registry),
            "outbox_pending": self.outbox.pending_count(),
            "ingest_backlog": self.ingest.backlog,
            "ingest_dropped": self.ingest.dropped,
            "templates_over_budget": self.discovery.counters["template_budget"],
            "outbox_unconfirmed": self.outbox.in_flight(),
            "store_degraded": self.store.degraded,
            "audit_pending": self.store.audit_pending,
            "audit_dropped": self.store.audit_dropped,
            "store_in_memory": self.store.in_memory,
            "store_encrypted": self.store.encrypted,
            "llm": self.runtime is not None,
            "llm_warm": self.warmer is not None and self.warmer.ready.is_set(),
            "uptime_s": round(time.time() - self.started_at, 1) if self.started_at else 0.0,
        }


def stop_on_signals() -> threading.Event:
    """An event set by SIGINT/SIGTERM/SIGHUP; installed before a slow start-up (the model
    load) so a stop asked for meanwhile still shuts down cleanly."""
    stop = threading.Event()
    # SIGHUP too: a closed terminal or tmux session must still shut down cleanly.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def wait_for_signal(stop: threading.Event | None = None) -> None:
    """Block until SIGINT/SIGTERM/SIGHUP (or `stop` is set)."""
    stop = stop or stop_on_signals()
    while not stop.is_set():
        stop.wait(0.5)


def run_hub(cfg: Config, config_path: Path | None = None) -> int:
    """`hubagent run`: start the hub and its interfaces and serve until Ctrl-C."""
    from hubagent.interfaces.server import Interfaces

    stop = stop_on_signals()
    hub = Hub(cfg)
    hub.start()
    interfaces = Interfaces(hub)
    try:
        interfaces.start()  # logs each address once
    except OSError:  # ListenError: the CLI prints it as one line
        hub.stop()
        raise
    log.info("hubagent running with %d entities known so far; Ctrl-C stops", len(hub.registry))
    try:
        wait_for_signal(stop)
    finally:
        interfaces.stop()  # before hub.stop(): the request topic uses hub.mqtt
        hub.stop()
    return 0
