"""Action -> the device's own MQTT message(s), by its discovery config, the way HA does.

Each platform follows Home Assistant's MQTT integration: payload_on/off, on_command_type,
brightness_scale, json-schema lights, `*_command_template` rendering, cover position
ranges, climate steps, fan speed ranges. Values are clamped to the entity's range first.

QoS choice: the config's `qos` when it has one, else 1 (HA defaults to 0; the hub prefers
at-least-once delivery for commands, and the broker downgrades per subscriber anyway).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from hubagent.act.executor_context import DEFAULT_QOS, ExecutionError, _Ctx
from hubagent.act.executor_light import build_light
from hubagent.act.executor_platforms import (
    build_climate,
    build_cover,
    build_fan,
    build_lawn_mower,
    build_media,
    build_on_off,
    build_simple,
    build_siren,
    build_vacuum,
    build_value,
)
from hubagent.types import Action, Entity, MqttMessage

# DEFAULT_QOS, ExecutionError and _Ctx live in executor_context; callers import them from here.
__all__ = ["DEFAULT_QOS", "ON_STATES", "ExecutionError", "_Ctx", "build_messages"]

ON_STATES = frozenset({"on", "open", "opening", "unlocked", "playing", "heat", "cool", "auto"})

# `set(attribute, value)` -> the specific verb and its argument name.
_SET_VERBS = {
    "brightness": ("set_brightness", "brightness"),
    "color": ("set_color", "color"),
    "color_temp": ("set_color_temp", "color_temp"),
    "percentage": ("set_percentage", "percentage"),
    "oscillation": ("oscillate", "oscillating"),
    "preset_mode": ("set_preset_mode", "preset_mode"),
    "humidity": ("set_humidity", "humidity"),
    "mode": ("set_mode", "mode"),
    "position": ("set_position", "position"),
    "temperature": ("set_temperature", "temperature"),
    "hvac_mode": ("set_hvac_mode", "hvac_mode"),
    "fan_mode": ("set_fan_mode", "fan_mode"),
    "swing_mode": ("set_swing_mode", "swing_mode"),
    "volume": ("set_volume", "volume"),
    "option": ("select_option", "option"),
    "value": ("set_value", "value"),
    "tilt": ("set_tilt", "tilt"),
    "effect": ("set_effect", "effect"),
    "fan_speed": ("set_fan_speed", "fan_speed"),
}


_JSON_STATES = {"turn_on": "ON", "turn_off": "OFF", "open": "OPEN", "close": "CLOSE"}
_JSON_STATES |= {"stop": "STOP", "lock": "LOCK", "unlock": "UNLOCK", "press": "PRESS"}
_JSON_STATES |= {"activate": "ON", "start": "START", "pause": "PAUSE", "play": "PLAY"}


def _json_generic(ctx: _Ctx, verb: str, args: dict[str, Any]) -> None:
    """Home-file devices with `schema: json` (non-light): {"state": ...} or {attr: value}."""
    if verb in _JSON_STATES:
        return ctx.publish(
            "command_topic", json.dumps({"state": _JSON_STATES[verb]}, separators=(",", ":"))
        )
    for attr, (set_verb, arg) in _SET_VERBS.items():
        if verb == set_verb and arg in args:
            value = args[arg]
            if isinstance(value, int | float) and not isinstance(value, bool):
                value = ctx.number(args, arg, attr)
                value = int(value) if float(value).is_integer() else value
            return ctx.publish("command_topic", json.dumps({attr: value}, separators=(",", ":")))
    raise ctx.fail(f"cannot {verb}")


_BUILDERS: dict[str, Callable[[_Ctx, str, dict[str, Any]], None]] = {
    "light": build_light,
    "switch": build_on_off,
    "scene": build_on_off,
    "siren": build_siren,
    "humidifier": build_on_off,
    "fan": build_fan,
    "cover": build_cover,
    "valve": build_cover,
    "climate": build_climate,
    "lock": build_simple,
    "button": build_simple,
    "vacuum": build_vacuum,
    "lawn_mower": build_lawn_mower,
    "alarm_control_panel": build_simple,
    "select": build_value,
    "number": build_value,
    "text": build_value,
    "media_player": build_media,
}


def _resolve_verb(ctx: _Ctx, action: Action) -> tuple[str, dict[str, Any]]:
    verb, args = action.action, dict(action.args)
    if verb == "set":
        attr = str(args.get("attribute", ""))
        if attr not in _SET_VERBS:
            raise ctx.fail(f"cannot set {attr!r}")
        verb, arg = _SET_VERBS[attr]
        args = {arg: args.get("value")}
    if verb == "toggle":
        state = str(ctx.entity.state.get("state", "off")).lower()
        on = state in ON_STATES
        if ctx.component in ("cover", "valve"):
            verb = "close" if on else "open"
        elif ctx.component == "lock":
            verb = "lock" if state == "unlocked" else "unlock"
        else:
            verb = "turn_off" if on else "turn_on"
    if ctx.component == "scene" and verb == "turn_on":
        verb = "activate"
    return verb, args


def build_messages(entity: Entity, action: Action) -> list[MqttMessage]:
    """The MQTT message(s) that carry out `action` on `entity`; ExecutionError if it cannot."""
    if not entity.mqtt:
        raise ExecutionError(f"{entity.entity_id} has no MQTT config")
    if action.action == "get_state":
        return []
    component = str(entity.mqtt.get("component") or entity.domain)
    ctx = _Ctx(entity, component)
    verb, args = _resolve_verb(ctx, action)
    if ctx.get("schema") == "json" and component != "light":
        builder = _json_generic
    elif component not in _BUILDERS:
        raise ctx.fail(f"{component} entities are read-only")
    else:
        builder = _BUILDERS[component]
    builder(ctx, verb, args)
    if not ctx.messages:
        raise ctx.fail(f"{verb} produced no message")
    return ctx.messages
