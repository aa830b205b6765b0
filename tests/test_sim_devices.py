"""Simulated devices without MQTT: discovery config shape, command -> state, bad payloads."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from hubagent.home.homefile import load_home
from hubagent.mqtt.abbreviations import expand_abbreviations
from hubagent.security.acl import account_for_entity
from hubagent.sim.devices import SimDevice, make_device, rgb_to_xy, xy_to_rgb

DEMO_HOME = Path(__file__).resolve().parents[1] / "devices" / "demo-home.yaml"


def dev(entity_id: str, **raw: Any) -> SimDevice:
    return make_device({"id": entity_id, **raw})


def state_of(device: SimDevice) -> Any:
    (topic, payload), *_ = device.state_messages()
    assert topic == device.state_topic
    return payload if device.plain_state else json.loads(payload)


def cmd(device: SimDevice, payload: str | bytes, thing: str | None = None) -> list:
    topic = device.topic_for(thing) if thing else device.command_topic
    data = payload.encode() if isinstance(payload, str) else payload
    return device.handle_command(topic, data)


LIGHT = {
    "name": "Kitchen ceiling light",
    "attributes": {
        "brightness": {"min": 0, "max": 100},
        "color_temp": {"min": 2000, "max": 6500},
        "color": {},
    },
    "state": {"state": "on", "brightness": 50, "color_temp": 2700},
    "sim": {"manufacturer": "Philips", "model": "Hue"},
}


# -- demo home ---------------------------------------------------------------------------


def test_demo_home_is_valid_and_covers_every_kind() -> None:
    home = load_home(DEMO_HOME)
    devices = [make_device(raw) for raw in home.raw_devices]
    assert 18 <= len(devices) <= 30
    assert len(home.areas) == 6 and len(home.floors) == 2
    assert {d.component for d in devices} >= {
        "light",
        "switch",
        "cover",
        "climate",
        "lock",
        "fan",
        "sensor",
        "binary_sensor",
        "vacuum",
    }
    accounts = [account_for_entity(d.entity_id) for d in devices]
    assert accounts == [d.account for d in devices]
    assert len(set(accounts)) == len(accounts), "device accounts must be unique"
    aliases = {a for e in home.entities for a in e.aliases}
    assert {"big light", "telly", "AC"} <= aliases
    classes = {d.device_class for d in devices}
    assert {"garage", "blind", "curtain", "door", "temperature", "humidity"} <= classes


def test_every_demo_discovery_config_follows_the_topic_contract() -> None:
    for raw in load_home(DEMO_HOME).raw_devices:
        device = make_device(raw)
        topic, payload = device.discovery_message()
        cfg = expand_abbreviations(json.loads(payload))
        acct = device.account
        assert topic == f"homeassistant/{device.component}/{acct}/{acct}/config"
        assert cfg["default_entity_id"] == device.entity_id
        assert cfg["unique_id"] and cfg["device"]["identifiers"] and cfg["origin"]["name"]
        assert cfg["state_topic"] == f"home/{acct}/state"
        avail = cfg.get("availability_topic") or cfg["availability"][0]["topic"]
        assert avail == f"home/{acct}/availability"
        # Every command topic the config names is one the device account may read.
        commands = {
            v
            for k, v in cfg.items()
            if k.endswith("command_topic")
            or k.endswith("set_position_topic")
            or k == "set_fan_speed_topic"
        }
        assert commands == set(device.command_topics())
        for t in commands:
            assert t == f"home/{acct}/set" or (t.startswith(f"home/{acct}/") and t.endswith("/set"))
            assert t.count("/") <= 3
        assert state_of(device) is not None


# -- lights ------------------------------------------------------------------------------


def test_json_light_discovery_is_zigbee2mqtt_shaped() -> None:
    light = dev("light.kitchen_ceiling", **LIGHT)
    cfg = light.discovery_config()
    assert cfg["schema"] == "json"
    assert cfg["brightness"] is True and cfg["brightness_scale"] == 254
    assert cfg["supported_color_modes"] == ["xy", "color_temp"]
    assert (cfg["min_mireds"], cfg["max_mireds"]) == (153, 500)
    assert cfg["command_topic"] == "home/kitchen_ceiling/set"
    assert cfg["availability"] == [{"topic": "home/kitchen_ceiling/availability"}]
    assert cfg["device"]["manufacturer"] == "Philips"
    # Home-file percent and kelvin become the bulb's own units.
    assert state_of(light) == {
        "state": "ON",
        "brightness": 127,
        "color_temp": 370,
        "color_mode": "color_temp",
    }


def test_json_light_commands_change_state_like_zigbee2mqtt() -> None:
    light = dev("light.kitchen_ceiling", **LIGHT)
    out = cmd(light, '{"state": "OFF"}')
    assert out == light.state_messages() and state_of(light)["state"] == "OFF"
    cmd(light, '{"brightness": 254}')  # brightness alone turns the bulb on
    assert state_of(light)["state"] == "ON" and light.ha_state()["brightness"] == 100
    cmd(light, '{"color_temp": 900}')  # clamped to the bulb's range
    assert state_of(light)["color_temp"] == 500
    cmd(light, '{"state": "ON", "color": {"r": 255, "g": 0, "b": 0}}')
    st = state_of(light)
    assert st["color_mode"] == "xy" and st["color"]["x"] == pytest.approx(0.64, abs=0.01)
    assert light.ha_state()["rgb"] == [255, 0, 0]
    cmd(light, '{"state": "TOGGLE"}')
    assert state_of(light)["state"] == "OFF"
    cmd(light, '{"brightness": 0, "state": "ON"}')  # brightness 0 means off
    assert state_of(light)["state"] == "OFF"


def test_rgb_light_and_onoff_light() -> None:
    rgb = dev(
        "light.bedside_lamp",
        attributes={"brightness": {}, "color": {}},
        sim={"color_mode": "rgb"},
    )
    assert rgb.discovery_config()["supported_color_modes"] == ["rgb"]
    cmd(rgb, '{"color": {"x": 0.15, "y": 0.06}}')
    color = state_of(rgb)["color"]
    assert color["b"] == 255 and color["r"] < 100 and state_of(rgb)["state"] == "ON"
    cmd(rgb, '{"color": {"h": 120, "s": 100}}')
    assert state_of(rgb)["color"] == {"r": 0, "g": 255, "b": 0}
    plain = dev("light.garage")
    cfg = plain.discovery_config()
    assert cfg["supported_color_modes"] == ["onoff"] and "brightness" not in cfg
    cmd(plain, '{"brightness": 100}')  # no dimmer: the key is ignored, like on the bulb
    assert state_of(plain) == {"state": "OFF"}


@pytest.mark.parametrize(
    "payload",
    [
        b"ON",
        b"not json",
        b"[1, 2]",
        b'{"state": "MAYBE"}',
        b'{"brightness": "bright"}',
        b'{"color": "red"}',
        b'{"color": {"q": 1}}',
        b'{"effect": "colorloop"}',
        b"\xff\xfe",
        b'{"color": {"x": NaN, "y": NaN}}',
        b'{"color_temp": null}',
        b"",
    ],
)
def test_json_light_ignores_bad_payloads(payload: bytes, caplog: pytest.LogCaptureFixture) -> None:
    light = dev("light.kitchen_ceiling", **LIGHT)
    before = dict(light.state)
    with caplog.at_level(logging.WARNING):
        assert cmd(light, payload) == []
    assert light.state == before
    assert "bad command" in caplog.text


def test_command_on_a_foreign_topic_is_ignored() -> None:
    light = dev("light.kitchen_ceiling", **LIGHT)
    assert light.handle_command("home/other/set", b'{"state": "OFF"}') == []
    assert light.state["state"] == "ON"


def test_color_conversions_round_trip() -> None:
    for rgb in [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 128, 0)]:
        x, y = rgb_to_xy(*rgb)
        back = xy_to_rgb(x, y)
        assert all(abs(a - b) <= 3 for a, b in zip(back, rgb, strict=True)), (rgb, back)
    assert rgb_to_xy(0, 0, 0) == (0.3127, 0.3290)


# -- ESPHome-style switch and lock --------------------------------------------------------


def test_switch_is_default_schema_with_plain_payloads() -> None:
    tv = dev("switch.living_room_tv", name="TV", device_class="outlet", state={"state": "off"})
    raw = tv.discovery_config()
    assert raw["pl_on"] == "ON" and raw["cmd_t"] == "home/living_room_tv/set"  # abbreviated
    cfg = expand_abbreviations(raw)
    assert cfg["payload_on"] == "ON" and cfg["payload_off"] == "OFF"
    assert cfg["device_class"] == "outlet" and cfg["name"] == "TV"
    assert "value_template" not in cfg and "schema" not in cfg
    assert cmd(tv, "ON") == [("home/living_room_tv/state", "ON")]
    assert cmd(tv, "toggle") == [("home/living_room_tv/state", "OFF")]
    assert cmd(tv, '{"state": "ON"}') == [] and cmd(tv, "1") == []
    assert tv.ha_state() == {"state": "off"}


def test_lock_payloads_and_states() -> None:
    lock = dev("lock.front_door", state={"state": "locked"})
    cfg = expand_abbreviations(lock.discovery_config())
    assert (cfg["payload_lock"], cfg["payload_unlock"]) == ("LOCK", "UNLOCK")
    assert (cfg["state_locked"], cfg["state_unlocked"]) == ("LOCKED", "UNLOCKED")
    assert state_of(lock) == "LOCKED"
    assert cmd(lock, "UNLOCK") == [("home/front_door/state", "UNLOCKED")]
    assert cmd(lock, "lock") == []  # ESPHome payloads are case-sensitive
    assert lock.ha_state() == {"state": "unlocked"}


# -- covers ------------------------------------------------------------------------------


def test_cover_with_position() -> None:
    blinds = dev(
        "cover.living_room_blinds",
        device_class="blind",
        attributes={"position": {"min": 0, "max": 100}},
        state={"state": "open", "position": 100},
    )
    cfg = blinds.discovery_config()
    assert cfg["set_position_topic"] == "home/living_room_blinds/position/set"
    assert cfg["position_topic"] == cfg["state_topic"] and cfg["device_class"] == "blind"
    assert cfg["payload_open"] == "OPEN" and "value_json.position" in cfg["position_template"]
    cmd(blinds, "40", "position")
    assert state_of(blinds) == {"state": "open", "position": 40}
    cmd(blinds, "CLOSE")
    assert state_of(blinds) == {"state": "closed", "position": 0}
    for bad, thing in [("150", "position"), ("half", "position"), ("UP", None)]:
        assert cmd(blinds, bad, thing) == []
    assert state_of(blinds) == {"state": "closed", "position": 0}


def test_garage_door_has_no_position() -> None:
    garage = dev("cover.garage_door", device_class="garage", state={"state": "closed"})
    cfg = garage.discovery_config()
    assert cfg["device_class"] == "garage" and "set_position_topic" not in cfg
    assert garage.command_topics() == ["home/garage_door/set"]
    cmd(garage, "OPEN")
    assert state_of(garage) == {"state": "open"}
    assert garage.handle_command("home/garage_door/position/set", b"50") == []


# -- climate -----------------------------------------------------------------------------


def make_ac() -> SimDevice:
    return dev(
        "climate.living_room_ac",
        attributes={
            "temperature": {"min": 16, "max": 30, "step": 0.5},
            "hvac_mode": {"options": ["off", "cool", "heat", "auto"]},
            "fan_mode": {"options": ["auto", "low", "high"]},
        },
        state={"state": "cool", "temperature": 22, "current_temperature": 24},
    )


def test_climate_discovery_and_commands() -> None:
    ac = make_ac()
    cfg = ac.discovery_config()
    assert "command_topic" not in cfg
    assert cfg["mode_command_topic"] == "home/living_room_ac/mode/set"
    assert cfg["temperature_command_topic"] == "home/living_room_ac/temperature/set"
    assert cfg["fan_mode_command_topic"] == "home/living_room_ac/fan_mode/set"
    assert (cfg["min_temp"], cfg["max_temp"], cfg["temp_step"]) == (16, 30, 0.5)
    assert cfg["modes"] == ["off", "cool", "heat", "auto"] and cfg["fan_modes"][0] == "auto"
    assert "swing_mode_command_topic" not in cfg
    cmd(ac, "23.4", "temperature")  # rounded to the step like the unit's display
    assert state_of(ac)["temperature"] == 23.5
    cmd(ac, "heat", "mode")
    assert state_of(ac)["mode"] == "heat" and state_of(ac)["action"] == "heating"
    cmd(ac, "high", "fan_mode")
    assert state_of(ac)["fan_mode"] == "high"
    for bad, thing in [("35", "temperature"), ("warm", "temperature"), ("turbo", "mode")]:
        assert cmd(ac, bad, thing) == []
    assert ac.ha_state()["state"] == "heat" and ac.ha_state()["temperature"] == 23.5


def test_climate_room_follows_set_point_when_ticked() -> None:
    ac = make_ac()
    msgs = ac.tick(0.0)
    assert msgs and state_of(ac)["current_temperature"] == pytest.approx(23.9)
    cmd(ac, "off", "mode")
    assert ac.tick(5.0) == [] and state_of(ac)["action"] == "off"


# -- fan ---------------------------------------------------------------------------------


def test_fan_percentage_presets_and_oscillation() -> None:
    fan = dev(
        "fan.bedroom_fan",
        attributes={
            "percentage": {"min": 0, "max": 100},
            "preset_mode": {"options": ["auto", "sleep"]},
            "oscillation": {},
        },
        state={"state": "off", "percentage": 40},
    )
    cfg = fan.discovery_config()
    assert cfg["percentage_command_topic"] == "home/bedroom_fan/percentage/set"
    assert cfg["preset_mode_command_topic"] == "home/bedroom_fan/preset_mode/set"
    assert cfg["preset_modes"] == ["auto", "sleep"] and cfg["speed_range_max"] == 100
    assert cfg["oscillation_command_topic"] == "home/bedroom_fan/oscillation/set"
    cmd(fan, "ON")
    assert state_of(fan)["state"] == "ON"
    cmd(fan, "sleep", "preset_mode")
    assert state_of(fan)["preset_mode"] == "sleep"
    cmd(fan, "75", "percentage")
    assert state_of(fan)["percentage"] == 75 and state_of(fan)["preset_mode"] is None
    cmd(fan, "0", "percentage")
    assert state_of(fan)["state"] == "OFF"
    cmd(fan, "oscillate_on", "oscillation")
    assert fan.ha_state()["oscillating"] is True
    for bad, thing in [("turbo", "preset_mode"), ("-5", "percentage"), ("yes", "oscillation")]:
        assert cmd(fan, bad, thing) == []


# -- sensors -----------------------------------------------------------------------------


def test_sensor_discovery_and_slow_drift() -> None:
    temp = dev(
        "sensor.living_room_temperature",
        device_class="temperature",
        state={"state": 21.5},
        sim={"unit": "°C", "key": "temperature", "drift": 0.05},
    )
    cfg = temp.discovery_config()
    assert cfg["value_template"] == "{{ value_json.temperature }}"
    assert cfg["unit_of_measurement"] == "°C" and cfg["device_class"] == "temperature"
    assert "command_topic" not in cfg and temp.command_topics() == []
    assert state_of(temp) == {"temperature": 21.5}
    values = []
    for i in range(200):
        for _, payload in temp.tick(float(i)):
            values.append(json.loads(payload)["temperature"])
    assert values, "a ticked sensor reports changes"
    assert all(20.5 < v < 22.5 for v in values)  # drifts, but stays near where it started
    assert temp.handle_command("home/living_room_temperature/set", b"5") == []


def test_door_contact_sensor_is_zigbee2mqtt_shaped() -> None:
    door = dev("binary_sensor.front_door_contact", device_class="door", state={"state": "off"})
    cfg = door.discovery_config()
    assert cfg["payload_on"] is False and cfg["payload_off"] is True
    assert cfg["value_template"] == "{{ value_json.contact }}"
    assert state_of(door) == {"contact": True} and door.ha_state() == {"state": "off"}


# -- vacuum ------------------------------------------------------------------------------


def test_vacuum_commands_and_return_to_dock() -> None:
    vac = dev("vacuum.robot_vacuum", attributes={"fan_speed": {"options": ["quiet", "max"]}})
    cfg = vac.discovery_config()
    assert cfg["payload_return_to_base"] == "return_to_base"
    assert cfg["set_fan_speed_topic"] == "home/robot_vacuum/fan_speed/set"
    assert cfg["fan_speed_list"] == ["quiet", "max"]
    assert state_of(vac)["state"] == "docked"
    cmd(vac, "start")
    vac.tick(1.0)
    assert state_of(vac)["state"] == "cleaning" and state_of(vac)["battery_level"] == 99
    cmd(vac, "max", "fan_speed")
    cmd(vac, "return_to_base")
    assert state_of(vac)["state"] == "returning"
    vac.tick(2.0)
    assert state_of(vac) == {"state": "docked", "battery_level": 99, "fan_speed": "max"}
    assert cmd(vac, "dance") == [] and cmd(vac, "turbo", "fan_speed") == []


def test_unsupported_kind_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="no simulator for 'media_player'"):
        dev("media_player.tv")
    with pytest.raises(ValueError, match="<domain>.<name>"):
        make_device({"id": "nodomain"})


@pytest.mark.parametrize(
    "raw",
    [
        {"id": "light.x", "attributes": {"brightness": 5}},
        {"id": "light.x", "attributes": {"brightness": {}}, "state": {"brightness": "lots"}},
        {"id": "climate.x", "state": {"temperature": None}},
        {"id": "sensor.x", "state": {"state": "warm"}},
        {"id": "light.x", "sim": ["not", "a", "mapping"]},
    ],
)
def test_malformed_entries_are_clear_value_errors(raw: dict) -> None:
    with pytest.raises(ValueError, match=r"^light\.x|^climate\.x|^sensor\.x"):
        make_device(raw)


# -- contract with the hub side (discovery parser, state parser, executor) ----------------


def _hub_view(device: SimDevice) -> tuple[Any, dict[str, Any]]:
    """The entity the hub's discovery makes of a device, and the state it reads."""
    from hubagent.mqtt.discovery import parse_message
    from hubagent.mqtt.state_parse import STATE_TOPIC_KEYS, extract_state

    component = parse_message(*device.discovery_message()).components[0]
    state: dict[str, Any] = {}
    for topic, payload in device.state_messages():
        for key in STATE_TOPIC_KEYS:
            if component.config.get(key) == topic:
                state.update(extract_state(component.component, component.config, key, payload))
    return component.entity, state


def test_the_hub_reads_every_demo_device_as_the_simulator_means_it() -> None:
    for raw in load_home(DEMO_HOME).raw_devices:
        device = make_device(raw)
        entity, state = _hub_view(device)
        assert entity.entity_id == device.entity_id
        assert entity.name == raw["name"] and entity.device_class == raw.get("device_class")
        for key in raw.get("attributes", {}):
            assert key in entity.attributes, (device.entity_id, key)
        expected = {k: v for k, v in device.ha_state().items() if k != "rgb"}
        got = {k: state.get(k) for k in expected}
        assert got == expected, device.entity_id


@pytest.mark.parametrize(
    ("entity_id", "verb", "args", "expected"),
    [
        ("light.kitchen_ceiling", "set_brightness", {"brightness": 30}, {"brightness": 30}),
        ("light.kitchen_ceiling", "set_color_temp", {"color_temp": 3000}, {"state": "on"}),
        ("light.bedside_lamp", "set_color", {"color": "blue"}, {"rgb": [0, 0, 255]}),
        ("switch.living_room_tv", "turn_on", {}, {"state": "on"}),
        ("lock.front_door", "unlock", {}, {"state": "unlocked"}),
        ("cover.living_room_blinds", "set_position", {"position": 30}, {"position": 30}),
        ("cover.garage_door", "open", {}, {"state": "open"}),
        ("climate.living_room_ac", "set_temperature", {"temperature": 21}, {"temperature": 21}),
        ("climate.living_room_ac", "set_hvac_mode", {"hvac_mode": "heat"}, {"state": "heat"}),
        ("climate.living_room_ac", "turn_off", {}, {"state": "off"}),
        ("fan.bedroom_fan", "set_percentage", {"percentage": 70}, {"percentage": 70}),
        ("fan.bedroom_fan", "set_preset_mode", {"preset_mode": "sleep"}, {"preset_mode": "sleep"}),
        ("vacuum.robot_vacuum", "start", {}, {"state": "cleaning"}),
    ],
)
def test_the_hubs_commands_work_on_the_simulated_devices(
    entity_id: str, verb: str, args: dict[str, Any], expected: dict[str, Any]
) -> None:
    from hubagent.act.executor import build_messages
    from hubagent.types import Action

    raw = next(r for r in load_home(DEMO_HOME).raw_devices if r["id"] == entity_id)
    device = make_device(raw)
    entity, _ = _hub_view(device)
    messages = build_messages(entity, Action(entity_id, verb, args))
    assert messages
    for m in messages:
        assert device.handle_command(m.topic, m.payload.encode()) != [], m
    state = device.ha_state()
    assert {k: state.get(k) for k in expected} == expected
