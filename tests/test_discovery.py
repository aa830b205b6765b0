"""MQTT discovery parser and DiscoveryManager: real payloads, HA rules, hostile input."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from hubagent.home.registry import Registry
from hubagent.mqtt.abbreviations import expand_abbreviations
from hubagent.mqtt.discovery import (
    DiscoveryError,
    entity_id_for,
    parse_message,
    parse_topic,
    valid_subscribe_topic,
)
from hubagent.mqtt.state import DiscoveryManager
from hubagent.mqtt.templates import TemplateError, renderer
from hubagent.types import Entity

BENCH = Path(__file__).resolve().parents[2] / "shared" / "benchmarks" / "mqtt-discovery-dev"


def bench_rows() -> list[dict[str, Any]]:
    path = BENCH / "discovery.jsonl"
    if not path.is_file():
        pytest.skip("benchmark folder mqtt-discovery-dev is absent")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def bench_row(topic: str) -> dict[str, Any]:
    rows = [r for r in bench_rows() if r["topic"] == topic]
    if not rows:
        pytest.skip(f"{topic} not in the benchmark")
    return rows[0]


def raw(row: dict[str, Any]) -> bytes:
    text = row.get("payload_raw")
    return (text if isinstance(text, str) else json.dumps(row["payload"])).encode()


def manager() -> tuple[DiscoveryManager, list[str]]:
    subscribed: list[str] = []
    return DiscoveryManager(Registry(), subscribe=subscribed.append), subscribed


def send(m: DiscoveryManager, topic: str, payload: Any) -> None:
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    m.handle_message(topic, data, retained=True)


def only(m: DiscoveryManager, topic: str):
    ids = m.entity_ids(topic)
    assert len(ids) == 1, ids
    return m.registry.get(ids[0])


# -- topics, abbreviations, `~` -------------------------------------------------------
def test_parse_topic_with_and_without_node_id() -> None:
    assert parse_topic("homeassistant/light/node/obj/config") == ("light", "node", "obj")
    assert parse_topic("homeassistant/switch/obj/config") == ("switch", None, "obj")
    assert parse_topic("homeassistant/switch/a/b/c/config") is None
    assert parse_topic("other/switch/obj/config") is None
    assert parse_topic("custom/light/x/config", "custom") == ("light", None, "x")


def test_abbreviations_top_level_device_origin_and_availability() -> None:
    config = expand_abbreviations(
        {
            "cmd_t": "a",
            "stat_t": "b",
            "uniq_id": "u",
            "dev": {"ids": ["x"], "mf": "Acme", "mdl": "M1", "sw": "1.0", "cns": [["mac", "1"]]},
            "o": {"name": "fw", "sw": "2.0", "url": "http://x"},
            "avty": [{"t": "c", "pl_avail": "up"}],
        }
    )
    assert config["command_topic"] == "a" and config["state_topic"] == "b"
    assert config["unique_id"] == "u"
    assert config["device"] == {
        "identifiers": ["x"],
        "manufacturer": "Acme",
        "model": "M1",
        "sw_version": "1.0",
        "connections": [["mac", "1"]],
    }
    assert config["origin"] == {"name": "fw", "sw_version": "2.0", "support_url": "http://x"}
    assert config["availability"] == [{"topic": "c", "payload_available": "up"}]


def test_ha_core_tilde_expansion_case() -> None:
    row = bench_row("homeassistant/switch/bla/config")
    msg = parse_message(row["topic"], raw(row))
    config = msg.components[0].config
    want = row["expected_expanded"]
    assert config["state_topic"] == want["state_topic"]
    assert config["command_topic"] == want["command_topic"]
    assert [a["topic"] for a in config["availability"]] == want["availability_topics"]
    assert config["device"] == want["device"]


def test_tasmota_abbreviated_switch_and_light() -> None:
    m, _ = manager()
    row = bench_row("homeassistant/switch/00FF8D_RL_1/config")
    m.handle_message(row["topic"], raw(row), True)
    switch = only(m, row["topic"])
    assert switch.entity_id == "switch.router_power"
    assert switch.name == "Router Power"
    assert switch.mqtt["command_topic"] == "tasmota_00FF8D/cmnd/POWER"
    assert switch.mqtt["payload_available"] == "Online"
    assert switch.source == "discovery" and switch.unique_id == "00FF8D_RL_1"
    assert switch.available is False  # unavailable until the LWT says Online
    m.handle_message("tasmota_00FF8D/tele/LWT", b"Online")
    assert m.registry.get(switch.entity_id).available is True
    m.handle_message("tasmota_00FF8D/tele/STATE", b'{"POWER":"ON","Wifi":{}}')
    assert m.registry.get(switch.entity_id).state["state"] == "on"
    row = bench_row("homeassistant/light/0B34A1_LI_1/config")
    m.handle_message(row["topic"], raw(row), True)
    light = only(m, row["topic"])
    assert light.mqtt["on_command_type"] == "brightness"
    assert light.attributes["brightness"] == {"min": 0, "max": 100, "unit": "%"}


def test_zigbee2mqtt_json_light_capabilities_and_state() -> None:
    m, subscribed = manager()
    row = bench_row("homeassistant/light/0x000b57fffec6a5b3/light/config")
    m.handle_message(row["topic"], raw(row), True)
    light = only(m, row["topic"])
    assert light.entity_id == "light.bulb_color" and light.name == "bulb_color"
    assert light.mqtt["schema"] == "json"
    assert light.attributes["color_temp"] == {"min": 2000, "max": 6666, "unit": "K"}
    assert light.attributes["color"] == {"modes": ["xy"]}
    assert "brightness" in light.attributes and "set_color_temp" in light.verbs
    assert "zigbee2mqtt/bulb_color" in subscribed and "zigbee2mqtt/bridge/state" in subscribed
    m.handle_message("zigbee2mqtt/bridge/state", b'{"state":"online"}')
    m.handle_message("zigbee2mqtt/bulb_color", b'{"state":"ON","brightness":254,"color_temp":250}')
    state = m.registry.get("light.bulb_color").state
    assert state["state"] == "on" and state["brightness"] == 100 and state["color_temp"] == 4000
    assert m.registry.get("light.bulb_color").available is True


def test_every_benchmark_config_is_accepted() -> None:
    rows = bench_rows()
    m, _ = manager()
    for row in rows:
        m.handle_message(row["topic"], raw(row), True)
    assert m.counters["bad_config"] == 0 and m.counters["rejected"] == 0
    entity_topics = {
        r["topic"]
        for r in rows
        if r["component"] != "device_automation" and r["topic"].startswith("homeassistant/")
    }
    assert len(m.registry) == len(entity_topics)
    assert len({e.entity_id for e in m.registry.all()}) == len(m.registry)


def test_wildcard_state_topic_from_openmqttgateway() -> None:
    m, subscribed = manager()
    row = bench_row("homeassistant/sensor/Acurite-Tower-B-2043-humidity/config")
    m.handle_message(row["topic"], raw(row), True)
    sensor = only(m, row["topic"])
    assert sensor.name == "Acurite-Tower-B-2043 Humidity"
    assert "+/+/RTL_433toMQTT/Acurite-Tower/B/2043" in subscribed
    m.handle_message("home/OMG_1/RTL_433toMQTT/Acurite-Tower/B/2043", b'{"humidity": 41}')
    assert m.registry.get(sensor.entity_id).state["state"] == 41
    # `is_defined` on a missing key is a template error: counted, not raised
    m.handle_message("home/OMG_1/RTL_433toMQTT/Acurite-Tower/B/2043", b'{"rssi": -80}')
    assert m.counters["template_errors"] == 1
    assert m.registry.get(sensor.entity_id).state["state"] == 41


# -- entity ids and names -----------------------------------------------------------
def test_entity_id_rules() -> None:
    assert entity_id_for("light", {"default_entity_id": "switch.Big Lamp"}, "k") == "light.big_lamp"
    assert entity_id_for("light", {"object_id": "kitchen"}, "k") == "light.kitchen"
    named = {"name": "Lamp", "device": {"name": "Desk"}}
    assert entity_id_for("light", named, "k") == "light.desk_lamp"
    assert entity_id_for("sensor", {"unique_id": "AB-12"}, "k") == "sensor.ab_12"
    assert entity_id_for("sensor", {}, "node obj") == "sensor.node_obj"


def test_name_prefixing_and_stable_ids_on_update() -> None:
    m, _ = manager()
    topic = "homeassistant/sensor/dev1/temp/config"
    base = {"state_topic": "d/1", "unique_id": "t1", "device": {"ids": "d1", "name": "Hall"}}
    send(m, topic, {**base, "name": "Temperature"})
    entity = only(m, topic)
    assert entity.name == "Hall Temperature" and entity.entity_id == "sensor.hall_temperature"
    send(m, topic, {**base, "name": "Hall temp"})  # already starts with the device name
    again = only(m, topic)
    assert again.name == "Hall temp" and again.entity_id == "sensor.hall_temperature"
    send(m, topic, {**base, "name": None})
    assert only(m, topic).name == "Hall"


def test_colliding_entity_ids_get_a_suffix() -> None:
    m, _ = manager()
    send(m, "homeassistant/switch/a/config", {"command_topic": "a/set", "object_id": "same"})
    send(m, "homeassistant/switch/b/config", {"command_topic": "b/set", "object_id": "same"})
    assert m.entity_ids("homeassistant/switch/a/config") == ["switch.same"]
    assert m.entity_ids("homeassistant/switch/b/config") == ["switch.same_2"]


# -- device-based discovery, removal, updates -------------------------------------------
DEVICE_TOPIC = "homeassistant/device/hub1/config"


def device_payload(**cmps: Any) -> dict[str, Any]:
    return {
        "~": "home/acct1",
        "dev": {"ids": ["acct1"], "name": "Porch", "mf": "Sim"},
        "o": {"name": "sim", "sw": "1"},
        "stat_t": "~/state",
        "cmd_t": "~/set",
        "avty": [{"t": "~/availability"}],
        "qos": 1,
        "cmps": cmps,
    }


def test_device_based_discovery_shares_options() -> None:
    m, subscribed = manager()
    send(
        m,
        DEVICE_TOPIC,
        device_payload(
            lamp={
                "p": "light",
                "name": "Lamp",
                "schema": "json",
                "uniq_id": "l1",
                "brightness": True,
            },
            temp={"p": "sensor", "name": "Temp", "val_tpl": "{{ value_json.t }}", "uniq_id": "t1"},
        ),
    )
    ids = m.entity_ids(DEVICE_TOPIC)
    assert ids == ["light.porch_lamp", "sensor.porch_temp"]
    lamp = m.registry.get("light.porch_lamp")
    assert lamp.mqtt["command_topic"] == "home/acct1/set"
    assert lamp.mqtt["state_topic"] == "home/acct1/state"
    assert lamp.mqtt["availability"] == [{"topic": "home/acct1/availability"}]
    assert lamp.mqtt["qos"] == 1 and lamp.mqtt["origin"]["sw_version"] == "1"
    assert lamp.device["manufacturer"] == "Sim"
    assert subscribed.count("home/acct1/state") == 1  # shared topic subscribed once
    m.handle_message("home/acct1/availability", b"online")
    m.handle_message("home/acct1/state", b'{"state": "ON", "brightness": 128, "t": 21.5}')
    assert m.registry.get("sensor.porch_temp").state["state"] == 21.5
    assert m.registry.get("light.porch_lamp").state == {"state": "on", "brightness": 50}
    assert m.registry.get("light.porch_lamp").available is True


def test_device_component_removed_by_platform_only_entry_and_by_omission() -> None:
    m, _ = manager()
    lamp = {"p": "light", "name": "Lamp", "uniq_id": "l1"}
    temp = {"p": "sensor", "name": "Temp", "uniq_id": "t1"}
    fan = {"p": "fan", "name": "Fan", "uniq_id": "f1"}
    send(m, DEVICE_TOPIC, device_payload(lamp=lamp, temp=temp, fan=fan))
    assert len(m.registry) == 3
    send(m, DEVICE_TOPIC, device_payload(lamp=lamp, temp={"p": "sensor"}, fan=fan))
    assert "sensor.porch_temp" not in m.registry and len(m.registry) == 2
    send(m, DEVICE_TOPIC, device_payload(lamp=lamp))
    assert m.entity_ids(DEVICE_TOPIC) == ["light.porch_lamp"]
    m.handle_message(DEVICE_TOPIC, b"", True)
    assert len(m.registry) == 0 and m.counters["removed"] == 3


def test_empty_payload_removes_and_changed_config_updates() -> None:
    m, subscribed = manager()
    topic = "homeassistant/switch/plug/config"
    send(m, topic, {"name": "Plug", "command_topic": "p/set", "state_topic": "p/state"})
    send(m, topic, {"name": "Plug", "command_topic": "p/set2", "state_topic": "p/state2"})
    entity = only(m, topic)
    assert entity.mqtt["command_topic"] == "p/set2" and "p/state2" in subscribed
    m.handle_message("p/state", b"ON")  # the old topic no longer feeds the entity
    assert "state" not in m.registry.get(entity.entity_id).state
    m.handle_message(topic, b"", True)
    assert entity.entity_id not in m.registry


# -- availability ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("mode", "after_first", "after_both", "after_one_off"),
    [("all", False, True, False), ("any", True, True, True), ("latest", True, True, False)],
)
def test_availability_modes(mode: str, after_first: bool, after_both: bool, after_one_off: bool):
    m, _ = manager()
    topic = "homeassistant/switch/av/config"
    send(
        m,
        topic,
        {
            "command_topic": "av/set",
            "availability_mode": mode,
            "availability": [
                {"topic": "av/a"},
                {"topic": "av/b", "payload_available": "1", "payload_not_available": "0"},
            ],
        },
    )
    entity_id = only(m, topic).entity_id
    assert m.registry.get(entity_id).available is False
    m.handle_message("av/a", b"online")
    assert m.registry.get(entity_id).available is after_first
    m.handle_message("av/b", b"1")
    assert m.registry.get(entity_id).available is after_both
    m.handle_message("av/b", b"0")
    assert m.registry.get(entity_id).available is after_one_off
    m.handle_message("av/b", b"garbage")  # neither payload: ignored
    assert m.registry.get(entity_id).available is after_one_off


def test_availability_topic_with_template() -> None:
    m, _ = manager()
    topic = "homeassistant/switch/avt/config"
    send(
        m,
        topic,
        {"command_topic": "x/set", "avty_t": "x/avail", "avty_tpl": "{{ value_json.state }}"},
    )
    entity_id = only(m, topic).entity_id
    m.handle_message("x/avail", b'{"state": "online"}')
    assert m.registry.get(entity_id).available is True
    m.handle_message("x/avail", b'{"state": "offline"}')
    assert m.registry.get(entity_id).available is False


def test_birth_message_calls_hooks() -> None:
    m, subscribed = manager()
    calls: list[int] = []
    m.birth_listeners.append(lambda: calls.append(1))
    m.handle_message("homeassistant/status", b"offline")
    m.handle_message("homeassistant/status", b"online")
    assert calls == [1]
    assert "homeassistant/status" in subscribed and "homeassistant/+/+/config" in m.topics()
    assert m.birth_message().topic == "homeassistant/status"


# -- state extraction per platform ---------------------------------------------------
def test_cover_climate_fan_state_from_benchmark_configs() -> None:
    m, _ = manager()
    for topic in (
        "homeassistant/cover/0x0017882104a44562/cover/config",
        "homeassistant/climate/0x0017880104e45550/climate/config",
        "homeassistant/fan/0x00124b00cfcf3298/fan/config",
    ):
        row = bench_row(topic)
        m.handle_message(row["topic"], raw(row), True)
    m.handle_message("zigbee2mqtt/TS0601_cover_switch", b'{"state": "CLOSE", "position": 30}')
    cover = m.registry.get("cover.ts0601_cover_switch").state
    assert cover == {"state": "closed", "position": 30}
    m.handle_message("zigbee2mqtt/fanbee", b'{"state": "ON", "speed": 127}')
    assert m.registry.get("fan.fanbee").state == {"state": "on", "percentage": 50}
    climate = m.registry.get("climate.thermostat")
    state_topic = climate.mqtt["current_temperature_topic"]
    m.handle_message(
        state_topic,
        json.dumps(
            {"local_temperature": 19.5, "occupied_heating_setpoint": 21, "system_mode": "heat"}
        ).encode(),
    )
    state = m.registry.get("climate.thermostat").state
    assert state["current_temperature"] == 19.5 and state["temperature"] == 21
    assert state["state"] == "heat"


def test_json_attributes_and_binary_sensor() -> None:
    m, _ = manager()
    topic = "homeassistant/binary_sensor/door/config"
    send(
        m,
        topic,
        {
            "state_topic": "d/s",
            "payload_on": True,
            "payload_off": False,
            "value_template": "{{ value_json.contact }}",
            "json_attributes_topic": "d/s",
        },
    )
    entity_id = only(m, topic).entity_id
    m.handle_message("d/s", b'{"contact": true, "battery": 90}')
    state = m.registry.get(entity_id).state
    assert state["state"] == "on" and state["attributes"]["battery"] == 90


# -- hostile input --------------------------------------------------------------------
HOSTILE = [
    b"{not json",
    b"[1, 2, 3]",
    b'"just a string"',
    b"\xff\xfe\x00",
    json.dumps({"command_topic": "a/set", "qos": "abc"}).encode(),
    json.dumps({"command_topic": "a/set", "qos": 7}).encode(),
    json.dumps({"command_topic": "a/set", "brightness_scale": "huge"}).encode(),
    json.dumps({"command_topic": "a/set", "device": "not a dict"}).encode(),
    json.dumps({"command_topic": 42}).encode(),
    json.dumps({"command_topic": "a/+/set"}).encode(),
    json.dumps({"command_topic": "a/\u0000/set"}).encode(),
    json.dumps({"state_topic": "a/#/b"}).encode(),
    json.dumps({"command_topic": "a/set", "name": "x" * 100_000}).encode(),
    json.dumps({"command_topic": "a/set", "availability": "nope"}).encode(),
    json.dumps({"command_topic": "a/set", "availability_mode": "sometimes"}).encode(),
    json.dumps({"command_topic": "a/set", "~": 5}).encode(),
    b'{"command_topic": "a/set", "max": NaN}',
    json.dumps({"command_topic": "a/set", "command_template": "{% if %}"}).encode(),
    json.dumps({"command_topic": "a/set", "value_template": ["not", "a", "string"]}).encode(),
    b"{" * 5000,
    b"x" * 200_000,
]


@pytest.mark.parametrize("payload", HOSTILE)
def test_hostile_configs_are_skipped_not_raised(payload: bytes) -> None:
    m, _ = manager()
    m.handle_message("homeassistant/light/evil/config", payload, True)
    assert len(m.registry) == 0
    assert m.counters["bad_config"] == 1
    with pytest.raises(DiscoveryError):
        parse_message("homeassistant/light/evil/config", payload)


def test_unknown_keys_are_kept_and_unknown_components_rejected() -> None:
    """HA ignores extra keys and never subscribes to platforms it does not have."""
    m, _ = manager()
    send(m, "homeassistant/switch/x/config", {"command_topic": "x/set", "frobnicate": [1, {}]})
    send(m, "homeassistant/teleporter/t/config", {"state_topic": "t/s", "name": "Beam"})
    send(m, "homeassistant/media_player/tv/config", {"command_topic": "tv/set", "name": "TV"})
    assert [e.entity_id for e in m.registry.all()] == ["switch.x"]
    assert m.counters["bad_config"] == 2


def test_command_topic_hijack_and_prefix_topics_are_rejected() -> None:
    m, _ = manager()
    lock = {"command_topic": "door/set", "device": {"ids": ["lock1"]}, "name": "Front door"}
    send(m, "homeassistant/lock/front/config", lock)
    evil = {"command_topic": "door/set", "device": {"ids": ["bulb9"]}, "name": "Nice lamp"}
    send(m, "homeassistant/light/evil/config", evil)
    prefix = {"command_topic": "homeassistant/lock/front/config", "name": "Sneaky"}
    send(m, "homeassistant/switch/sneaky/config", prefix)
    assert [e.domain for e in m.registry.all()] == ["lock"]
    # the hijack is rejected by the manager, the prefix topic already when parsed
    assert m.counters["rejected"] == 1 and m.counters["bad_config"] == 1
    # the same device may share a command topic between its entities (z2m does)
    battery = {**lock, "name": "Battery", "state_topic": "door/state"}
    send(m, "homeassistant/sensor/front_batt/config", battery)
    assert len(m.registry) == 2


def test_template_errors_are_warnings() -> None:
    m, _ = manager()
    send(m, "homeassistant/sensor/bad/config", {"state_topic": "b/s", "value_template": "{{ x("})
    assert m.counters["bad_config"] == 1 and len(m.registry) == 0  # rejected, as HA does
    div = {"state_topic": "b/s", "value_template": "{{ 1/0 }}"}
    send(m, "homeassistant/sensor/div/config", div)
    send(m, "homeassistant/sensor/ok/config", {"state_topic": "b/s"})
    m.handle_message("b/s", b"1")
    assert m.counters["template_errors"] == 1
    assert m.registry.get("sensor.ok").state == {"state": 1}
    # the sandbox never exposes Python internals
    assert renderer.render_value("{{ value.__class__ }}", "x") == ""
    with pytest.raises(TemplateError):
        renderer.render_value("{{ value.__class__.__mro__ }}", "x")


def test_subscribe_topic_validation() -> None:
    assert valid_subscribe_topic("a/+/b/#")
    assert not valid_subscribe_topic("a/b#")
    assert not valid_subscribe_topic("a/#/b")
    assert not valid_subscribe_topic("")


def test_template_filters() -> None:
    render = renderer.render_value
    assert render("{{ value | int + 1 }}", "41") == "42"
    assert render("{{ value | float | round(1) }}", "2.345") == "2.3"
    assert render("{{ value_json.a | default('none') }}", "{}") == "none"
    assert render("{{ (value_json.x > 1) | iif('big', 'small') }}", '{"x": 3}') == "big"
    assert render("{{ value | from_json | to_json }}", '{"a": 1}') == '{"a": 1}'
    assert render("{{ value | int('bad') }}", "n/a") == "bad"
    with pytest.raises(TemplateError):
        render("{{ value | int }}", "n/a")


def test_discovery_of_1000_entities_is_fast() -> None:
    m, subscribed = manager()
    messages = []
    for i in range(1000):
        config = {
            "name": None,
            "cmd_t": f"home/dev{i}/set",
            "stat_t": f"home/dev{i}/state",
            "avty_t": f"home/dev{i}/availability",
            "schema": "json",
            "brightness": True,
            "sup_clrm": ["color_temp", "xy"],
            "uniq_id": f"dev{i}_light",
            "dev": {"ids": [f"dev{i}"], "name": f"Device {i}", "mf": "Sim"},
            "val_tpl": "{{ value_json.state_" + str(i) + " }}",  # distinct: worst case for parsing
        }
        messages.append((f"homeassistant/light/dev{i}/light/config", json.dumps(config).encode()))
    started = time.perf_counter()
    for topic, payload in messages:
        m.handle_message(topic, payload, True)
    elapsed = time.perf_counter() - started
    print(f"\ndiscovery of 1000 entities: {elapsed * 1000:.0f} ms")
    assert len(m.registry) == 1000
    assert len(subscribed) == 3 + 2000
    assert elapsed < 2.0


def test_watch_home_file_entity_state() -> None:
    m, subscribed = manager()
    light = Entity(
        "light.kitchen",
        "Kitchen",
        mqtt={"command_topic": "home/k/set", "state_topic": "home/k/state", "schema": "json"},
    )
    m.registry.upsert(light)
    m.watch(light)
    assert "home/k/state" in subscribed
    m.handle_message("home/k/state", b'{"state": "ON", "brightness": 255}')
    assert m.registry.get("light.kitchen").state == {"state": "on", "brightness": 100}


def test_duplicate_unique_id_is_rejected_like_ha() -> None:
    m, _ = manager()
    send(m, "homeassistant/switch/a/config", {"command_topic": "a/set", "unique_id": "same"})
    send(m, "homeassistant/switch/b/config", {"command_topic": "b/set", "unique_id": "same"})
    assert len(m.registry) == 1 and m.counters["rejected"] == 1
    # once the holder is removed, the unique_id is free again
    send(m, "homeassistant/switch/a/config", b"")
    send(m, "homeassistant/switch/b/config", {"command_topic": "b/set", "unique_id": "same"})
    assert m.entity_ids("homeassistant/switch/b/config") == ["switch.same"]


def test_late_entities_get_the_last_message_of_shared_topics() -> None:
    """z2m: every entity shares `bridge/state`; the retained 'online' arrives only once."""
    m, subscribed = manager()
    avty = [{"topic": "bridge/state", "value_template": "{{ value_json.state }}"}]
    first = {"command_topic": "a/set", "state_topic": "dev/state", "availability": avty}
    send(m, "homeassistant/switch/a/config", first)
    m.handle_message("bridge/state", b'{"state": "online"}', True)
    m.handle_message("dev/state", b'{"temperature": 20}', True)
    send(
        m,
        "homeassistant/sensor/b/config",
        {
            "state_topic": "dev/state",
            "value_template": "{{ value_json.temperature }}",
            "availability": avty,
        },
    )
    assert subscribed.count("bridge/state") == 1
    assert m.registry.get("sensor.b").available is True
    assert m.registry.get("sensor.b").state == {"state": 20}
