"""Fault: 10,000 malformed or hostile messages interleaved with valid device traffic.

The realistic threat under the generated ACLs is a compromised device: it can publish
anything on its own topics (state, availability, discovery config), nothing elsewhere. A
second, rogue account shows what the broker refuses. The hub must stay up, process every
valid state update, count the bad messages, log each kind once, and keep memory bounded.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import time
from collections.abc import Iterator

import paho.mqtt.client as paho
import pytest
from conftest import BrokerEnv, make_broker_env
from faultkit import hub_config, rss_mb, wait_for, write_home

from hubagent.app import Hub
from hubagent.mqtt.client import MqttClient
from hubagent.sim.simulator import Simulator

HOSTILE = 10_000
HUGE_BYTES = 1_000_000
PLUG = "home/lab_plug"
DISC = "homeassistant"


def hostile_message(i: int) -> tuple[str, str, bytes]:
    """(kind, topic, payload) of the i-th hostile message; all on the plug's own topics."""
    kind = KINDS[i % len(KINDS)]
    obj = f"x{i % 4}"  # a few topics only: the log-once keys are per topic
    if i % 1000 == 999:
        return "huge_state", f"{PLUG}/state", b'{"state":"' + b"A" * HUGE_BYTES + b'"}'
    if kind == "bad_json_state":
        return kind, f"{PLUG}/state", b'{"state": "ON", '
    if kind == "wrong_types_state":
        return kind, f"{PLUG}/state", json.dumps({"state": [1, 2], "power": {"x": None}}).encode()
    if kind == "binary_state":
        return kind, f"{PLUG}/state", b"\xff\xfe" + os.urandom(64)
    if kind == "bad_json_config":
        return kind, f"{DISC}/switch/lab_plug/{obj}/config", b'{"name": "x", "command_topic": '
    if kind == "wrong_types_config":
        cfg = {"name": {"a": 1}, "command_topic": 12, "state_topic": ["x"]}
        return kind, f"{DISC}/switch/lab_plug/{obj}/config", json.dumps(cfg).encode()
    if kind == "binary_config":
        return kind, f"{DISC}/light/lab_plug/{obj}/config", b"\xff" + os.urandom(32)
    if kind == "hijack_config":  # a "switch" that would really drive the front door lock
        cfg = {
            "name": "Lab fan",
            "command_topic": "home/front_door/set",
            "unique_id": f"evil_{obj}",
            "device": {"identifiers": ["evil_plug"]},
        }
        return kind, f"{DISC}/switch/lab_plug/{obj}/config", json.dumps(cfg).encode()
    if kind == "prefix_config":  # commands into the discovery prefix: rewrite others' configs
        cfg = {
            "name": "Echo",
            "command_topic": f"{DISC}/lock/front_door/front_door/config",
            "unique_id": f"echo_{obj}",
        }
        return kind, f"{DISC}/switch/lab_plug/{obj}/config", json.dumps(cfg).encode()
    return (
        "wildcard_cmd_config",
        f"{DISC}/switch/lab_plug/{obj}/config",
        json.dumps({"name": "w", "command_topic": "home/+/set"}).encode(),
    )


KINDS = (
    "bad_json_state",
    "wrong_types_state",
    "binary_state",
    "bad_json_config",
    "wrong_types_config",
    "binary_config",
    "hijack_config",
    "prefix_config",
    "wildcard_cmd_config",
)
COUNTED = {  # which counter each kind must raise
    "binary_state": "bad_state",
    "bad_json_config": "bad_config",
    "wrong_types_config": "bad_config",
    "binary_config": "bad_config",
    "wildcard_cmd_config": "bad_config",
    "hijack_config": "rejected",
    "prefix_config": "bad_config",  # reserved topics are refused when the config is parsed
}


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[BrokerEnv, Simulator, Hub]]:
    tmp = tmp_path_factory.mktemp("hostile")
    home = write_home(tmp)
    env = make_broker_env(tmp / "broker", ["lab_lamp", "front_door", "lab_plug", "rogue"])
    sim = Simulator(home, env.mqtt_config, tick_interval=None)
    sim.start()
    hub = Hub(hub_config(env.mqtt_config(), tmp / "hub.db", (str(home),)))
    assert hub.start(wait=10)
    wait_for(lambda: all(hub.registry.get(e) and hub.registry.get(e).state for e in sim.devices))
    yield env, sim, hub
    hub.stop()
    sim.stop()
    env.close()


def test_hostile_flood_is_counted_logged_once_and_valid_traffic_flows(
    setup: tuple[BrokerEnv, Simulator, Hub], caplog: pytest.LogCaptureFixture
) -> None:
    env, sim, hub = setup
    caplog.set_level(logging.INFO, logger="hubagent")
    brightness_seen: list[int] = []
    hub.registry.subscribe(
        lambda kind, entity, changed: (
            brightness_seen.append(entity.state.get("brightness"))
            if kind == "state" and entity.entity_id == "light.lab_lamp" and "brightness" in changed
            else None
        )
    )
    front_door = hub.registry.get("lock.front_door")
    entities_before = {e.entity_id for e in hub.registry.all()}
    counters_before = dict(hub.discovery.counters)
    reconnects_before = hub.mqtt.stats.reconnects
    gc.collect()
    rss_before = rss_mb()

    # The compromised plug: its own connection (client ids are bound to accounts, so a
    # second login with the plug's account would only kick the first).
    evil = sim.client("switch.lab_plug")
    sent: dict[str, int] = {}
    valid_brightness: list[int] = []
    started = time.monotonic()
    for i in range(HOSTILE):
        kind, topic, payload = hostile_message(i)
        result = evil.publish(topic, payload, qos=1, timeout=10 if kind == "huge_state" else None)
        assert result.ok, (kind, result.reason)
        sent[kind] = sent.get(kind, 0) + 1
        if i % 100 == 50:  # valid traffic: the lamp's own state and the plug's real state
            level = len(valid_brightness) % 99 + 1  # percent, never twice in a row
            valid_brightness.append(level)
            raw = round(level * 254 / 100)  # the firmware's own 0-254 scale
            sim.set_device_state("light.lab_lamp", {"brightness": raw})
            evil.publish(f"{PLUG}/state", "ON" if level % 2 else "OFF", qos=1)
    # A last, counted message: once it is counted, everything before it was handled.
    evil.publish(f"{DISC}/switch/lab_plug/last/config", b"not json", qos=1)
    expected = {k: 0 for k in ("bad_state", "bad_config", "rejected")}
    for kind, n in sent.items():
        if kind in COUNTED:
            expected[COUNTED[kind]] += n
    expected["bad_config"] += 1
    wait_for(
        lambda: all(
            hub.discovery.counters[k] - counters_before[k] >= n for k, n in expected.items()
        ),
        timeout=60,
    )
    flood_s = time.monotonic() - started
    wait_for(
        lambda: hub.registry.get("light.lab_lamp").state.get("brightness") == valid_brightness[-1]
    )
    gc.collect()
    rss_after = rss_mb()

    # The rogue account: other devices' topics are refused by the broker (MQTT 5 PUBACK
    # 0x87), wildcards and NUL are refused before they leave the client.
    rogue = MqttClient(env.mqtt_config("rogue"), status_topic=None)
    rogue.start()
    assert rogue.wait_connected(10)
    denied = rogue.publish("home/front_door/state", '{"state":"unlocked"}', qos=1, timeout=5)
    denied_cmd = rogue.publish("home/front_door/set", "UNLOCK", qos=1, timeout=5)
    wild = rogue.publish("home/rogue/+", "x", qos=1)
    # NUL passes paho; mosquitto treats it as a malformed packet and drops the connection.
    nul = rogue.publish("home/rogue/state\x00evil", "x", qos=1, timeout=3)
    wait_for(lambda: not rogue.connected or rogue.stats.reconnects > 0, timeout=5)
    rogue.stop()
    raw = paho.Client(paho.CallbackAPIVersion.VERSION2)
    with pytest.raises(ValueError):
        raw.publish("home/#", b"x")

    delta = {k: hub.discovery.counters[k] - counters_before[k] for k in expected}
    hub_warnings = [
        r for r in caplog.records if r.levelno >= logging.WARNING and r.name.startswith("hubagent")
    ]
    print(
        f"\nhostile flood: {HOSTILE} messages ({sent}) + {len(valid_brightness)} x 2 valid, "
        f"handled in {flood_s:.1f} s; counters +{delta} (expected {expected}); "
        f"{len(hub_warnings)} hub warning lines; RSS {rss_before:.1f} -> {rss_after:.1f} MB "
        f"(+{rss_after - rss_before:.1f}); rogue: state {denied.reason!r}, "
        f"command {denied_cmd.reason!r}, wildcard {wild.reason!r}, NUL {nul.reason!r}"
    )
    assert delta["bad_config"] == expected["bad_config"]
    assert delta["rejected"] == expected["rejected"]
    # Non-UTF-8 state is counted; unparseable JSON state too once the gap tested below is
    # closed, so the state count lies between the two.
    state_sent = sum(n for k, n in sent.items() if k.endswith("_state"))
    assert expected["bad_state"] <= delta["bad_state"] <= state_sent
    assert brightness_seen == valid_brightness  # every valid update, in order
    assert hub.registry.get("switch.lab_plug").state["state"] == (
        "on" if valid_brightness[-1] % 2 else "off"
    )
    # Nothing hijacked: no new entity, the lock untouched, nobody drove its topic.
    assert {e.entity_id for e in hub.registry.all()} == entities_before
    assert hub.registry.get("lock.front_door").state == front_door.state
    assert all(t != "home/front_door/set" for t, _ in sim.received)
    assert not denied.ok and not denied_cmd.ok and not wild.ok and not nul.ok
    # Still up and connected throughout; logged per kind and topic, not per message.
    assert hub.mqtt.connected and hub.mqtt.stats.reconnects == reconnects_before
    assert len(hub_warnings) < 100, [r.getMessage()[:120] for r in hub_warnings[:20]]
    assert rss_after - rss_before < 50
    reply = hub.agent.handle("turn on the lab lamp", requester="t")
    assert reply.actions
    wait_for(lambda: sim.device("light.lab_lamp").ha_state().get("state") == "on")


def test_unparseable_state_payloads_are_counted(setup: tuple[BrokerEnv, Simulator, Hub]) -> None:
    _env, sim, hub = setup
    before = hub.discovery.counters["bad_state"]
    device = sim.client("light.lab_lamp")  # the lamp's own connection
    for payload in (b'{"state": "ON", ', b'{"state": [1, 2]}', b"[1, 2]"):
        assert device.publish("home/lab_lamp/state", payload, qos=1, timeout=5).ok
    # A valid update last: once it is applied, the three bad ones were handled.
    assert device.publish(
        "home/lab_lamp/state", b'{"state": "ON", "brightness": 127}', qos=1, timeout=5
    ).ok
    wait_for(lambda: hub.registry.get("light.lab_lamp").state.get("brightness") == 50)
    assert hub.discovery.counters["bad_state"] - before == 3


def test_a_null_value_is_not_counted_as_malformed() -> None:
    """`"preset_mode": null` means "no preset" (as zigbee2mqtt fans send it), not garbage."""
    from hubagent.home.registry import Registry
    from hubagent.mqtt.state import DiscoveryManager

    manager = DiscoveryManager(Registry())
    config = {
        "name": "Fan",
        "command_topic": "home/fan/set",
        "state_topic": "home/fan/state",
        "preset_mode_state_topic": "home/fan/state",
        "preset_mode_command_topic": "home/fan/preset/set",
        "preset_mode_value_template": "{{ value_json.preset_mode }}",
        "value_template": "{{ value_json.state }}",
        "preset_modes": ["eco"],
        "unique_id": "fan1",
    }
    manager.handle_message("homeassistant/fan/fan/fan/config", json.dumps(config).encode())
    manager.handle_message("home/fan/state", b'{"state": "ON", "preset_mode": null}')
    assert manager.counters["bad_state"] == 0
    manager.handle_message("home/fan/state", b"\xff garbage")
    assert manager.counters["bad_state"] >= 1
