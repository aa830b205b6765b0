"""The automation engine: loads `automations/*.yaml`, watches triggers, runs actions.

File format (full reference with examples: automations/README.md). A file holds one
automation or a list of them::

    - id: hallway_light_on_arrival          # letters, digits, _ and -; unique
      alias: Hallway light when the door opens after dark
      trigger:                              # any one fires the automation
        - platform: state                   # state | numeric_state | mqtt | time | time_pattern | hub_start
          entity_id: binary_sensor.front_door_contact
          to: "on"                          # also: from, attribute, for: "00:05:00" | {minutes: 5} | 0.3
      condition:                            # all must hold: state, numeric_state, time, and/or/not
        - condition: time
          after: "18:00"
          before: "06:00"
          weekday: [mon, tue, wed, thu, fri]
      action:                               # run in order, in a worker thread
        - action: {entity: light.hallway, action: turn_on, args: {}}
        - say: turn on the kitchen light    # understood like a spoken request (Agent.handle)
        - delay: "00:00:05"
        - notify: {topic: hubagent/notify/door, message: The door is open}
      mode: single                          # single (ignore triggers while running) | parallel
      max_runs_per_minute: 10               # storm damping, besides the policy's rate limit
      allow_sensitive: false                # see below

Every action goes through the hub's policy and audit log as requester `automation:<id>` on
channel `automation`. Sensitive actions (unlock, open a garage door, disarm) need a spoken
confirmation that an automation cannot give, so they are refused and audited, unless the
automation sets `allow_sensitive: true` AND the hub config lists its id in
`policy.trusted_automations`; then the engine gives the confirmation itself.

Files are polled for changes (mtime and size, every second) rather than watched with
inotify: polling works the same on Docker bind mounts, network shares and the Home
Assistant add-on's /config share, where inotify events often never arrive, and needs no
dependency; a stat of a few files per second costs nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import paho.mqtt.client as mqtt

from hubagent.automations.actions import CHANNEL, StepRunner
from hubagent.automations.conditions import check_all
from hubagent.automations.files import load_all, scan
from hubagent.automations.model import Automation, AutomationError, Trigger
from hubagent.automations.schedule import due_clock_triggers
from hubagent.automations.schema import DEFAULT_NOTIFY_TOPICS
from hubagent.automations.triggers import (
    numeric_change_fires,
    numeric_holds,
    state_change_fires,
    state_matches,
)
from hubagent.config import expand
from hubagent.home.homefile import load_home
from hubagent.types import Entity

if TYPE_CHECKING:
    from hubagent.app import Hub

log = logging.getLogger(__name__)

TICK_S = 0.1  # scheduler resolution: `for:` durations and clock triggers
POLL_S = 1.0  # how often automation files are checked for changes
MAX_CATCH_UP = timedelta(minutes=5)  # after a suspend, clock triggers older than this are skipped


@dataclass
class Run:
    """One firing of an automation and what became of each step."""

    automation: str
    trigger: dict[str, Any]
    started: float = field(default_factory=time.time)
    status: str = "running"  # running | done | refused | error | damped | busy
    steps: list[dict[str, Any]] = field(default_factory=list)
    finished: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class _Pending:
    """A trigger with `for:` waiting for its duration to pass unchanged."""

    deadline: float
    automation: Automation
    trigger: dict[str, Any]


class AutomationEngine:
    """Runs the automations in `directory` against a hub (see the module docstring)."""

    def __init__(
        self,
        hub: Hub,
        directory: Path,
        clock: Callable[[], datetime] = datetime.now,
        *,
        notify_topics: Iterable[str] = DEFAULT_NOTIFY_TOPICS,
        max_log: int = 200,
        hub_start_delay: float = 2.0,
    ) -> None:
        """`hub_start_delay`: seconds before hub_start triggers fire, so that the retained
        discovery and state messages of the devices have arrived after connecting."""
        self.hub = hub
        self.directory = Path(directory)
        self.clock = clock
        self.notify_topics = tuple(notify_topics)
        self.automations: list[Automation] = []
        self.errors: list[AutomationError] = []
        self.warnings: list[str] = []
        self.runs: deque[Run] = deque(maxlen=max_log)
        self._lock = threading.RLock()
        self._pending: dict[tuple[str, int, str], _Pending] = {}
        self._running: set[str] = set()
        self._recent: dict[str, deque[float]] = {}
        self._mqtt_filters: set[str] = set()
        self._snapshot: dict[Path, tuple[int, int]] = {}
        self._stop = threading.Event()
        self.actions = StepRunner(hub, self._stop)
        self._thread: threading.Thread | None = None
        self._last_wall: datetime | None = None
        self._subscribed = False
        self.hub_start_delay = hub_start_delay
        self._start_due: float | None = None

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> None:
        """Load, subscribe to state changes and MQTT, fire hub_start, start the scheduler."""
        if self._thread is not None:
            return  # already running
        self.reload()
        if not self._subscribed:
            self.hub.registry.subscribe(self._on_registry_change)
            self._subscribed = True
        self._stop.clear()
        self._last_wall = self.clock()
        self._thread = threading.Thread(target=self._loop, name="automations", daemon=True)
        self._start_due = time.monotonic() + self.hub_start_delay
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None

    def reload(self) -> None:
        """Read every file again; invalid automations are reported and left out."""
        known = self._known_entities()
        self._snapshot = scan(self.directory)
        automations, errors, warnings = load_all(sorted(self._snapshot), known, self.notify_topics)
        for error in errors:
            log.error("automation rejected: %s", error)
        for warning in warnings:
            log.warning("automation: %s", warning)
        with self._lock:
            self.automations = automations
            self.errors, self.warnings = errors, warnings
            self._pending.clear()  # durations restart against the new definitions
        for automation in automations:
            for trigger in automation.triggers:
                if trigger.platform == "mqtt":
                    self._subscribe(trigger.options["topic"])
        log.info("%d automation(s) loaded from %s", len(automations), self.directory)

    def _known_entities(self) -> set[str]:
        """Entities in the registry or declared in the hub's home files: at start-up,
        discovery has not announced the devices yet, and they are not unknown."""
        known = {e.entity_id for e in self.hub.registry.all()}
        for path in self.hub.cfg.homes:
            try:
                known.update(e.entity_id for e in load_home(expand(path)).entities)
            except (OSError, ValueError) as exc:
                log.debug("home file %s not readable for entity checks: %s", path, exc)
        return known

    # -- the scheduler thread ------------------------------------------------------------
    def _loop(self) -> None:
        next_poll = time.monotonic() + POLL_S
        while not self._stop.wait(TICK_S):
            try:
                self._tick()
                if time.monotonic() >= next_poll:
                    next_poll = time.monotonic() + POLL_S
                    if scan(self.directory) != self._snapshot:
                        log.info("automation files changed; reloading")
                        self.reload()
            except Exception:  # noqa: BLE001 - the scheduler must outlive any one bug
                log.exception("automation scheduler tick failed")

    def _tick(self) -> None:
        now_mono = time.monotonic()
        with self._lock:
            due = [k for k, p in self._pending.items() if p.deadline <= now_mono]
            fired = [self._pending.pop(k) for k in due]
        for pending in fired:
            self._fire(pending.automation, pending.trigger)
        if self._start_due is not None and now_mono >= self._start_due:
            self._start_due = None
            for automation in list(self.automations):
                if any(t.platform == "hub_start" for t in automation.triggers):
                    self._fire(automation, {"platform": "hub_start"})
        now = self.clock()
        last = self._last_wall or now
        self._last_wall = now
        if now <= last:
            return
        last = max(last, now - MAX_CATCH_UP)
        for automation, info in due_clock_triggers(list(self.automations), last, now):
            self._fire(automation, info)

    # -- state and MQTT triggers -------------------------------------------------------
    def _on_registry_change(self, kind: str, entity: Entity, changed: dict[str, Any]) -> None:
        """Runs in the thread that changed the state (usually MQTT's): decide, never act."""
        if kind != "state" or self._stop.is_set():
            return
        for automation in list(self.automations):
            for index, trigger in enumerate(automation.triggers):
                watched = trigger.platform in ("state", "numeric_state")
                if watched and entity.entity_id in trigger.entity_ids:
                    self._state_trigger(automation, index, trigger, entity, changed)

    def _state_trigger(
        self,
        automation: Automation,
        index: int,
        trigger: Trigger,
        entity: Entity,
        changed: dict[str, Any],
    ) -> None:
        options = trigger.options
        key = options.get("attribute") or "state"
        if key not in changed:
            return
        old, new = changed[key], entity.state.get(key)
        numeric = trigger.platform == "numeric_state"
        fires = (
            numeric_change_fires(options, old, new)
            if numeric
            else state_change_fires(options, old, new)
        )
        holds = numeric_holds(options, new) if numeric else state_matches(options, new)
        info = {"platform": trigger.platform, "entity_id": entity.entity_id, "from": old, "to": new}
        if trigger.for_s is None:
            if fires:
                self._fire(automation, info)
            return
        pending_key = (automation.id, index, entity.entity_id)
        with self._lock:
            pending = self._pending.get(pending_key)
            # A state trigger without `to` waits for any new state to last: restart on change.
            if pending is not None and (not holds or (not numeric and "to" not in options)):
                del self._pending[pending_key]
                pending = None
            if fires and pending is None:
                self._pending[pending_key] = _Pending(
                    time.monotonic() + trigger.for_s, automation, {**info, "for_s": trigger.for_s}
                )

    def _subscribe(self, topic_filter: str) -> None:
        # The client has no unsubscribe: subscribe each filter once, match against the
        # current automations when a message comes.
        if topic_filter in self._mqtt_filters:
            return
        self._mqtt_filters.add(topic_filter)

        def on_message(topic: str, payload: bytes, retained: bool) -> None:
            self._on_mqtt(topic_filter, topic, payload, retained)

        self.hub.mqtt.subscribe(topic_filter, on_message)

    def _on_mqtt(self, topic_filter: str, topic: str, payload: bytes, retained: bool) -> None:
        if retained or self._stop.is_set():
            return  # an old message replayed on subscribe is not an event
        text = payload.decode("utf-8", "replace")
        for automation in list(self.automations):
            for trigger in automation.triggers:
                if trigger.platform != "mqtt" or trigger.options["topic"] != topic_filter:
                    continue
                if "payload" in trigger.options and trigger.options["payload"] != text.strip():
                    continue
                if mqtt.topic_matches_sub(topic_filter, topic):
                    self._fire(automation, {"platform": "mqtt", "topic": topic, "payload": text})

    # -- running -----------------------------------------------------------------------
    def _fire(self, automation: Automation, trigger: dict[str, Any]) -> None:
        """Check conditions and damping, then run the actions in a worker thread."""
        try:
            if not check_all(automation.conditions, self.hub.registry, self.clock()):
                log.debug("automation %s: conditions not met", automation.id)
                return
        except Exception:  # noqa: BLE001 - a bad condition must not stop the caller's thread
            log.exception("automation %s: condition check failed", automation.id)
            return
        run = Run(automation.id, trigger)
        now = time.monotonic()
        with self._lock:
            recent = self._recent.setdefault(automation.id, deque())
            while recent and recent[0] <= now - 60.0:
                recent.popleft()
            if len(recent) >= automation.max_runs_per_minute:
                run.status = "damped"
            elif automation.mode == "single" and automation.id in self._running:
                run.status = "busy"
            else:
                recent.append(now)
                self._running.add(automation.id)
            self.runs.append(run)
        if run.status == "damped":
            log.warning(
                "automation %s: more than %d runs in a minute; this trigger is dropped",
                automation.id,
                automation.max_runs_per_minute,
            )
            return
        if run.status == "busy":
            log.info(
                "automation %s is still running; trigger ignored (mode: single)", automation.id
            )
            return
        log.info("automation %s fired by %s", automation.id, trigger.get("platform"))
        worker = threading.Thread(
            target=self._run,
            args=(automation, run),
            name=f"automation-{automation.id}",
            daemon=True,
        )
        worker.start()

    def _run(self, automation: Automation, run: Run) -> None:
        requester = f"{CHANNEL}:{automation.id}"
        statuses: set[str] = set()
        try:
            for step in automation.actions:
                if self._stop.is_set():
                    statuses.add("error")
                    run.steps.append({"kind": step.kind, "status": "stopped"})
                    break
                record = self.actions.step(automation, requester, step.kind, step.value)
                record["line"] = step.line
                run.steps.append(record)
                statuses.add(record["status"])
        except Exception as exc:  # noqa: BLE001 - one broken run must not kill the engine
            log.exception("automation %s failed", automation.id)
            run.steps.append({"kind": "error", "status": "error", "detail": str(exc)})
            statuses.add("error")
        finally:
            run.status = next((s for s in ("error", "refused") if s in statuses), "done")
            run.finished = time.time()
            with self._lock:
                self._running.discard(automation.id)
