"""The commands Home Assistant 2025.4 sends and the hub used not to: cover tilt, light
effects, vacuum fan speed and locate, siren tone/volume/duration, media player on/off, and
climate setpoints as asked. Expected topics and payloads are written from HA's platform
code (components/mqtt/cover.py, light/schema_*.py, vacuum.py, siren.py, climate.py); the
tilt command also goes end to end through a real mosquitto."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import make_broker_env
from faultkit import Receiver, hub_config, wait_for, write_home

from hubagent.act.executor import ExecutionError, build_messages
from hubagent.act.policy import Policy
from hubagent.config import PolicyConfig
from hubagent.home.registry import Registry
from hubagent.mqtt.capabilities import capabilities
from hubagent.mqtt.discovery import parse_message
from hubagent.types import Action, Entity


def discovered(component: str, config: dict[str, Any], object_id: str = "x") -> Entity:
    config = {"object_id": object_id, **config}
    msg = parse_message(f"homeassistant/{component}/{object_id}/config", json.dumps(config))
    entity = msg.components[0].entity
    assert entity is not None
    return entity


def run(entity: Entity, verb: str, **args: Any) -> list[tuple[str, str]]:
    """Policy first (ranges, options), then the executor: the hub's own path."""
    registry = Registry()
    registry.upsert(entity)
    decision = Policy(PolicyConfig(), registry).check(
        Action(entity.entity_id, verb, args), "tester", "test"
    )
    assert decision.allowed, decision.reason
    return [(m.topic, m.payload) for m in build_messages(entity, decision.action)]


def refused(entity: Entity, verb: str, **args: Any) -> str:
    registry = Registry()
    registry.upsert(entity)
    decision = Policy(PolicyConfig(), registry).check(
        Action(entity.entity_id, verb, args), "tester", "test"
    )
    assert not decision.allowed
    return str(decision.error)


# -- cover tilt (cover.py: async_open/close/set/stop_cover_tilt) -----------------------------
Z2M_BLIND = {  # zigbee2mqtt's keys for a blind with tilt
    "command_topic": "z2m/blind/set",
    "position_topic": "z2m/blind",
    "set_position_topic": "z2m/blind/set",
    "set_position_template": '{ "position": {{ position }} }',
    "tilt_command_topic": "z2m/blind/set/tilt",
    "tilt_status_topic": "z2m/blind",
    "tilt_status_template": "{{ value_json.tilt }}",
}


def test_tilt_open_close_set_stop_with_defaults() -> None:
    blind = discovered("cover", Z2M_BLIND)
    assert {"open_tilt", "close_tilt", "stop_tilt", "set_tilt"} <= set(blind.verbs)
    assert run(blind, "open_tilt") == [("z2m/blind/set/tilt", "100")]  # tilt_opened_value
    assert run(blind, "close_tilt") == [("z2m/blind/set/tilt", "0")]  # tilt_closed_value
    assert run(blind, "set_tilt", tilt=40) == [("z2m/blind/set/tilt", "40")]
    assert run(blind, "stop_tilt") == [("z2m/blind/set/tilt", "STOP")]  # payload_stop_tilt
    assert run(blind, "set", attribute="tilt", value=65) == [("z2m/blind/set/tilt", "65")]
    assert run(blind, "set_tilt", tilt=150) == [("z2m/blind/set/tilt", "100")]  # clamped


def test_tilt_ranges_values_and_template() -> None:
    # percentage_to_ranged_value((tilt_min + 1, tilt_max), pct), rounded
    wide = discovered(
        "cover", {"tilt_command_topic": "t", "tilt_max": 180, "tilt_opened_value": 180}
    )
    assert run(wide, "set_tilt", tilt=50) == [("t", "90")]
    assert run(wide, "open_tilt") == [("t", "180")]
    offset = discovered("cover", {"tilt_command_topic": "t", "tilt_min": 10, "tilt_max": 90})
    assert run(offset, "set_tilt", tilt=25) == [("t", "30")]
    assert run(offset, "set_tilt", tilt=33) == [("t", "36")]  # 36.4
    inverted = discovered("cover", {"tilt_command_topic": "t", "tilt_min": 100, "tilt_max": 0})
    assert run(inverted, "set_tilt", tilt=30) == [("t", "70")]
    templated = discovered(
        "cover",
        {
            "tilt_command_topic": "t",
            "tilt_max": 180,
            "tilt_command_template": '{"tilt": {{ value }}, "pct": {{ tilt_position }}, '
            '"max": {{ tilt_max }}, "id": "{{ entity_id }}"}',
        },
        "shade",
    )
    ((_, payload),) = run(templated, "set_tilt", tilt=50)
    assert json.loads(payload) == {"tilt": 90, "pct": 50, "max": 180, "id": "cover.shade"}
    ((_, payload),) = run(templated, "close_tilt")
    assert json.loads(payload)["tilt"] == 0 and json.loads(payload)["pct"] == 0
    no_tilt = discovered("cover", {"command_topic": "c"})
    assert "set_tilt" not in no_tilt.verbs and refused(no_tilt, "open_tilt") == "unknown_attribute"


def test_position_uses_ha_rounding() -> None:
    """set_position: round(pct * (open - closed) / 100 + closed), as HA rounds it."""
    cover = discovered(
        "cover",
        {
            "set_position_topic": "p",
            "position_topic": "s",
            "position_closed": 1,
            "position_open": 6,
        },
    )
    assert run(cover, "set_position", position=50) == [("p", "4")]  # round(3.5) == 4


# -- light effects (schema_basic / schema_json / schema_template) ----------------------------
def test_basic_light_effect_goes_to_its_topic_before_on() -> None:
    light = discovered(
        "light",
        {
            "command_topic": "l/set",
            "effect_command_topic": "l/fx",
            "effect_list": ["rainbow", "blink"],
        },
    )
    assert run(light, "set_effect", effect="Rainbow") == [("l/fx", "rainbow"), ("l/set", "ON")]
    first = discovered(
        "light",
        {
            "command_topic": "l/set",
            "on_command_type": "first",
            "effect_command_topic": "l/fx",
            "effect_command_template": "{{ value | upper }}",
            "effect_list": ["rainbow"],
        },
    )
    assert run(first, "set_effect", effect="rainbow") == [("l/set", "ON"), ("l/fx", "RAINBOW")]
    assert refused(light, "set_effect", effect="disco") == "out_of_range"
    listless = discovered("light", {"command_topic": "l/set", "effect_list": ["rainbow"]})
    assert "set_effect" not in listless.verbs  # HA needs effect_command_topic for effects


def test_json_and_template_light_effects() -> None:
    z2m = discovered(
        "light",
        {
            "schema": "json",
            "command_topic": "z/set",
            "brightness": True,
            "supported_color_modes": ["brightness"],
            "effect": True,
            "effect_list": ["blink", "breathe", "okay"],
        },
    )
    ((topic, payload),) = run(z2m, "set_effect", effect="breathe")
    assert topic == "z/set" and json.loads(payload) == {"state": "ON", "effect": "breathe"}
    no_flag = discovered(
        "light", {"schema": "json", "command_topic": "z/set", "effect_list": ["x"]}
    )
    assert "set_effect" not in no_flag.verbs  # HA: `effect: true` turns effects on
    template = discovered(
        "light",
        {
            "schema": "template",
            "command_topic": "t/set",
            "command_on_template": "on,{{ effect | default('none') }}",
            "command_off_template": "off",
            "effect_list": ["rainbow", "colorloop"],
        },
    )
    assert run(template, "set_effect", effect="colorloop") == [("t/set", "on,colorloop")]


# -- vacuum fan speed and locate (vacuum.py) ---------------------------------------------
def test_vacuum_fan_speed_and_locate() -> None:
    robot = discovered(
        "vacuum",
        {
            "command_topic": "v/cmd",
            "set_fan_speed_topic": "v/fan",
            "fan_speed_list": ["min", "medium", "max"],
            "supported_features": ["start", "stop", "fan_speed", "locate"],
        },
    )
    assert run(robot, "set_fan_speed", fan_speed="MAX") == [("v/fan", "max")]
    assert run(robot, "set", attribute="fan_speed", value="min") == [("v/fan", "min")]
    assert run(robot, "locate") == [("v/cmd", "locate")]
    assert refused(robot, "set_fan_speed", fan_speed="turbo") == "out_of_range"
    custom = discovered(
        "vacuum",
        {"command_topic": "v/cmd", "payload_locate": "FIND_ME", "supported_features": ["locate"]},
    )
    assert run(custom, "locate") == [("v/cmd", "FIND_ME")]
    default = discovered(
        "vacuum",
        {"command_topic": "v/cmd", "set_fan_speed_topic": "v/fan", "fan_speed_list": ["a"]},
    )
    # HA's default features are start, stop, return_home, battery, clean_spot
    assert "locate" not in default.verbs and "set_fan_speed" not in default.verbs


# -- siren tone / volume / duration (siren.py: _async_publish) -----------------------------
def test_siren_json_command_without_templates() -> None:
    siren = discovered("siren", {"command_topic": "s/set", "available_tones": ["ping", "siren"]})
    ((_, on),) = run(siren, "turn_on")
    assert json.loads(on) == {"state": "ON"}
    ((_, full),) = run(siren, "turn_on", tone="siren", volume=50, duration=10)
    assert json.loads(full) == {"state": "ON", "tone": "siren", "volume_level": 0.5, "duration": 10}
    assert run(siren, "turn_off") == [("s/set", '{"state":"OFF"}')]
    ((_, loud),) = run(siren, "turn_on", volume=150)  # clamped to 100 %
    assert json.loads(loud)["volume_level"] == 1.0
    assert refused(siren, "turn_on", tone="foghorn") == "out_of_range"
    quiet = discovered(
        "siren", {"command_topic": "s/set", "support_volume_set": False, "support_duration": False}
    )
    assert refused(quiet, "turn_on", volume=20) == "unknown_attribute"
    assert refused(quiet, "turn_on", tone="ping") == "unknown_attribute"


def test_siren_templates_get_the_arguments() -> None:
    z2m = discovered(  # zigbee2mqtt 2.12.1's Heiman HS2WD-E siren
        "siren",
        {
            "command_topic": "z2m/siren/set",
            "available_tones": ["emergency"],
            "command_off_template": '{"warning": {"mode": "stop"}}',
            "command_template": '{"warning": {"mode": "{{ tone | default(\'emergency\') }}", '
            '"level": "{% if volume_level is defined %}{% if volume_level | float <= 0.25 %}low'
            "{% elif volume_level | float <= 0.5 %}medium{% elif volume_level | float <= 0.75 %}"
            'high{% else %}very_high{% endif %}{% else %}medium{% endif %}", '
            '"duration": {{ duration | default(10) }}}}',
            "support_duration": True,
        },
    )
    ((_, payload),) = run(z2m, "turn_on", tone="emergency", volume=80, duration=30)
    assert json.loads(payload) == {
        "warning": {"mode": "emergency", "level": "very_high", "duration": 30}
    }
    ((_, payload),) = run(z2m, "turn_on")
    assert json.loads(payload) == {
        "warning": {"mode": "emergency", "level": "medium", "duration": 10}
    }
    ((_, payload),) = run(z2m, "turn_off")
    assert json.loads(payload) == {"warning": {"mode": "stop"}}


# -- media player on/off (no MQTT media_player in HA: home-file devices) -------------------
def test_media_player_turn_on_off() -> None:
    def player(config: dict[str, Any]) -> Entity:
        mqtt = {**config, "component": "media_player"}
        return Entity(
            "media_player.tv", "TV", attributes=capabilities("media_player", mqtt), mqtt=mqtt
        )

    plain = player({"command_topic": "tv/cmd"})
    assert run(plain, "turn_on") == [("tv/cmd", "ON")]
    assert run(plain, "turn_off") == [("tv/cmd", "OFF")]
    power = player(
        {"command_topic": "tv/cmd", "power_command_topic": "tv/power", "payload_off": "STANDBY"}
    )
    assert run(power, "turn_off") == [("tv/power", "STANDBY")]
    own = player({"turn_on_command_topic": "tv/on", "payload_turn_on": "WAKE"})
    assert run(own, "turn_on") == [("tv/on", "WAKE")]
    with pytest.raises(ExecutionError, match="turn off"):
        build_messages(own, Action("media_player.tv", "turn_off"))


# -- climate setpoints (climate.py: _set_climate_attribute publishes the value as given) --
def test_climate_setpoint_is_published_as_asked() -> None:
    moes = discovered(  # a Moes TRV as zigbee2mqtt announces it (whole-degree step)
        "climate",
        {
            "temperature_command_topic": "z2m/trv/set/current_heating_setpoint",
            "min_temp": 5,
            "max_temp": 35,
            "temp_step": 1,
            "precision": 0.5,
        },
    )
    assert run(moes, "set_temperature", temperature=22.5) == [
        ("z2m/trv/set/current_heating_setpoint", "22.5")
    ]
    assert run(moes, "set_temperature", temperature=21) == [
        ("z2m/trv/set/current_heating_setpoint", "21.0")
    ]
    assert run(moes, "set_temperature", temperature=40) == [
        ("z2m/trv/set/current_heating_setpoint", "35.0")
    ]


# -- end to end through a real broker: tilt -------------------------------------------------
HOME = """\
name: Tilt home
language: en
areas:
  - {id: bedroom, name: Bedroom}
devices: []
"""


def test_tilt_end_to_end_through_mosquitto(tmp_path: Path) -> None:
    from hubagent.app import Hub

    env = make_broker_env(tmp_path / "broker", ["blind"])
    device = Receiver(env.mqtt_config("blind"), ("home/blind/+/set",)).start()
    hub = Hub(
        hub_config(env.mqtt_config(), tmp_path / "hub.db", (str(write_home(tmp_path, HOME)),)),
        use_llm=False,
    )
    try:
        assert hub.start(wait=10)
        config = {
            "name": "Blind",
            "object_id": "bedroom_blind",
            "uniq_id": "blind_1",
            "dev": {"ids": ["blind"], "name": "Bedroom blind"},
            "cmd_t": "home/blind/move/set",
            "tilt_cmd_t": "home/blind/tilt/set",
            "tilt_max": 180,
            "tilt_cmd_tpl": '{"tilt": {{ value }}}',
        }
        assert device.client is not None
        assert device.client.publish(
            "homeassistant/cover/blind/b/config", json.dumps(config), qos=1, retain=True, timeout=5
        ).ok
        wait_for(lambda: hub.registry.get("cover.bedroom_blind"))
        reply = hub.agent.execute(
            [
                Action("cover.bedroom_blind", "set_tilt", {"tilt": 50}),
                Action("cover.bedroom_blind", "open_tilt"),
            ],
            requester="tester",
            channel="test",
        )
        assert len(reply.actions) == 2, reply.to_dict()
        assert device.wait_count(2)
        assert device.messages == [
            ("home/blind/tilt/set", b'{"tilt": 90}'),
            ("home/blind/tilt/set", b'{"tilt": 100}'),  # tilt_opened_value stays 100
        ]
    finally:
        hub.stop()
        device.stop()
        env.close()


def test_the_simulated_vacuum_understands_fan_speed_and_locate() -> None:
    """The demo's Valetudo-style vacuum announces both features; the hub's commands are
    ones it accepts (before, its fan speed could not be set over MQTT at all)."""
    from hubagent.sim.devices import make_device

    sim = make_device(
        {
            "id": "vacuum.robot",
            "name": "Robot",
            "attributes": {"fan_speed": {"options": ["quiet", "turbo"]}},
            "state": {"state": "docked"},
        }
    )
    topic, payload = sim.discovery_message()
    (component,) = parse_message(topic, payload).components
    robot = component.entity
    assert robot is not None and {"set_fan_speed", "locate"} <= set(robot.verbs)
    for verb, args in (("set_fan_speed", {"fan_speed": "turbo"}), ("locate", {})):
        for message in build_messages(robot, Action(robot.entity_id, verb, args)):
            sim.handle_command(message.topic, message.payload.encode())
    assert sim.ha_state()["fan_speed"] == "turbo"
