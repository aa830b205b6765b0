"""Executor (Action -> device MQTT messages, HA's rules) and the intent -> action map."""

from __future__ import annotations

import json
from typing import Any

import pytest

from hubagent.act.executor import ExecutionError, build_messages
from hubagent.act.intent_map import intent_to_action
from hubagent.mqtt.capabilities import capabilities
from hubagent.mqtt.discovery import parse_message
from hubagent.types import Action, Entity, MqttMessage


def discovered(component: str, config: dict[str, Any], state: dict | None = None) -> Entity:
    """An entity exactly as discovery builds it from `config`."""
    msg = parse_message(f"homeassistant/{component}/t/config", json.dumps(config).encode())
    entity = msg.components[0].entity
    assert entity is not None
    entity.state = dict(state or {})
    return entity


def home_media(config: dict[str, Any]) -> Entity:
    """A home-file media player with MQTT topics (HA has no MQTT media_player platform)."""
    mqtt = {**config, "component": "media_player"}
    return Entity("media_player.t", "T", attributes=capabilities("media_player", mqtt), mqtt=mqtt)


def run(entity: Entity, verb: str, **args: Any) -> list[tuple[str, str]]:
    return [
        (m.topic, m.payload) for m in build_messages(entity, Action(entity.entity_id, verb, args))
    ]


def run_json(entity: Entity, verb: str, **args: Any) -> dict[str, Any]:
    (message,) = build_messages(entity, Action(entity.entity_id, verb, args))
    return json.loads(message.payload)


# -- switch and simple on/off --------------------------------------------------------
def test_switch_payloads_template_qos_retain() -> None:
    plain = discovered("switch", {"cmd_t": "s/set", "object_id": "plug"})
    assert run(plain, "turn_on") == [("s/set", "ON")]
    assert run(plain, "turn_off") == [("s/set", "OFF")]
    (message,) = build_messages(plain, Action("switch.plug", "turn_on"))
    assert message == MqttMessage("s/set", "ON", qos=1, retain=False)  # hub default QoS 1
    custom = discovered(
        "switch",
        {
            "cmd_t": "s/set",
            "pl_on": 1,
            "pl_off": 0,
            "cmd_tpl": '{"power": {{ value }}}',
            "qos": 0,
            "ret": True,
        },
    )
    (message,) = build_messages(custom, Action(custom.entity_id, "turn_on"))
    assert message == MqttMessage("s/set", '{"power": 1}', qos=0, retain=True)


def test_toggle_uses_current_state() -> None:
    entity = discovered("switch", {"cmd_t": "s/set"}, state={"state": "on"})
    assert run(entity, "toggle") == [("s/set", "OFF")]
    entity.state["state"] = "off"
    assert run(entity, "toggle") == [("s/set", "ON")]


# -- lights: default schema ----------------------------------------------------------
TASMOTA_LIGHT = {
    "name": "Laundry",
    "cmd_t": "cmnd/t/POWER",
    "bri_cmd_t": "cmnd/t/Dimmer",
    "bri_scl": 100,
    "on_cmd_type": "brightness",
    "clr_temp_cmd_t": "cmnd/t/CT",
    "rgb_cmd_t": "cmnd/t/Color2",
}


def test_default_light_on_command_type_brightness() -> None:
    light = discovered("light", TASMOTA_LIGHT)
    assert run(light, "turn_on") == [("cmnd/t/Dimmer", "100")]
    light.state["brightness"] = 40
    assert run(light, "turn_on") == [("cmnd/t/Dimmer", "40")]
    assert run(light, "set_brightness", brightness=50) == [("cmnd/t/Dimmer", "50")]
    assert run(light, "set_brightness", brightness=0) == [("cmnd/t/POWER", "OFF")]
    assert run(light, "set_brightness", brightness=150) == [("cmnd/t/Dimmer", "100")]  # clamped


def test_default_light_last_and_first_order_and_colour() -> None:
    last = discovered("light", {**TASMOTA_LIGHT, "on_cmd_type": "last", "bri_scl": 255})
    assert run(last, "set_brightness", brightness=50) == [
        ("cmnd/t/Dimmer", "128"),
        ("cmnd/t/POWER", "ON"),
    ]
    assert run(last, "set_color_temp", color_temp=4000) == [
        ("cmnd/t/CT", "250"),
        ("cmnd/t/POWER", "ON"),
    ]
    assert run(last, "set_color", color="red") == [
        ("cmnd/t/Color2", "255,0,0"),
        ("cmnd/t/POWER", "ON"),
    ]
    first = discovered("light", {**TASMOTA_LIGHT, "on_cmd_type": "first"})
    assert run(first, "set_brightness", brightness=20)[0] == ("cmnd/t/POWER", "ON")
    onoff = discovered("light", {"cmd_t": "l/set", "pl_on": "1", "pl_off": "0"})
    assert run(onoff, "turn_on") == [("l/set", "1")]
    with pytest.raises(ExecutionError, match="brightness"):
        run(onoff, "set_brightness", brightness=30)


def test_default_light_rgb_only_dims_through_rgb() -> None:
    light = discovered("light", {"cmd_t": "l/set", "rgb_cmd_t": "l/rgb"}, {"color": [255, 0, 0]})
    assert run(light, "set_brightness", brightness=50) == [("l/rgb", "128,0,0"), ("l/set", "ON")]
    assert run(light, "set_color", color="blue")[0] == ("l/rgb", "0,0,255")
    light.state["brightness"] = 50
    assert run(light, "set_color", color="lime")[0] == ("l/rgb", "0,128,0")


def test_toggle_cover_and_lock() -> None:
    cover = discovered("cover", {"command_topic": "c/set"}, {"state": "open"})
    assert run(cover, "toggle") == [("c/set", "CLOSE")]
    lock = discovered("lock", {"command_topic": "l/set"}, {"state": "locked"})
    assert run(lock, "toggle") == [("l/set", "UNLOCK")]


def test_default_light_command_templates_and_kelvin() -> None:
    light = discovered(
        "light",
        {
            "cmd_t": "l/set",
            "bri_cmd_t": "l/bri",
            "bri_cmd_tpl": "{{ (value / 2) | int }}",
            "clr_temp_cmd_t": "l/ct",
            "clr_temp_k": True,
            "min_k": 2700,
            "max_k": 6500,
        },
    )
    assert run(light, "set_brightness", brightness=100)[0] == ("l/bri", "127")
    assert run(light, "set_color_temp", color_temp=1000)[0] == ("l/ct", "2700")  # clamped


# -- lights: json and template schemas --------------------------------------------------
Z2M_LIGHT = {
    "schema": "json",
    "command_topic": "zigbee2mqtt/bulb/set",
    "brightness": True,
    "brightness_scale": 254,
    "supported_color_modes": ["xy", "color_temp"],
    "min_mireds": 150,
    "max_mireds": 500,
}


def test_json_light_like_home_assistant() -> None:
    light = discovered("light", Z2M_LIGHT)
    assert run_json(light, "turn_on") == {"state": "ON"}
    assert run_json(light, "turn_off") == {"state": "OFF"}
    assert run_json(light, "set_brightness", brightness=50) == {"state": "ON", "brightness": 127}
    assert run_json(light, "set_brightness", brightness=100) == {"state": "ON", "brightness": 254}
    assert run_json(light, "set_color_temp", color_temp=3000) == {"state": "ON", "color_temp": 333}
    assert run_json(light, "set_color", color="red") == {
        "state": "ON",
        "color": {"x": 0.701, "y": 0.299},
    }
    kelvin = discovered("light", {**Z2M_LIGHT, "color_temp_kelvin": True})
    assert run_json(kelvin, "set_color_temp", color_temp=3000)["color_temp"] == 3000
    hs = discovered("light", {**Z2M_LIGHT, "supported_color_modes": ["hs"]})
    assert run_json(hs, "set_color", color="blue")["color"] == {"h": 240.0, "s": 100.0}
    rgb = discovered("light", {**Z2M_LIGHT, "supported_color_modes": ["rgb"]})
    assert run_json(rgb, "set_color", color=[1, 2, 3])["color"] == {"r": 1, "g": 2, "b": 3}
    with pytest.raises(ExecutionError, match="colour"):
        run(light, "set_color", color="no such colour")


def test_template_light() -> None:
    light = discovered(
        "light",
        {
            "schema": "template",
            "command_topic": "t/set",
            "command_on_template": "on,{{ brightness | d('') }}",
            "command_off_template": "off",
            "brightness_template": "{{ value.split(',')[1] }}",
        },
    )
    assert run(light, "turn_on") == [("t/set", "on,")]
    assert run(light, "set_brightness", brightness=100) == [("t/set", "on,255")]
    assert run(light, "turn_off") == [("t/set", "off")]


# -- covers and valves --------------------------------------------------------------------
def test_cover_payloads_position_range_and_template() -> None:
    cover = discovered(
        "cover",
        {
            "command_topic": "c/set",
            "set_position_topic": "c/pos",
            "position_topic": "c/state",
            "position_open": 0,
            "position_closed": 255,
            "payload_stop": None,
        },
    )
    assert run(cover, "open") == [("c/set", "OPEN")]
    assert run(cover, "close") == [("c/set", "CLOSE")]
    assert run(cover, "set_position", position=25) == [("c/pos", "191")]
    with pytest.raises(ExecutionError):
        run(cover, "stop")  # payload_stop: null disables stop
    z2m = discovered(
        "cover",
        {
            "command_topic": "z/set",
            "set_position_topic": "z/set",
            "position_topic": "z",
            "set_position_template": '{ "position": {{ position }} }',
        },
    )
    assert run_json(z2m, "set_position", position=50) == {"position": 50}
    assert run(z2m, "stop") == [("z/set", "STOP")]
    position_only = discovered("cover", {"set_position_topic": "p/set", "position_topic": "p"})
    assert run(position_only, "open") == [("p/set", "100")]


def test_valve() -> None:
    valve = discovered("valve", {"command_topic": "v/set"})
    assert run(valve, "open") == [("v/set", "OPEN")]
    assert run(valve, "close") == [("v/set", "CLOSE")]
    positional = discovered("valve", {"command_topic": "v/set", "reports_position": True})
    assert run(positional, "set_position", position=40) == [("v/set", "40")]
    assert run(positional, "open") == [("v/set", "100")]


# -- climate, fan, humidifier -------------------------------------------------------------
def test_climate() -> None:
    climate = discovered(
        "climate",
        {
            "temperature_command_topic": "th/sp",
            "mode_command_topic": "th/mode",
            "modes": ["off", "heat"],
            "fan_mode_command_topic": "th/fan",
            "min_temp": 5,
            "max_temp": 30,
            "temp_step": 0.5,
        },
    )
    assert run(climate, "set_temperature", temperature=21) == [("th/sp", "21.0")]
    # HA publishes the setpoint as asked: temp_step shapes its UI, not the payload
    assert run(climate, "set_temperature", temperature=21.3) == [("th/sp", "21.3")]
    assert run(climate, "set_temperature", temperature=99) == [("th/sp", "30.0")]
    assert run(climate, "turn_off") == [("th/mode", "off")]
    assert run(climate, "turn_on") == [("th/mode", "heat")]
    assert run(climate, "set_hvac_mode", hvac_mode="HEAT") == [("th/mode", "heat")]
    assert run(climate, "set_fan_mode", fan_mode="low") == [("th/fan", "low")]
    with pytest.raises(ExecutionError, match="not one of"):
        run(climate, "set_hvac_mode", hvac_mode="cool")
    powered = discovered("climate", {"power_command_topic": "ac/power", "payload_on": "1"})
    assert run(powered, "turn_on") == [("ac/power", "1")]
    assert run(powered, "turn_off") == [("ac/power", "OFF")]


def test_fan() -> None:
    fan = discovered(
        "fan",
        {
            "command_topic": "f/state",
            "percentage_command_topic": "f/speed",
            "speed_range_min": 1,
            "speed_range_max": 254,
            "percentage_command_template": "{{ value | default('') }}",
            "preset_mode_command_topic": "f/preset",
            "preset_modes": ["auto", "smart"],
            "oscillation_command_topic": "f/osc",
        },
    )
    assert run(fan, "set_percentage", percentage=50) == [("f/speed", "127")]
    assert run(fan, "set_percentage", percentage=0) == [("f/state", "OFF")]
    assert run(fan, "turn_on", percentage=100) == [("f/state", "ON"), ("f/speed", "254")]
    assert run(fan, "set_preset_mode", preset_mode="smart") == [("f/preset", "smart")]
    assert run(fan, "oscillate", oscillating=False) == [("f/osc", "oscillate_off")]


def test_humidifier_and_siren() -> None:
    hum = discovered(
        "humidifier",
        {
            "command_topic": "h/set",
            "target_humidity_command_topic": "h/hum",
            "mode_command_topic": "h/mode",
            "modes": ["eco", "boost"],
            "max_humidity": 80,
        },
    )
    assert run(hum, "turn_on") == [("h/set", "ON")]
    assert run(hum, "set_humidity", humidity=95) == [("h/hum", "80")]
    assert run(hum, "set_mode", mode="boost") == [("h/mode", "boost")]
    siren = discovered("siren", {"command_topic": "s/set", "command_off_template": "{{ value }}!"})
    assert run(siren, "turn_on") == [("s/set", '{"state":"ON"}')]  # HA: JSON without template
    assert run(siren, "turn_off") == [("s/set", "OFF!")]


# -- lock, button, scene, select, number, text, vacuum, alarm, media ------------------------
def test_lock_button_scene() -> None:
    lock = discovered("lock", {"command_topic": "l/set", "payload_unlock": "OPEN_UP"})
    assert run(lock, "lock") == [("l/set", "LOCK")]
    assert run(lock, "unlock") == [("l/set", "OPEN_UP")]
    assert run(lock, "open") == [("l/set", "OPEN")]
    button = discovered("button", {"command_topic": "b/set", "payload_press": "reset"})
    assert run(button, "press") == [("b/set", "reset")]
    scene = discovered("scene", {"command_topic": "sc/set", "payload_on": '{ "scene_recall": 1 }'})
    assert run(scene, "activate") == [("sc/set", '{ "scene_recall": 1 }')]


def test_select_number_text() -> None:
    select = discovered("select", {"command_topic": "s/set", "options": ["off", "on", "toggle"]})
    assert run(select, "select_option", option="Toggle") == [("s/set", "toggle")]
    with pytest.raises(ExecutionError):
        run(select, "select_option", option="explode")
    number = discovered("number", {"command_topic": "n/set", "min": 0, "max": 10, "step": 0.5})
    assert run(number, "set_value", value=4) == [("n/set", "4")]
    assert run(number, "set_value", value=2.5) == [("n/set", "2.5")]
    assert run(number, "set_value", value=99) == [("n/set", "10")]
    text = discovered("text", {"command_topic": "t/set", "max": 5})
    assert run(text, "set_value", value="hello") == [("t/set", "hello")]
    with pytest.raises(ExecutionError):
        run(text, "set_value", value="too long")
    assert run(number, "set", attribute="value", value=3) == [("n/set", "3")]


def test_vacuum_alarm_media() -> None:
    vacuum = discovered("vacuum", {"command_topic": "v/cmd"})
    assert run(vacuum, "start") == [("v/cmd", "start")]
    assert run(vacuum, "return_to_base") == [("v/cmd", "return_to_base")]
    alarm = discovered("alarm_control_panel", {"command_topic": "a/set", "state_topic": "a/s"})
    assert run(alarm, "arm_away") == [("a/set", "ARM_AWAY")]
    templated = discovered(
        "alarm_control_panel",
        {
            "command_topic": "a/set",
            "state_topic": "a/s",
            "command_template": '{"action": "{{ action }}", "code": "{{ code }}"}',
        },
    )
    assert run_json(templated, "disarm", code="1234") == {"action": "DISARM", "code": "1234"}
    media = home_media(
        {"command_topic": "m/cmd", "volume_command_topic": "m/vol", "payload_play": "PLAY"}
    )
    assert run(media, "play") == [("m/cmd", "PLAY")]
    assert run(media, "set_volume", volume=35) == [("m/vol", "0.35")]


# -- home-file entities, errors --------------------------------------------------------
def test_home_file_entity_with_explicit_mqtt() -> None:
    light = Entity(
        "light.kitchen",
        "Kitchen",
        attributes={"brightness": {"min": 0, "max": 100}},
        mqtt={"command_topic": "home/kitchen/set", "state_topic": "home/kitchen", "schema": "json"},
    )
    assert run_json(light, "set_brightness", brightness=100) == {"state": "ON", "brightness": 255}
    plug = Entity("switch.plug", "Plug", mqtt={"command_topic": "home/plug/set"})
    assert run(plug, "turn_on") == [("home/plug/set", "ON")]
    cover = Entity(
        "cover.blind",
        "Blind",
        attributes={"position": {"min": 0, "max": 100}},
        mqtt={"command_topic": "home/blind/set", "schema": "json"},
    )
    assert run_json(cover, "set_position", position=120) == {"position": 100}
    assert run_json(cover, "open") == {"state": "OPEN"}


def test_unsupported_actions_raise_execution_error() -> None:
    switch = discovered("switch", {"command_topic": "s/set"})
    with pytest.raises(ExecutionError, match="cannot"):
        run(switch, "set_temperature", temperature=20)
    sensor = discovered("sensor", {"state_topic": "s/state"})
    with pytest.raises(ExecutionError, match="read-only"):
        run(sensor, "turn_on")
    with pytest.raises(ExecutionError, match="no MQTT"):
        build_messages(Entity("light.x", "X"), Action("light.x", "turn_on"))
    no_topic = Entity("switch.s", "S", mqtt={"component": "switch", "state_topic": "s/state"})
    with pytest.raises(ExecutionError, match="command_topic"):
        run(no_topic, "turn_on")
    assert issubclass(ExecutionError, ValueError)
    assert build_messages(switch, Action(switch.entity_id, "get_state")) == []


# -- intent map -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("component", "config", "intent", "slots", "verb", "args"),
    [
        ("cover", {"command_topic": "c"}, "HassTurnOn", {}, "open", {}),
        ("cover", {"command_topic": "c"}, "HassTurnOff", {}, "close", {}),
        ("lock", {"command_topic": "l"}, "HassTurnOn", {}, "lock", {}),
        ("lock", {"command_topic": "l"}, "HassTurnOff", {}, "unlock", {}),
        ("scene", {"command_topic": "s"}, "HassTurnOn", {}, "activate", {}),
        ("button", {"command_topic": "b"}, "HassTurnOn", {}, "press", {}),
        ("switch", {"command_topic": "s"}, "HassToggle", {}, "toggle", {}),
        (
            "light",
            Z2M_LIGHT,
            "HassLightSet",
            {"brightness": "40%"},
            "set_brightness",
            {"brightness": 40},
        ),
        ("light", Z2M_LIGHT, "HassLightSet", {"color": "red"}, "set_color", {"color": "red"}),
        (
            "light",
            Z2M_LIGHT,
            "HassLightSet",
            {"temperature": {"value": 3000}},
            "set_color_temp",
            {"color_temp": 3000},
        ),
        (
            "cover",
            {"set_position_topic": "p", "position_topic": "s"},
            "HassSetPosition",
            {"position": 30},
            "set_position",
            {"position": 30},
        ),
        (
            "climate",
            {"temperature_command_topic": "t"},
            "HassClimateSetTemperature",
            {"temperature": 21},
            "set_temperature",
            {"temperature": 21},
        ),
        (
            "fan",
            {"command_topic": "f", "percentage_command_topic": "p"},
            "HassFanSetSpeed",
            {"percentage": 50},
            "set_percentage",
            {"percentage": 50},
        ),
        ("vacuum", {"command_topic": "v"}, "HassVacuumStart", {}, "start", {}),
        ("vacuum", {"command_topic": "v"}, "HassVacuumReturnToBase", {}, "return_to_base", {}),
        ("media_player", {"command_topic": "m"}, "HassMediaPause", {}, "pause", {}),
        ("media_player", {"command_topic": "m"}, "HassMediaUnpause", {}, "play", {}),
        ("media_player", {"command_topic": "m"}, "HassMediaNext", {}, "next", {}),
        ("sensor", {"state_topic": "s"}, "HassGetState", {}, "get_state", {}),
    ],
)
def test_intent_to_action(component, config, intent, slots, verb, args) -> None:
    entity = home_media(config) if component == "media_player" else discovered(component, config)
    action = intent_to_action(entity, intent, slots)
    assert action == Action(entity.entity_id, verb, args)


def test_intent_without_action() -> None:
    scene = discovered("scene", {"command_topic": "s"})
    assert intent_to_action(scene, "HassTurnOff", {}) is None
    sensor = discovered("sensor", {"state_topic": "s"})
    assert intent_to_action(sensor, "HassTurnOn", {}) is None
    switch = discovered("switch", {"command_topic": "s"})
    assert intent_to_action(switch, "HassLightSet", {"brightness": 50}) is None
    assert intent_to_action(switch, "HassNoSuchIntent", {}) is None
    assert intent_to_action(switch, "HassSetPosition", {}) is None


def test_lawn_mower_publishes_the_verb_to_its_own_topic() -> None:
    from hubagent.act.executor import build_messages as build
    from hubagent.act.intent_map import intent_to_action
    from hubagent.types import Action, Entity

    mower = Entity(
        "lawn_mower.garden",
        "Garden mower",
        mqtt={
            "start_mowing_command_topic": "mower/start",
            "dock_command_topic": "mower/action",
            "dock_command_template": '{"cmd": "{{ value }}"}',
        },
    )
    assert intent_to_action(mower, "HassLawnMowerStartMowing", {}) == Action(
        "lawn_mower.garden", "start_mowing"
    )
    start = build(mower, Action("lawn_mower.garden", "start_mowing"))
    assert [(m.topic, m.payload) for m in start] == [("mower/start", "start_mowing")]
    dock = build(mower, Action("lawn_mower.garden", "dock"))
    assert [(m.topic, m.payload) for m in dock] == [("mower/action", '{"cmd": "dock"}')]
