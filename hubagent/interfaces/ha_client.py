"""Pure conversions between Home Assistant's REST shapes and hubagent's types.

`action_to_service` maps an Action to the HA service call that carries it out;
`state_to_entity` turns one `/api/states` item into an Entity with capabilities;
`REGISTRY_TEMPLATE` asks `/api/template` for the floors, areas and entity areas that the
REST API does not expose. No I/O here, so all of it is unit-tested without a server.
"""

from __future__ import annotations

from typing import Any

from hubagent.types import DOMAIN_VERBS, READ_ONLY_DOMAINS, Action, Entity


class ServiceMappingError(ValueError):
    """An Action that has no Home Assistant service equivalent."""


# verb -> (service, argument name in Action.args, service data key)
_SETTERS: dict[str, tuple[str, str, str]] = {
    "set_percentage": ("set_percentage", "percentage", "percentage"),
    "oscillate": ("oscillate", "oscillating", "oscillating"),
    "set_preset_mode": ("set_preset_mode", "preset_mode", "preset_mode"),
    "set_humidity": ("set_humidity", "humidity", "humidity"),
    "set_mode": ("set_mode", "mode", "mode"),
    "set_temperature": ("set_temperature", "temperature", "temperature"),
    "set_hvac_mode": ("set_hvac_mode", "hvac_mode", "hvac_mode"),
    "set_fan_mode": ("set_fan_mode", "fan_mode", "fan_mode"),
    "set_swing_mode": ("set_swing_mode", "swing_mode", "swing_mode"),
    "select_option": ("select_option", "option", "option"),
    "set_value": ("set_value", "value", "value"),
}
# `set(attribute, value)` -> the verb and argument it stands for (as the MQTT executor does).
_SET_ATTRIBUTE: dict[str, tuple[str, str]] = {
    "brightness": ("set_brightness", "brightness"),
    "color": ("set_color", "color"),
    "color_temp": ("set_color_temp", "color_temp"),
    "position": ("set_position", "position"),
    "volume": ("set_volume", "volume"),
    **{arg: (verb, arg) for verb, (_, arg, _) in _SETTERS.items()},
}
_PLAIN: dict[str, dict[str, str]] = {
    "cover": {"open": "open_cover", "close": "close_cover", "stop": "stop_cover"},
    "valve": {"open": "open_valve", "close": "close_valve", "stop": "stop_valve"},
    "media_player": {
        "play": "media_play",
        "pause": "media_pause",
        "stop": "media_stop",
        "next": "media_next_track",
        "previous": "media_previous_track",
    },
    "scene": {"activate": "turn_on", "turn_on": "turn_on"},
    "alarm_control_panel": {
        "arm_home": "alarm_arm_home",
        "arm_away": "alarm_arm_away",
        "arm_night": "alarm_arm_night",
        "disarm": "alarm_disarm",
    },
}
_SAME_NAME = {
    "turn_on",
    "turn_off",
    "toggle",
    "lock",
    "unlock",
    "open",
    "press",
    "start",
    "pause",
    "stop",
    "return_to_base",
}


def _arg(action: Action, name: str) -> Any:
    args = action.args
    value = args.get(name, args.get("value"))
    if value is None:
        raise ServiceMappingError(f"{action.action} on {action.entity} needs {name!r}")
    return value


def _number(action: Action, name: str) -> float | int:
    value = _arg(action, name)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ServiceMappingError(f"{name} must be a number, got {value!r}") from None
    return int(number) if number.is_integer() else number


def _color_data(value: Any) -> dict[str, Any]:
    if isinstance(value, list | tuple) and len(value) == 3:
        return {"rgb_color": [int(v) for v in value]}
    if isinstance(value, dict) and {"r", "g", "b"} <= set(value):
        return {"rgb_color": [int(value["r"]), int(value["g"]), int(value["b"])]}
    return {"color_name": str(value).strip().lower().replace(" ", "")}


def action_to_service(action: Action) -> tuple[str, str, dict[str, Any]]:
    """`(domain, service, service_data)` for `action`; ServiceMappingError if there is none."""
    domain = action.entity.split(".", 1)[0]
    verb = action.action
    if verb == "get_state":
        raise ServiceMappingError("get_state is answered from the state store, not a service")
    if verb == "set":
        attribute = str(action.args.get("attribute", ""))
        if attribute not in _SET_ATTRIBUTE:
            raise ServiceMappingError(f"cannot set {attribute!r} on {action.entity}")
        verb, arg = _SET_ATTRIBUTE[attribute]
        action = Action(action.entity, verb, {arg: action.args.get("value")})
    if domain in READ_ONLY_DOMAINS or verb not in DOMAIN_VERBS.get(domain, ()):
        raise ServiceMappingError(f"{action.entity} does not support {verb!r}")
    data: dict[str, Any] = {"entity_id": action.entity}
    if domain == "light" and verb.startswith("set_"):
        if verb == "set_brightness":
            data["brightness_pct"] = _number(action, "brightness")
        elif verb == "set_color":
            data.update(_color_data(_arg(action, "color")))
        else:
            data["color_temp_kelvin"] = int(_number(action, "color_temp"))
        return "light", "turn_on", data
    if verb == "set_position":
        service = "set_valve_position" if domain == "valve" else "set_cover_position"
        data["position"] = _number(action, "position")
        return domain, service, data
    if verb == "set_volume":
        data["volume_level"] = round(float(_number(action, "volume")) / 100.0, 3)
        return domain, "volume_set", data
    if verb == "mute":
        muted = action.args.get("mute", action.args.get("value", True))
        data["is_volume_muted"] = bool(muted)
        return domain, "volume_mute", data
    if verb == "clean_area":  # HA 2026.3+: areas are HA's own, mapped to segments in HA
        area = action.args.get("area")
        data["cleaning_area_id"] = [str(a) for a in (area if isinstance(area, list) else [area])]
        return domain, "clean_area", data
    if verb in _SETTERS:
        service, arg, key = _SETTERS[verb]
        numeric = verb in ("set_percentage", "set_humidity", "set_temperature")
        if verb == "set_value" and domain == "number":
            numeric = True
        if verb == "oscillate":
            data[key] = bool(action.args.get(arg, action.args.get("value", True)))
        else:
            data[key] = _number(action, arg) if numeric else str(_arg(action, arg))
        return domain, service, data
    if verb in _PLAIN.get(domain, {}):
        if domain == "alarm_control_panel" and action.args.get("code"):
            data["code"] = str(action.args["code"])
        return domain, _PLAIN[domain][verb], data
    if verb in _SAME_NAME:
        if domain == "lock" and action.args.get("code"):
            data["code"] = str(action.args["code"])
        return domain, verb, data
    raise ServiceMappingError(f"no Home Assistant service for {verb!r} on {action.entity}")


# One template render returns what the REST API cannot: floors, areas and each entity's
# area (device area included, as HA's area_id() resolves it). `floors()` exists since
# HA 2024.4; AREAS_ONLY_TEMPLATE is the fallback for older cores. floor_id() looks areas
# up by name (not id), hence floor_id(area_name(x)).
_ENTITY_LOOP = (
    "{%- set e = namespace(items=[]) -%}"
    "{%- for s in states -%}{%- set e.items = e.items + [[s.entity_id, area_id(s.entity_id)]] -%}"
    "{%- endfor -%}"
    "{%- set a = namespace(items=[]) -%}"
    "{%- for x in areas() -%}{%- set a.items = a.items + [[x, area_name(x), FLOOR]] -%}"
    "{%- endfor -%}"
)
REGISTRY_TEMPLATE = (
    _ENTITY_LOOP.replace("FLOOR", "floor_id(area_name(x))") + "{%- set f = namespace(items=[]) -%}"
    "{%- for x in floors() -%}{%- set f.items = f.items + [[x, floor_name(x)]] -%}{%- endfor -%}"
    '{{ {"floors": f.items, "areas": a.items, "entities": e.items} | tojson }}'
)
AREAS_ONLY_TEMPLATE = (
    _ENTITY_LOOP.replace("FLOOR", "none")
    + '{{ {"floors": [], "areas": a.items, "entities": e.items} | tojson }}'
)

_COLOR_MODES = ("hs", "rgb", "rgbw", "rgbww", "xy")
# HA supported_features bits (homeassistant.components.*.const).
_COVER_SET_POSITION = 4
_FAN_SET_SPEED, _FAN_OSCILLATE = 1, 2
_MEDIA_VOLUME_SET, _MEDIA_VOLUME_MUTE = 4, 8
_VACUUM_CLEAN_AREA = 16384


def _options(attrs: dict[str, Any], key: str) -> dict[str, Any] | None:
    values = attrs.get(key)
    return {"options": [str(v) for v in values]} if isinstance(values, list) and values else None


def _capabilities(domain: str, attrs: dict[str, Any]) -> dict[str, dict[str, Any]]:
    caps: dict[str, dict[str, Any]] = {}
    features = attrs.get("supported_features") or 0
    features = features if isinstance(features, int) else 0
    if domain == "light":
        modes = [str(m) for m in attrs.get("supported_color_modes") or []]
        if any(m != "onoff" for m in modes):
            caps["brightness"] = {"min": 0, "max": 100, "unit": "%"}
        if "color_temp" in modes:
            low = attrs.get("min_color_temp_kelvin") or 2000
            high = attrs.get("max_color_temp_kelvin") or 6500
            caps["color_temp"] = {"min": int(low), "max": int(high), "unit": "K"}
        color = [m for m in modes if m in _COLOR_MODES]
        if color:
            caps["color"] = {"modes": color}
        if effects := _options(attrs, "effect_list"):
            caps["effect"] = effects
    elif domain in ("cover", "valve") and features & _COVER_SET_POSITION:
        caps["position"] = {"min": 0, "max": 100, "unit": "%"}
    elif domain == "climate":
        unit = attrs.get("temperature_unit") or "°C"
        if "temperature" in attrs or "min_temp" in attrs:
            caps["temperature"] = {
                "min": attrs.get("min_temp", 7),
                "max": attrs.get("max_temp", 35),
                "step": attrs.get("target_temp_step", 0.5),
                "unit": unit,
            }
        for cap, key in (
            ("hvac_mode", "hvac_modes"),
            ("fan_mode", "fan_modes"),
            ("swing_mode", "swing_modes"),
            ("preset_mode", "preset_modes"),
        ):
            if found := _options(attrs, key):
                caps[cap] = found
    elif domain == "fan":
        if features & _FAN_SET_SPEED:
            step = attrs.get("percentage_step") or 1
            caps["percentage"] = {"min": 0, "max": 100, "step": step, "unit": "%"}
        if features & _FAN_OSCILLATE:
            caps["oscillation"] = {"options": [True, False]}
        if presets := _options(attrs, "preset_modes"):
            caps["preset_mode"] = presets
    elif domain == "humidifier":
        low, high = attrs.get("min_humidity", 0), attrs.get("max_humidity", 100)
        caps["humidity"] = {"min": low, "max": high, "step": 1, "unit": "%"}
        if modes := _options(attrs, "available_modes"):
            caps["mode"] = modes
    elif domain == "vacuum" and features & _VACUUM_CLEAN_AREA:
        caps["cleaning_area"] = {}
    elif domain == "media_player" and features & _MEDIA_VOLUME_SET:
        caps["volume"] = {"min": 0, "max": 100, "unit": "%"}
    elif domain in ("select", "input_select") and (options := _options(attrs, "options")):
        caps["option"] = options
    elif domain == "number":
        caps["value"] = {
            "min": attrs.get("min", 0),
            "max": attrs.get("max", 100),
            "step": attrs.get("step", 1),
        }
        if attrs.get("unit_of_measurement"):
            caps["value"]["unit"] = str(attrs["unit_of_measurement"])
    elif domain == "text":
        caps["value"] = {"min": attrs.get("min", 0), "max": attrs.get("max", 255)}
    return caps


def state_values(domain: str, state: str, attrs: dict[str, Any]) -> dict[str, Any]:
    """hubagent's state dict (percent brightness/position/volume) from one HA state."""
    values: dict[str, Any] = {"state": state}
    if domain == "light" and isinstance(attrs.get("brightness"), int | float):
        values["brightness"] = round(attrs["brightness"] * 100 / 255)
    if domain == "light" and attrs.get("color_temp_kelvin"):
        values["color_temp"] = attrs["color_temp_kelvin"]
    if domain == "light" and isinstance(attrs.get("rgb_color"), list):
        values["color"] = list(attrs["rgb_color"])
    if domain in ("cover", "valve") and "current_position" in attrs:
        values["position"] = attrs["current_position"]
    if domain == "climate":
        values["hvac_mode"] = state
        for key in ("temperature", "current_temperature", "fan_mode", "swing_mode"):
            if attrs.get(key) is not None:
                values[key] = attrs[key]
    if domain == "weather":  # what HassGetWeather's answer reads (hubagent.assist)
        for key in ("temperature", "temperature_unit", "humidity"):
            if attrs.get(key) is not None:
                values[key] = attrs[key]
    if domain == "media_player" and isinstance(attrs.get("volume_level"), int | float):
        values["volume"] = round(attrs["volume_level"] * 100)
    for key in ("percentage", "humidity", "unit_of_measurement"):
        if attrs.get(key) is not None:
            values[key] = attrs[key]
    if domain in ("select", "input_select"):
        values["option"] = state
    if domain in ("number", "text"):
        values["value"] = state
    return values


def state_to_entity(item: dict[str, Any], area: str | None = None) -> Entity:
    """An Entity (source "homeassistant", no MQTT config) from one `/api/states` item."""
    entity_id = str(item["entity_id"])
    domain = entity_id.split(".", 1)[0]
    attrs = item.get("attributes") or {}
    attrs = attrs if isinstance(attrs, dict) else {}
    state = str(item.get("state", "unknown"))
    name = attrs.get("friendly_name") or entity_id.split(".", 1)[1].replace("_", " ")
    return Entity(
        entity_id=entity_id,
        name=str(name),
        area=area,
        device_class=attrs.get("device_class"),
        attributes=_capabilities(domain, attrs),
        state=state_values(domain, state, attrs),
        source="homeassistant",
        available=state != "unavailable",
    )
