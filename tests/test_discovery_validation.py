"""Discovery is as strict as Home Assistant 2025.4: each kind of config HA's MQTT platform
schemas reject is rejected and logged once with its key and reason; every real payload of
the mqtt-discovery-dev benchmark is still accepted. Pure parsing, no broker needed."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from hubagent.home.registry import Registry
from hubagent.mqtt.discovery import DiscoveryError, parse_message
from hubagent.mqtt.state import DiscoveryManager

BENCH = Path(__file__).resolve().parents[2] / "shared" / "benchmarks" / "mqtt-discovery-dev"
DEV = {"identifiers": ["dev1"], "name": "Dev"}
ORIGIN = {"name": "fw"}

# (kind, component, config, words the reason must contain). Written from HA 2025.4's
# components/mqtt platform schemas; every config is otherwise complete.
INVALID: list[tuple[str, str, dict[str, Any], str]] = [
    ("switch_no_cmd", "switch", {"state_topic": "s/state"}, "'command_topic' is missing"),
    ("light_no_cmd", "light", {"brightness_command_topic": "l/bri"}, "'command_topic'"),
    ("lock_no_cmd", "lock", {"state_topic": "l/state"}, "'command_topic' is missing"),
    ("button_no_cmd", "button", {"payload_press": "GO"}, "'command_topic' is missing"),
    ("siren_no_cmd", "siren", {"state_topic": "s/state"}, "'command_topic' is missing"),
    (
        "humidifier_no_target",
        "humidifier",
        {"command_topic": "h/set"},
        "'target_humidity_command_topic' is missing",
    ),
    (
        "humidity_range",
        "humidifier",
        {"cmd_t": "h/set", "hum_cmd_t": "h/hum", "min_hum": 60, "max_hum": 40},
        "max_humidity",
    ),
    ("select_no_options", "select", {"command_topic": "s/set"}, "'options' is missing"),
    ("number_min_max", "number", {"command_topic": "n/set", "min": 10, "max": 5}, "max"),
    ("number_step", "number", {"command_topic": "n/set", "step": 0}, "step must be >="),
    ("text_max", "text", {"command_topic": "t/set", "max": 300}, "<= 255"),
    ("fan_speed_min", "fan", {"command_topic": "f/set", "speed_range_min": 0}, "speed_range_min"),
    (
        "fan_presets_alone",
        "fan",
        {"command_topic": "f/set", "preset_mode_command_topic": "f/preset"},
        "used together",
    ),
    ("timer", "timer", {"command_topic": "t/set"}, "not an MQTT platform"),
    ("media_player", "media_player", {"command_topic": "m/set"}, "not an MQTT platform"),
    (
        "json_color_modes",
        "light",
        {"schema": "json", "command_topic": "l/set", "supported_color_modes": ["onoff", "rgb"]},
        "supported_color_modes",
    ),
    (
        "template_light",
        "light",
        {"schema": "template", "command_topic": "l/set", "command_off_template": "off"},
        "command_on_template",
    ),
    ("light_schema", "light", {"schema": "default", "command_topic": "l/set"}, "schema"),
    ("brightness_scale", "light", {"command_topic": "l/set", "bri_scl": 0}, "brightness_scale"),
    (
        "climate_preset_none",
        "climate",
        {"preset_mode_command_topic": "c/p", "preset_modes": ["eco", "none"]},
        "'none'",
    ),
    (
        "climate_precision",
        "climate",
        {"temperature_command_topic": "c/t", "precision": 0.25},
        "precision",
    ),
    (
        "cover_set_position_alone",
        "cover",
        {"command_topic": "c/set", "set_position_topic": "c/pos"},
        "'position_topic'",
    ),
    (
        "cover_tilt_template_alone",
        "cover",
        {"command_topic": "c/set", "tilt_command_template": "{{ value }}"},
        "'tilt_command_topic'",
    ),
    (
        "valve_position_payloads",
        "valve",
        {"command_topic": "v/set", "reports_position": True, "payload_open": "OPEN"},
        "reports a position",
    ),
    ("sensor_no_state", "sensor", {"unit_of_measurement": "°C"}, "'state_topic' is missing"),
    ("binary_sensor_no_state", "binary_sensor", {"device_class": "door"}, "'state_topic'"),
    ("alarm_no_state", "alarm_control_panel", {"command_topic": "a/set"}, "'state_topic'"),
    ("event_no_types", "event", {"state_topic": "e/state"}, "'event_types' is missing"),
    (
        "vacuum_features",
        "vacuum",
        {"command_topic": "v/set", "supported_features": ["start", "teleport"]},
        "supported_features",
    ),
    (
        "device_without_ids",
        "switch",
        {"command_topic": "s/set", "device": {"name": "No ids"}},
        "identifiers",
    ),
    (
        "availability_twice",
        "switch",
        {"command_topic": "s/set", "avty_t": "s/avty", "avty": [{"topic": "s/a2"}]},
        "exclusive",
    ),
    (
        "sensor_options",
        "sensor",
        {"state_topic": "s/state", "options": ["a", "b"]},
        "device_class 'enum'",
    ),
]

# Device-based discovery (`homeassistant/device/<id>/config`): the whole message is refused.
INVALID_DEVICE: list[tuple[str, dict[str, Any], str]] = [
    (
        "no_origin",
        {"dev": DEV, "cmps": {"a": {"p": "switch", "cmd_t": "a/set", "uniq_id": "a"}}},
        "origin",
    ),
    (
        "no_unique_id",
        {"dev": DEV, "o": ORIGIN, "cmps": {"a": {"p": "switch", "cmd_t": "a/set"}}},
        "'unique_id' is required",
    ),
    (
        "unknown_platform",
        {"dev": DEV, "o": ORIGIN, "cmps": {"a": {"p": "timer", "cmd_t": "a", "uniq_id": "a"}}},
        "platform",
    ),
    (
        "dev_without_ids",
        {"dev": {"name": "x"}, "o": ORIGIN, "cmps": {"a": {"p": "switch", "cmd_t": "a"}}},
        "identifiers",
    ),
    (
        "origin_without_name",
        {"dev": DEV, "o": {"sw": "1.0"}, "cmps": {"a": {"p": "switch", "cmd_t": "a"}}},
        "name",
    ),
]


@pytest.mark.parametrize(
    ("kind", "component", "config", "why"), INVALID, ids=[i[0] for i in INVALID]
)
def test_each_kind_ha_rejects_is_rejected_with_its_reason(
    kind: str, component: str, config: dict[str, Any], why: str
) -> None:
    with pytest.raises(DiscoveryError) as info:
        parse_message(f"homeassistant/{component}/{kind}/config", json.dumps(config))
    assert why in str(info.value), str(info.value)


@pytest.mark.parametrize(
    ("kind", "payload", "why"), INVALID_DEVICE, ids=[i[0] for i in INVALID_DEVICE]
)
def test_device_based_configs_ha_rejects(kind: str, payload: dict[str, Any], why: str) -> None:
    with pytest.raises(DiscoveryError) as info:
        parse_message(f"homeassistant/device/{kind}/config", json.dumps(payload))
    assert why in str(info.value), str(info.value)


def test_the_invalid_kinds_are_counted_and_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="hubagent")
    manager = DiscoveryManager(Registry())
    for _ in range(3):  # retained configs come back after every reconnect
        for kind, component, config, _why in INVALID:
            payload = json.dumps(config).encode()
            manager.handle_message(f"homeassistant/{component}/{kind}/config", payload, True)
        for kind, payload, _why in INVALID_DEVICE:
            manager.handle_message(
                f"homeassistant/device/{kind}/config", json.dumps(payload).encode(), True
            )
    assert len(manager.registry) == 0
    kinds = len(INVALID) + len(INVALID_DEVICE)
    assert kinds >= 25 and manager.counters["bad_config"] == 3 * kinds
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == kinds  # once per topic, with the key and the reason
    for kind, _component, _config, why in INVALID:
        (line,) = [w for w in warnings if f"/{kind}/config" in w]
        assert why in line


def test_an_invalid_component_of_a_device_only_drops_that_component(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """HA validates each component of a device config on its own; the valid ones stay."""
    caplog.set_level(logging.WARNING, logger="hubagent")
    payload = {
        "dev": DEV,
        "o": ORIGIN,
        "cmps": {
            "plug": {
                "p": "switch",
                "cmd_t": "dev1/plug/set",
                "uniq_id": "dev1_plug",
                "name": "Plug",
            },
            "knob": {
                "p": "number",
                "cmd_t": "dev1/knob",
                "uniq_id": "dev1_knob",
                "min": 9,
                "max": 1,
            },
        },
    }
    msg = parse_message("homeassistant/device/dev1/config", json.dumps(payload))
    assert [c.component for c in msg.components] == ["switch"]
    assert msg.invalid and "max" in msg.invalid[0][1]
    parse_message("homeassistant/device/dev1/config", json.dumps(payload))
    assert sum("dev1 knob" in r.getMessage() for r in caplog.records) == 1


def test_valid_configs_near_the_limits_are_accepted() -> None:
    ok = [
        ("number", {"command_topic": "n/set", "min": 5, "max": 5}),  # HA: max >= min
        ("fan", {"command_topic": "f/set", "speed_range_min": 1, "speed_range_max": 2}),
        (
            "light",
            {"schema": "JSON", "command_topic": "l/set", "supported_color_modes": ["white", "hs"]},
        ),
        ("climate", {"temperature_command_topic": "c/t", "precision": 0.5, "temp_step": 0.5}),
        ("cover", {"tilt_command_topic": "c/tilt"}),  # no command_topic needed
        ("vacuum", {"supported_features": ["start", "locate", "fan_speed"]}),
        ("sensor", {"state_topic": "s", "device_class": "temperature_delta"}),  # newer class
        (
            "device_automation",
            {"atype": "trigger", "t": "x/action", "type": "action", "stype": "on", "dev": DEV},
        ),
    ]
    for component, config in ok:
        msg = parse_message(f"homeassistant/{component}/ok/config", json.dumps(config))
        assert len(msg.components) == 1, component


def test_every_real_benchmark_payload_is_accepted() -> None:
    path = BENCH / "discovery.jsonl"
    if not path.is_file():
        pytest.skip("benchmark folder mqtt-discovery-dev is absent")
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    for row in rows:
        text = row.get("payload_raw")
        payload = text if isinstance(text, str) else json.dumps(row["payload"])
        prefix = row["topic"].split("/", 1)[0]  # one row uses a custom discovery prefix
        msg = parse_message(row["topic"], payload, prefix)  # raises on a rejected config
        assert not msg.invalid, (row["topic"], msg.invalid)
    assert len(rows) >= 200
