"""Incoming state: device payloads -> the registry's state vocabulary.

`extract_state()` reads one message on one of an entity's state topics, applies the
matching `*_template`, and maps the result to registry keys: `state` ("on"/"off",
"open"/"closed", "locked", hvac mode, ...), `brightness` and `position` in percent,
`color_temp` in kelvin, temperatures, `percentage`, ... (HA's MQTT platform rules).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hubagent.mqtt import capabilities as cap
from hubagent.mqtt.templates import TemplateError, is_json, parse_json, renderer

# topic key -> (template key, state key) for the simple numeric/text topics.
TOPIC_FIELDS: dict[str, tuple[str, str]] = {
    "brightness_state_topic": ("brightness_value_template", "brightness"),
    "color_temp_state_topic": ("color_temp_value_template", "color_temp"),
    "rgb_state_topic": ("rgb_value_template", "color"),
    "hs_state_topic": ("hs_value_template", "color"),
    "xy_state_topic": ("xy_value_template", "color"),
    "effect_state_topic": ("effect_value_template", "effect"),
    "color_mode_state_topic": ("color_mode_value_template", "color_mode"),
    "position_topic": ("position_template", "position"),
    "tilt_status_topic": ("tilt_status_template", "tilt"),
    "current_temperature_topic": ("current_temperature_template", "current_temperature"),
    "temperature_state_topic": ("temperature_state_template", "temperature"),
    "temperature_low_state_topic": ("temperature_low_state_template", "target_temp_low"),
    "temperature_high_state_topic": ("temperature_high_state_template", "target_temp_high"),
    "mode_state_topic": ("mode_state_template", "mode"),
    "action_topic": ("action_template", "hvac_action"),
    "fan_mode_state_topic": ("fan_mode_state_template", "fan_mode"),
    "swing_mode_state_topic": ("swing_mode_state_template", "swing_mode"),
    "preset_mode_state_topic": ("preset_mode_value_template", "preset_mode"),
    "percentage_state_topic": ("percentage_value_template", "percentage"),
    "oscillation_state_topic": ("oscillation_value_template", "oscillating"),
    "direction_state_topic": ("direction_value_template", "direction"),
    "current_humidity_topic": ("current_humidity_template", "current_humidity"),
    "target_humidity_state_topic": ("target_humidity_state_template", "humidity"),
    "latest_version_topic": ("latest_version_template", "latest_version"),
    "json_attributes_topic": ("json_attributes_template", "attributes"),
}
STATE_TOPIC_KEYS = ("state_topic", *TOPIC_FIELDS)
EMPTY_VALUES = frozenset({"", "none", "None", "null", "unknown"})


def _number(text: Any) -> float | int | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    if value != value or value in (float("inf"), float("-inf")):
        return None
    return int(value) if value.is_integer() else value


def _render(config: dict[str, Any], template_key: str, payload: str) -> str:
    source = config.get(template_key)
    if not source:
        return payload.strip()
    return renderer.render_value(source, payload)


def _onoff(config: dict[str, Any], value: str, on_key: str, off_key: str) -> str | None:
    on = config.get(on_key, config.get("payload_on", "ON"))
    off = config.get(off_key, config.get("payload_off", "OFF"))
    if value == str(on):
        return "on"
    if value == str(off):
        return "off"
    if value.lower() in ("on", "off"):
        return value.lower()
    return None


def _position_percent(config: dict[str, Any], raw: Any) -> int | None:
    number = _number(raw)
    if number is None:
        return None
    closed, opened = config.get("position_closed", 0), config.get("position_open", 100)
    if opened == closed:
        return None
    pct = round((number - closed) * 100 / (opened - closed))
    return max(0, min(100, pct))


def _cover_state(config: dict[str, Any], value: str) -> str | None:
    for key, default, state in (
        ("state_open", "open", "open"),
        ("state_opening", "opening", "opening"),
        ("state_closed", "closed", "closed"),
        ("state_closing", "closing", "closing"),
        ("state_stopped", "stopped", "stopped"),
    ):
        if value == str(config.get(key, default)):
            return state
    if value == str(config.get("payload_open", "OPEN")):
        return "open"
    if value == str(config.get("payload_close", "CLOSE")):
        return "closed"
    return value.lower() if value.lower() in ("open", "closed", "opening", "closing") else None


def _lock_state(config: dict[str, Any], value: str) -> str | None:
    for key, default, state in (
        ("state_locked", "LOCKED", "locked"),
        ("state_unlocked", "UNLOCKED", "unlocked"),
        ("state_locking", "LOCKING", "locking"),
        ("state_unlocking", "UNLOCKING", "unlocking"),
        ("state_jammed", "JAMMED", "jammed"),
        ("state_open", "OPEN", "open"),
        ("state_opening", "OPENING", "opening"),
    ):
        if value == str(config.get(key, default)):
            return state
    return None


def _rgb_of(color: dict[str, Any]) -> list[int] | None:
    """The rgb HA shows for a json light's `color` (rgb as is, xy and hs converted)."""
    nums = {k: _number(v) for k, v in color.items()}
    if any(v is None for v in nums.values()):
        return None
    if {"r", "g", "b"} <= nums.keys():
        return [int(nums["r"]), int(nums["g"]), int(nums["b"])]
    if {"x", "y"} <= nums.keys():
        return list(cap.xy_to_rgb(nums["x"], nums["y"]))
    if {"h", "s"} <= nums.keys():
        return list(cap.hs_to_rgb(nums["h"], nums["s"]))
    return None


def _json_light(config: dict[str, Any], payload: str) -> dict[str, Any]:
    data = parse_json(payload)
    if not is_json(data) or not isinstance(data, dict):
        return {}
    out: dict[str, Any] = {}
    state = data.get("state")
    if isinstance(state, str) and state.upper() in ("ON", "OFF"):
        out["state"] = state.lower()
    bri = _number(data.get("brightness"))
    if bri is not None:
        scale = config.get("brightness_scale", 255)
        out["brightness"] = round(cap.value_to_brightness(1, scale, bri) * 100 / 255)
    ct = _number(data.get("color_temp"))
    if ct:
        out["color_temp"] = int(ct) if config.get("color_temp_kelvin") else cap.mired_to_kelvin(ct)
    color = data.get("color")
    if isinstance(color, dict):
        out["color"] = {k: v for k, v in color.items() if k in ("r", "g", "b", "h", "s", "x", "y")}
        rgb = _rgb_of(out["color"])
        if rgb is not None:
            out["rgb"] = rgb
    for key in ("color_mode", "effect"):
        if isinstance(data.get(key), str):
            out[key] = data[key]
    return out


def _main_state(component: str, config: dict[str, Any], payload: str) -> dict[str, Any]:
    """The message on `state_topic`, by platform."""
    if component == "light" and config.get("schema") == "json":
        return _json_light(config, payload)
    if component == "vacuum":
        data = parse_json(payload)
        if is_json(data) and isinstance(data, dict):
            return {k: data[k] for k in ("state", "battery_level", "fan_speed") if k in data}
        return {}
    if component == "light" and config.get("schema") == "template":
        template = "state_template"
    elif component in ("light", "fan", "humidifier", "siren") and "state_value_template" in config:
        template = "state_value_template"
    else:
        template = "value_template"  # also older light configs that used value_template
    value = _render(config, template, payload)
    if value in EMPTY_VALUES:
        return {}
    if component in ("switch", "light", "fan", "humidifier", "siren", "binary_sensor"):
        state = _onoff(config, value, "state_on", "state_off")
        return {"state": state} if state else {}
    if component in ("cover", "valve"):
        state = _cover_state(config, value)
        if state:
            return {"state": state}
        pct = _position_percent(config, value)  # valves and some covers report a number
        return (
            {"position": pct, "state": "closed" if pct == 0 else "open"} if pct is not None else {}
        )
    if component == "lock":
        state = _lock_state(config, value)
        return {"state": state} if state else {}
    if component == "update":
        data = parse_json(value)
        if is_json(data) and isinstance(data, dict):
            return {k: v for k, v in data.items() if not isinstance(v, dict | list)}
        return {"installed_version": value}
    number = _number(value) if component in ("sensor", "number") else None
    return {"state": number if number is not None else value}


def renders_empty(config: dict[str, Any], topic_key: str, payload: str) -> bool:
    """Whether the message carries "no value" for this role (an empty payload, or a template
    that renders None/unknown, e.g. `"preset_mode": null`): skipped, not malformed."""
    if topic_key == "state_topic":
        template_key: str | None = "value_template"
    else:
        template_key = TOPIC_FIELDS.get(topic_key, (None, None))[0]
    try:
        value = _render(config, template_key, payload) if template_key else payload.strip()
    except TemplateError:
        return False
    return value in EMPTY_VALUES


def extract_state(
    component: str, config: dict[str, Any], topic_key: str, payload: str
) -> dict[str, Any]:
    """State values from one message on `config[topic_key]`; TemplateError propagates."""
    if topic_key == "state_topic":
        return _main_state(component, config, payload)
    template_key, field = TOPIC_FIELDS[topic_key]
    value = _render(config, template_key, payload)
    if value in EMPTY_VALUES:
        return {}
    if field == "attributes":
        data = parse_json(value)
        return {"attributes": data} if is_json(data) and isinstance(data, dict) else {}
    if field == "brightness":
        number = _number(value)
        if number is None:
            return {}
        scale = config.get("brightness_scale", 255) or 255
        return {"brightness": max(0, min(100, round(number * 100 / scale)))}
    if field == "color_temp":
        number = _number(value)
        if not number:
            return {}
        return {
            "color_temp": int(number)
            if config.get("color_temp_kelvin")
            else cap.mired_to_kelvin(number)
        }
    if field == "position":
        pct = _position_percent(config, value)
        return {} if pct is None else {"position": pct}
    if field == "percentage":
        number = _number(value)
        if number is None:
            return {}
        low, high = config.get("speed_range_min", 1), config.get("speed_range_max", 100)
        return {"percentage": max(0, min(100, cap.ranged_value_to_percentage(low, high, number)))}
    if field == "oscillating":
        on = str(config.get("payload_oscillation_on", "oscillate_on"))
        return {"oscillating": value == on}
    if field == "mode" and component == "climate":
        return {"state": value, "hvac_mode": value}
    if field == "color":
        parts = [_number(p) for p in value.split(",")]
        return {"color": parts} if parts and None not in parts else {}
    number = _number(value)
    return {field: number if number is not None and field not in ("effect",) else value}


@dataclass
class Availability:
    """An entity's availability topics and what each last said (HA `availability_mode`)."""

    topics: list[tuple[str, str, str, str | None]]  # topic, available, not available, tpl
    mode: str = "latest"
    seen: dict[int, bool] = field(default_factory=dict)
    latest: bool = False

    def available(self) -> bool:
        if self.mode == "all":
            return len(self.seen) == len(self.topics) and all(self.seen.values())
        if self.mode == "any":
            return any(self.seen.values())
        return self.latest


def availability_from_config(config: dict[str, Any]) -> Availability | None:
    """`availability_topic` and `availability` entries of a normalised config."""
    entries: list[tuple[str, str, str, str | None]] = []
    default_on = str(config.get("payload_available", "online"))
    default_off = str(config.get("payload_not_available", "offline"))
    if config.get("availability_topic"):
        entries.append(
            (
                config["availability_topic"],
                default_on,
                default_off,
                config.get("availability_template"),
            )
        )
    for entry in config.get("availability") or []:
        entries.append(
            (
                entry["topic"],
                str(entry.get("payload_available", "online")),
                str(entry.get("payload_not_available", "offline")),
                entry.get("value_template"),
            )
        )
    if not entries:
        return None
    return Availability(entries, str(config.get("availability_mode", "latest")))
