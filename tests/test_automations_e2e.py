"""Automations in the running hub over a real TLS mosquitto with the simulated demo home:
state, numeric `for:`, MQTT and hub_start triggers reach the simulated devices, notify
messages arrive on hubagent/..., files reload without a restart (a broken one is reported
while the others keep running), storms are damped, and a rule that tries to unlock the
front door is refused by policy and audited."""

from __future__ import annotations

import textwrap
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from conftest import BrokerEnv
from demohome import DEMO_HOME, wait_for

from hubagent.app import Hub
from hubagent.automations import AutomationEngine
from hubagent.automations.actions import StepRunner
from hubagent.automations.model import Automation
from hubagent.config import Config, LlmConfig, PolicyConfig, StoreConfig
from hubagent.sim.simulator import Simulator

ROOT = Path(__file__).resolve().parents[1]
DOOR = "binary_sensor.front_door_contact"


@pytest.fixture(scope="module")
def hub(env: BrokerEnv, sim: Simulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    db = tmp_path_factory.mktemp("auto-db") / "hub.db"
    cfg = Config(
        homes=(str(DEMO_HOME),),
        mqtt=env.mqtt_config(client_id="hubagent-auto-e2e"),
        llm=LlmConfig(backend="none"),
        store=StoreConfig(path=str(db), encryption_key="automation test passphrase"),
    )
    running = Hub(cfg)
    assert running.start(wait=10)
    wait_for(lambda: len(running.registry) >= len(sim.devices) and running.registry.get(DOOR))
    wait_for(lambda: running.registry.get(DOOR).state.get("state") == "off")
    yield running
    running.stop()


@pytest.fixture
def notes(hub: Hub) -> list[tuple[str, str]]:
    """Every message on hubagent/notify/+ (one level: the tests' own events lie deeper, and an
    overlapping subscription would deliver them twice), received back from the broker."""
    received: list[tuple[str, str]] = []
    hub.mqtt.subscribe("hubagent/notify/+", lambda t, p, r: received.append((t, p.decode())))
    time.sleep(0.1)  # the SUBACK (a handler-only subscribe does not wait for it)
    return received


@pytest.fixture
def engine(hub: Hub, tmp_path: Path) -> Iterator[AutomationEngine]:
    directory = tmp_path / "automations"
    directory.mkdir()
    running = AutomationEngine(hub, directory, hub_start_delay=0.0)
    yield running
    running.stop()


def write(engine: AutomationEngine, name: str, text: str) -> Path:
    path = engine.directory / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def set_door(sim: Simulator, hub: Hub, state: str) -> None:
    sim.set_device_state(DOOR, {"contact": state != "on"})
    wait_for(lambda: hub.registry.get(DOOR).state.get("state") == state)


def done_runs(engine: AutomationEngine, automation: str) -> list:
    return [r for r in engine.runs if r.automation == automation and r.status != "running"]


def test_the_examples_load_against_the_live_demo_home(hub: Hub) -> None:
    examples = AutomationEngine(hub, ROOT / "automations")
    examples.reload()  # loaded only: their clock triggers must not act on the shared home
    assert examples.errors == [] and examples.warnings == []
    assert len(examples.automations) >= 6


def test_state_trigger_reaches_the_device_and_is_audited(
    hub: Hub, sim: Simulator, engine: AutomationEngine
) -> None:
    hub.agent.handle("turn off the hall light", requester="t")
    wait_for(lambda: sim.device("light.hallway").ha_state()["state"] == "off")
    write(
        engine,
        "door.yaml",
        f"""
        id: door_light
        trigger:
          - platform: state
            entity_id: {DOOR}
            to: on
        action:
          - action: {{entity: light.hallway, action: turn_on}}
        """,
    )
    engine.start()
    assert [a.id for a in engine.automations] == ["door_light"]
    set_door(sim, hub, "on")
    wait_for(lambda: sim.device("light.hallway").ha_state()["state"] == "on")
    (run,) = wait_for(lambda: done_runs(engine, "door_light"))
    assert run.status == "done" and run.trigger["to"] == "on"
    assert run.steps[0]["actions"] == [{"entity": "light.hallway", "action": "turn_on", "args": {}}]
    audit = next(e for e in hub.store.audit_entries(20) if e.requester == "automation:door_light")
    assert audit.channel == "automation" and audit.decision == "executed"
    set_door(sim, hub, "off")  # closing does not fire a rule that waits for "on"
    time.sleep(0.3)
    assert len(done_runs(engine, "door_light")) == 1


def test_for_durations_fire_only_when_the_state_holds(
    hub: Hub, sim: Simulator, engine: AutomationEngine, notes: list[tuple[str, str]]
) -> None:
    sim.set_device_state("sensor.living_room_temperature", {"temperature": 21.5})
    wait_for(lambda: hub.registry.get("sensor.living_room_temperature").state["state"] == 21.5)
    write(
        engine,
        "held.yaml",
        f"""
        - id: door_held
          trigger:
            - {{platform: state, entity_id: {DOOR}, to: "on", for: 0.4}}
          action:
            - notify: {{topic: hubagent/notify/door, message: held open}}
        - id: cool
          trigger:
            - platform: numeric_state
              entity_id: sensor.living_room_temperature
              below: 20
              for: {{seconds: 0.3}}
          action:
            - notify: {{topic: hubagent/notify/cool, message: {{below: 20}}}}
        """,
    )
    engine.start()
    set_door(sim, hub, "on")
    set_door(sim, hub, "off")  # closed again well within 0.4 s
    time.sleep(0.8)
    assert done_runs(engine, "door_held") == []
    opened = time.monotonic()
    set_door(sim, hub, "on")
    wait_for(lambda: ("hubagent/notify/door", "held open") in notes)
    assert time.monotonic() - opened >= 0.4
    set_door(sim, hub, "off")

    sim.set_device_state("sensor.living_room_temperature", {"temperature": 19.4})
    time.sleep(0.1)  # still below: the wait continues, it does not restart or fire twice
    sim.set_device_state("sensor.living_room_temperature", {"temperature": 19.2})
    wait_for(lambda: ("hubagent/notify/cool", '{"below": 20}') in notes)
    time.sleep(0.4)
    assert len(done_runs(engine, "cool")) == 1
    sim.set_device_state("sensor.living_room_temperature", {"temperature": 21.5})


def test_mqtt_trigger_say_and_damping(
    hub: Hub, sim: Simulator, engine: AutomationEngine, notes: list[tuple[str, str]]
) -> None:
    write(
        engine,
        "button.yaml",
        """
        id: coffee_button
        max_runs_per_minute: 2
        mode: parallel
        trigger:
          - {platform: mqtt, topic: "hubagent/notify/test/+/button", payload: pressed}
        action:
          - say: turn on the coffee machine
          - notify: {topic: hubagent/notify/coffee, message: coffee}
        """,
    )
    engine.start()
    hub.mqtt.publish("hubagent/notify/test/kitchen/button", "released")  # payload must match
    hub.mqtt.publish("hubagent/notify/test/kitchen/button", "pressed")
    wait_for(lambda: sim.device("switch.coffee_machine").ha_state()["state"] == "on")
    (run,) = wait_for(lambda: done_runs(engine, "coffee_button"))
    assert run.trigger["topic"] == "hubagent/notify/test/kitchen/button"
    assert run.steps[0]["actions"][0]["entity"] == "switch.coffee_machine"
    for _ in range(4):
        hub.mqtt.publish("hubagent/notify/test/hall/button", "pressed")
    wait_for(lambda: len([r for r in engine.runs if r.automation == "coffee_button"]) == 5)
    statuses = [r.status for r in engine.runs if r.automation == "coffee_button"]
    assert statuses.count("damped") == 3
    wait_for(lambda: len([n for n in notes if n[0] == "hubagent/notify/coffee"]) == 2)


def test_hot_reload_and_a_broken_file(
    hub: Hub, engine: AutomationEngine, notes: list[tuple[str, str]]
) -> None:
    engine.start()
    assert engine.automations == []
    write(
        engine,
        "ping.yaml",
        """
        id: ping
        trigger: [{platform: mqtt, topic: hubagent/notify/test/ping}]
        action: [{notify: {topic: hubagent/notify/pong, message: pong}}]
        """,
    )
    wait_for(lambda: [a.id for a in engine.automations] == ["ping"], timeout=5)
    hub.mqtt.publish("hubagent/notify/test/ping", "1")
    wait_for(lambda: ("hubagent/notify/pong", "pong") in notes)
    broken = write(
        engine,
        "broken.yaml",
        """
        id: broken
        trigger:
          - platform: state
            entity_id: light.hallway
            for: soon
        action: [{say: hi}]
        """,
    )
    wait_for(lambda: engine.errors, timeout=5)
    assert [str(e) for e in engine.errors] == [
        f"{broken}:6: 'for': invalid duration 'soon' (use 'HH:MM:SS', seconds or {{minutes: 5}})"
    ]
    assert [a.id for a in engine.automations] == ["ping"]
    hub.mqtt.publish("hubagent/notify/test/ping", "2")
    wait_for(lambda: notes.count(("hubagent/notify/pong", "pong")) == 2)
    write(  # a device the hub does not know yet: a warning, and the rule loads
        engine,
        "later.yaml",
        """
        id: later
        trigger: [{platform: state, entity_id: light.not_yet_discovered}]
        action: [{notify: {topic: hubagent/notify/later, message: x}}]
        """,
    )
    wait_for(lambda: "later" in [a.id for a in engine.automations], timeout=5)
    assert any(
        "later.yaml:3: unknown entity 'light.not_yet_discovered'" in w for w in engine.warnings
    )


def test_unlocking_is_refused_by_policy_and_audited(
    hub: Hub, sim: Simulator, engine: AutomationEngine
) -> None:
    hub.agent.handle("lock the front door", requester="t")
    wait_for(lambda: sim.device("lock.front_door").ha_state()["state"] == "locked")
    before = len(sim.received)
    write(
        engine,
        "unlock.yaml",
        """
        - id: unlock_on_arrival
          allow_sensitive: true   # not enough: the hub config does not list it
          trigger: [{platform: mqtt, topic: hubagent/notify/presence/alice, payload: home}]
          action:
            - action: {entity: lock.front_door, action: unlock}
        - id: sneaky
          trigger: [{platform: hub_start}]
          action:
            - say: unlock the front door
        """,
    )
    engine.start()
    hub.mqtt.publish("hubagent/notify/presence/alice", "home")
    (run,) = wait_for(lambda: done_runs(engine, "unlock_on_arrival"))
    (sneaky,) = wait_for(lambda: done_runs(engine, "sneaky"))
    assert run.status == "refused" and "policy.trusted_automations" in run.steps[0]["reason"]
    assert sneaky.status == "refused" and "allow_sensitive" in sneaky.steps[0]["reason"]
    assert not hub.policy.has_pending("automation:sneaky")  # nobody can say "yes" for it
    assert hub.agent.handle("yes", requester="automation:sneaky").actions == []
    time.sleep(0.3)
    assert sim.device("lock.front_door").ha_state()["state"] == "locked"
    assert b"UNLOCK" not in [p for t, p in sim.received[before:] if t == "home/front_door/set"]
    assert len(done_runs(engine, "unlock_on_arrival")) == 1, [r.to_dict() for r in engine.runs]
    audit = {e.requester: e for e in hub.store.audit_entries(50) if e.decision == "refused"}
    assert audit["automation:unlock_on_arrival"].channel == "automation"
    assert "may not run a sensitive action" in audit["automation:unlock_on_arrival"].reason
    assert "automation:sneaky" in audit


@dataclass(frozen=True)
class _TrustingPolicy(PolicyConfig):
    """PolicyConfig with the field the lead adds (`trusted_automations`)."""

    trusted_automations: tuple[str, ...] = ("trusted_unlock",)


def test_a_trusted_rule_may_unlock(hub: Hub, sim: Simulator, engine: AutomationEngine) -> None:
    hub.agent.handle("lock the front door", requester="t")
    wait_for(lambda: sim.device("lock.front_door").ha_state()["state"] == "locked")
    write(
        engine,
        "trusted.yaml",
        """
        id: trusted_unlock
        allow_sensitive: true
        trigger: [{platform: mqtt, topic: hubagent/notify/presence/bob, payload: home}]
        action: [{action: {entity: lock.front_door, action: unlock}}]
        """,
    )
    original = hub.cfg
    hub.cfg = replace(original, policy=_TrustingPolicy())
    try:
        engine.start()
        hub.mqtt.publish("hubagent/notify/presence/bob", "home")
        wait_for(lambda: sim.device("lock.front_door").ha_state()["state"] == "unlocked")
        (run,) = wait_for(lambda: done_runs(engine, "trusted_unlock"))
        assert run.status == "done"
        audit = next(
            e for e in hub.store.audit_entries(20) if e.requester == "automation:trusted_unlock"
        )
        assert audit.decision == "confirmed"
    finally:
        hub.cfg = original
        hub.agent.handle("lock the front door", requester="t")


def test_clock_and_cron_triggers_with_an_injected_clock(
    hub: Hub, tmp_path: Path, notes: list[tuple[str, str]]
) -> None:
    now = [datetime(2026, 3, 2, 6, 59, 58)]  # a Monday
    directory = tmp_path / "clock"
    directory.mkdir()
    engine = AutomationEngine(hub, directory, clock=lambda: now[0])
    write(
        engine,
        "clock.yaml",
        """
        - id: morning
          trigger: [{platform: time, at: "07:00"}]
          condition: [{condition: time, weekday: [mon, tue, wed, thu, fri]}]
          action: [{notify: {topic: hubagent/notify/clock, message: morning}}]
        - id: every_five
          trigger: [{platform: time_pattern, cron: "*/5 7 * * *"}]
          action: [{notify: {topic: hubagent/notify/clock, message: five}}]
        """,
    )
    engine.start()
    try:
        time.sleep(0.3)
        assert notes == []
        now[0] += timedelta(seconds=3)  # 07:00:01: both fire, once
        wait_for(lambda: sorted(n[1] for n in notes) == ["five", "morning"])
        now[0] += timedelta(minutes=4, seconds=58)  # 07:04:59: nothing
        time.sleep(0.3)
        now[0] += timedelta(seconds=2)  # 07:05:01: the cron again
        wait_for(lambda: [n[1] for n in notes].count("five") == 2)
        now[0] += timedelta(days=5)  # Saturday 07:05: the weekday condition holds it back
        time.sleep(0.3)
        assert [n[1] for n in notes].count("morning") == 1
    finally:
        engine.stop()


def test_before_discovery_home_file_devices_are_not_unknown(env: BrokerEnv, tmp_path: Path) -> None:
    """At start-up the registry is still empty (discovery comes after connecting): entities
    declared in the hub's home files must not be reported as unknown."""
    cfg = Config(
        homes=(str(DEMO_HOME),),
        mqtt=env.mqtt_config(port=1, client_id="never-connects"),
        llm=LlmConfig(backend="none"),
        store=StoreConfig(path=str(tmp_path / "offline.db"), encryption_key="k"),
    )
    offline = Hub(cfg)
    try:
        assert offline.registry.get("light.hallway") is None  # not discovered yet
        examples = AutomationEngine(offline, ROOT / "automations")
        examples.reload()
        assert examples.errors == [] and examples.warnings == []
    finally:
        offline.stop()


def test_notify_cannot_publish_requests(
    hub: Hub, sim: Simulator, engine: AutomationEngine, notes: list[tuple[str, str]]
) -> None:
    """Issue 14, attack 6: a rule without allow_sensitive notify-publishing "unlock the
    front door" and "yes" to the request topic. Refused at load (file:line) and at run time."""
    heard: list[bytes] = []
    hub.mqtt.subscribe("hubagent/request", lambda t, p, r: heard.append(p))
    path = write(
        engine,
        "sneaky.yaml",
        """
        id: sneaky
        trigger: [{platform: hub_start}]
        action:
          - notify: {topic: hubagent/request, message: {text: unlock the front door}}
          - notify: {topic: hubagent/request, message: {text: "yes"}}
        """,
    )
    engine.start()
    wait_for(lambda: engine.errors, timeout=5)
    (error,) = engine.errors
    assert str(error).startswith(f"{path}:5: notify topic 'hubagent/request' is outside")
    # A step that did not come from a file (or a file checked with wider notify_topics).
    rule = Automation("sneaky2", "sneaky2", (), (), (), str(path), 1)
    runner = StepRunner(hub, threading.Event())
    for topic in ("hubagent/request", "home/front_door/set", "hubagent/notify/+"):
        step = runner.step(rule, "automation:sneaky2", "notify", {"topic": topic, "message": "x"})
        assert step["status"] == "refused", step
    time.sleep(0.3)
    assert heard == []
    assert sim.device("lock.front_door").ha_state()["state"] == "locked"
