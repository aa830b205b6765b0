"""Action -> the device's own MQTT message(s), by its discovery config, the way HA does.

Each platform follows Home Assistant's MQTT integration: payload_on/off, on_command_type,
brightness_scale, json-schema lights, `*_command_template` rendering, cover position
ranges, climate steps, fan speed ranges. Values are clamped to the entity's range first.

QoS choice: the config's `qos` when it has one, else 1 (HA defaults to 0; the hub prefers
at-least-once delivery for commands, and the broker downgrades per subscriber anyway).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

from hubagent.act.executor_light import build_light
from hubagent.mqtt import capabilities as cap
from hubagent.mqtt.discovery import valid_publish_topic
from hubagent.mqtt.templates import TemplateError, renderer
from hubagent.types import Action, Entity, MqttMessage

DEFAULT_QOS = 1
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
}


class ExecutionError(ValueError):
    """An action the entity's MQTT config cannot carry out."""


class _Ctx:
    """One action on one entity: config lookups, clamping, templates, message list."""

    def __init__(self, entity: Entity, component: str) -> None:
        self.entity = entity
        self.cfg = entity.mqtt
        self.component = component
        self.messages: list[MqttMessage] = []
        qos = self.cfg.get("qos")
        self.qos = qos if qos in (0, 1, 2) else DEFAULT_QOS
        self.retain = bool(self.cfg.get("retain", False))

    def get(self, key: str, default: Any = None) -> Any:
        value = self.cfg.get(key)
        return default if value is None else value

    def fail(self, why: str) -> ExecutionError:
        return ExecutionError(f"{self.entity.entity_id}: {why}")

    def publish(self, topic_key: str, payload: Any) -> None:
        topic = self.cfg.get(topic_key)
        if not valid_publish_topic(topic):
            raise self.fail(f"no usable {topic_key} in its MQTT config")
        self.messages.append(MqttMessage(topic, str(payload), self.qos, self.retain))

    def render(self, template_key: str, value: Any, **extra: Any) -> Any:
        """HA's MqttCommandTemplate: no template -> the value itself."""
        source = self.cfg.get(template_key)
        if not source:
            return value
        variables = {"entity_id": self.entity.entity_id, "name": self.entity.name, **extra}
        try:
            return renderer.render_command(source, value, variables)
        except TemplateError as exc:
            raise self.fail(f"{template_key} failed: {exc}") from exc

    def number(self, args: dict[str, Any], key: str, attr: str | None = None) -> float:
        if key not in args:
            raise self.fail(f"missing argument {key!r}")
        try:
            value = float(args[key])
        except (TypeError, ValueError):
            raise self.fail(f"{key} must be a number, got {args[key]!r}") from None
        if not math.isfinite(value):
            raise self.fail(f"{key} must be finite")
        rng = self.entity.attributes.get(attr or key) or {}
        if isinstance(rng.get("min"), int | float):
            value = max(float(rng["min"]), value)
        if isinstance(rng.get("max"), int | float):
            value = min(float(rng["max"]), value)
        return value

    def option(self, args: dict[str, Any], key: str, attr: str) -> str:
        value = args.get(key, args.get("option", args.get("value")))
        if value is None:
            raise self.fail(f"missing argument {key!r}")
        options = (self.entity.attributes.get(attr) or {}).get("options")
        if options:
            match = [o for o in options if str(o).lower() == str(value).lower()]
            if not match:
                raise self.fail(f"{value!r} is not one of {options}")
            return str(match[0])
        return str(value)

    def simple(self, topic_key: str, payload_key: str, default: str, tpl: str = "") -> None:
        payload = self.get(payload_key, default)
        self.publish(topic_key, self.render(tpl, payload) if tpl else payload)


# -- other platforms ---------------------------------------------------------------------
def _on_off(ctx: _Ctx, verb: str, args: dict[str, Any]) -> None:
    """switch, scene, siren, humidifier on/off: payload_on/off through command_template."""
    if verb == "turn_on" or (ctx.component == "scene" and verb == "activate"):
        payload = ctx.get("payload_on", "ON")
        tpl = "command_template" if ctx.component != "scene" else ""
        return ctx.publish("command_topic", ctx.render(tpl, payload) if tpl else payload)
    if verb == "turn_off":
        payload = ctx.get("payload_off", "OFF")
        tpl = "command_off_template" if ctx.component == "siren" else "command_template"
        return ctx.publish("command_topic", ctx.render(tpl, payload))
    if ctx.component == "humidifier" and verb == "set_humidity":
        value = ctx.number(args, "humidity")
        value = int(value) if value.is_integer() else value
        tpl = "target_humidity_command_template"
        return ctx.publish("target_humidity_command_topic", ctx.render(tpl, value))
    if ctx.component == "humidifier" and verb == "set_mode":
        mode = ctx.option(args, "mode", "mode")
        return ctx.publish("mode_command_topic", ctx.render("mode_command_template", mode))
    raise ctx.fail(f"a {ctx.component} cannot {verb}")


def _fan(ctx: _Ctx, verb: str, args: dict[str, Any]) -> None:
    if verb == "set_percentage" and ctx.number(args, "percentage") <= 0:
        verb = "turn_off"
    if verb in ("turn_on", "turn_off"):
        _on_off(ctx, verb, {})
        if verb == "turn_on" and "percentage" in args:
            _fan(ctx, "set_percentage", args)
        return None
    if verb == "set_percentage":
        pct = ctx.number(args, "percentage")
        low, high = ctx.get("speed_range_min", 1), ctx.get("speed_range_max", 100)
        speed = math.ceil(cap.percentage_to_ranged_value(low, high, pct))
        return ctx.publish(
            "percentage_command_topic", ctx.render("percentage_command_template", speed)
        )
    if verb == "oscillate":
        on = args.get("oscillating", args.get("value", True))
        on = on if isinstance(on, bool) else str(on).lower() in ("1", "true", "on", "yes")
        payload = ctx.get("payload_oscillation_on" if on else "payload_oscillation_off")
        payload = payload or ("oscillate_on" if on else "oscillate_off")
        return ctx.publish(
            "oscillation_command_topic", ctx.render("oscillation_command_template", payload)
        )
    if verb == "set_preset_mode":
        mode = ctx.option(args, "preset_mode", "preset_mode")
        return ctx.publish(
            "preset_mode_command_topic", ctx.render("preset_mode_command_template", mode)
        )
    raise ctx.fail(f"a fan cannot {verb}")


def _position(ctx: _Ctx, pct: float) -> int:
    """HA `find_in_range_from_percent`: 0-100 % -> position_closed..position_open."""
    closed, opened = ctx.get("position_closed", 0), ctx.get("position_open", 100)
    return round((opened - closed) * pct / 100) + closed


def _cover(ctx: _Ctx, verb: str, args: dict[str, Any]) -> None:
    payloads = {"open": ("payload_open", "OPEN"), "close": ("payload_close", "CLOSE")}
    payloads["stop"] = ("payload_stop", "STOP")
    if verb in payloads:
        key, default = payloads[verb]
        if ctx.cfg.get("command_topic") and (key not in ctx.cfg or ctx.cfg[key] is not None):
            if ctx.component == "valve" and ctx.get("reports_position") and verb != "stop":
                pos = ctx.get(
                    "position_open" if verb == "open" else "position_closed",
                    100 if verb == "open" else 0,
                )
                return ctx.publish("command_topic", ctx.render("command_template", pos))
            payload = ctx.get(key, default)
            tpl = "command_template" if ctx.component == "valve" else ""
            return ctx.publish("command_topic", ctx.render(tpl, payload) if tpl else payload)
        if verb != "stop" and ctx.cfg.get("set_position_topic"):
            return _cover(ctx, "set_position", {"position": 100 if verb == "open" else 0})
        raise ctx.fail(f"cannot {verb}: no command_topic/{key} in its MQTT config")
    if verb == "set_position":
        pct = ctx.number(args, "position")
        pct = max(0.0, min(100.0, pct))
        pct = int(pct) if pct.is_integer() else pct
        position = _position(ctx, pct)
        if ctx.component == "valve":
            return ctx.publish("command_topic", ctx.render("command_template", position))
        if not ctx.cfg.get("set_position_topic"):
            if pct in (0, 100):
                return _cover(ctx, "open" if pct == 100 else "close", {})
            raise ctx.fail("this cover has no set_position_topic")
        variables = {
            "position": pct,
            "position_open": ctx.get("position_open", 100),
            "position_closed": ctx.get("position_closed", 0),
            "tilt_min": ctx.get("tilt_min", 0),
            "tilt_max": ctx.get("tilt_max", 100),
        }
        return ctx.publish(
            "set_position_topic", ctx.render("set_position_template", position, **variables)
        )
    raise ctx.fail(f"a {ctx.component} cannot {verb}")


def _climate(ctx: _Ctx, verb: str, args: dict[str, Any]) -> None:
    if verb in ("turn_on", "turn_off") and ctx.cfg.get("power_command_topic"):
        payload = ctx.get(
            "payload_on" if verb == "turn_on" else "payload_off",
            "ON" if verb == "turn_on" else "OFF",
        )
        return ctx.publish("power_command_topic", ctx.render("power_command_template", payload))
    if verb == "turn_off":
        return _climate(ctx, "set_hvac_mode", {"hvac_mode": "off"})
    if verb == "turn_on":
        modes = [m for m in (ctx.get("modes") or cap.CLIMATE_MODES) if m != "off"]
        preferred = [m for m in ("heat", "heat_cool", "auto", "cool") if m in modes]
        if not modes:
            raise ctx.fail("no hvac mode to turn on with")
        return _climate(ctx, "set_hvac_mode", {"hvac_mode": (preferred or modes)[0]})
    if verb == "set_temperature":
        value = ctx.number(args, "temperature")
        step = float(ctx.get("temp_step", 1.0)) or 1.0
        value = float(round(round(value / step) * step, 4))
        return ctx.publish(
            "temperature_command_topic", ctx.render("temperature_command_template", value)
        )
    for name in ("hvac_mode", "fan_mode", "swing_mode", "preset_mode"):
        if verb == f"set_{name}":
            option = ctx.option(args, name, name)
            prefix = "mode" if name == "hvac_mode" else name
            return ctx.publish(
                f"{prefix}_command_topic", ctx.render(f"{prefix}_command_template", option)
            )
    if verb == "set_humidity":
        value = ctx.number(args, "humidity")
        tpl = "target_humidity_command_template"
        return ctx.publish("target_humidity_command_topic", ctx.render(tpl, value))
    raise ctx.fail(f"a climate entity cannot {verb}")


_SIMPLE: dict[str, dict[str, tuple[str, str]]] = {
    "lock": {
        "lock": ("payload_lock", "LOCK"),
        "unlock": ("payload_unlock", "UNLOCK"),
        "open": ("payload_open", "OPEN"),
    },
    "button": {"press": ("payload_press", "PRESS")},
    "vacuum": {
        "start": ("payload_start", "start"),
        "pause": ("payload_pause", "pause"),
        "stop": ("payload_stop", "stop"),
        "return_to_base": ("payload_return_to_base", "return_to_base"),
    },
    "alarm_control_panel": {
        "arm_home": ("payload_arm_home", "ARM_HOME"),
        "arm_away": ("payload_arm_away", "ARM_AWAY"),
        "arm_night": ("payload_arm_night", "ARM_NIGHT"),
        "disarm": ("payload_disarm", "DISARM"),
    },
}


def _simple(ctx: _Ctx, verb: str, args: dict[str, Any]) -> None:
    """lock, button, vacuum, alarm panel: one payload per verb to command_topic."""
    table = _SIMPLE[ctx.component]
    if verb not in table:
        raise ctx.fail(f"a {ctx.component} cannot {verb}")
    key, default = table[verb]
    payload = ctx.get(key, default)
    if ctx.component == "alarm_control_panel":
        source = ctx.get("command_template", "{{ action }}")
        ctx.cfg = {**ctx.cfg, "command_template": source}
        return ctx.publish(
            "command_topic",
            ctx.render("command_template", payload, action=payload, code=args.get("code")),
        )
    ctx.publish("command_topic", ctx.render("command_template", payload))


def _lawn_mower(ctx: _Ctx, verb: str, args: dict[str, Any]) -> None:
    """HA's MQTT lawn mower: `<verb>_command_topic`, the verb name through its template."""
    if verb not in ("start_mowing", "pause", "dock"):
        raise ctx.fail(f"a lawn mower cannot {verb}")
    ctx.publish(f"{verb}_command_topic", ctx.render(f"{verb}_command_template", verb))


def _value(ctx: _Ctx, verb: str, args: dict[str, Any]) -> None:
    """select, number, text: the value through command_template."""
    if ctx.component == "select" and verb == "select_option":
        return ctx.publish(
            "command_topic", ctx.render("command_template", ctx.option(args, "option", "option"))
        )
    if ctx.component == "number" and verb == "set_value":
        value = ctx.number(args, "value")
        return ctx.publish(
            "command_topic",
            ctx.render("command_template", int(value) if value.is_integer() else value),
        )
    if ctx.component == "text" and verb == "set_value":
        text = str(args.get("value", ""))
        rng = ctx.entity.attributes.get("value") or {}
        if not rng.get("min", 0) <= len(text) <= rng.get("max", 255):
            raise ctx.fail(f"text length {len(text)} is out of range")
        return ctx.publish("command_topic", ctx.render("command_template", text))
    raise ctx.fail(f"a {ctx.component} cannot {verb}")


def _media(ctx: _Ctx, verb: str, args: dict[str, Any]) -> None:
    """media_player (not in HA core MQTT): `<verb>_command_topic` or command_topic +
    `payload_<verb>`; volume 0-1 to `volume_command_topic`."""
    if verb == "set_volume":
        value = round(ctx.number(args, "volume") / 100, 2)
        topic = "volume_command_topic" if ctx.cfg.get("volume_command_topic") else "volumeset_topic"
        return ctx.publish(topic, ctx.render("volume_command_template", value))
    if verb == "mute":
        verb = "mute" if args.get("mute", args.get("value", True)) else "unmute"
    for key in (f"{verb}_command_topic", f"{verb}_topic"):
        if ctx.cfg.get(key):
            return ctx.publish(key, ctx.get(f"payload_{verb}", verb.upper()))
    return ctx.publish("command_topic", ctx.get(f"payload_{verb}", verb.upper()))


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
    "switch": _on_off,
    "scene": _on_off,
    "siren": _on_off,
    "humidifier": _on_off,
    "fan": _fan,
    "cover": _cover,
    "valve": _cover,
    "climate": _climate,
    "lock": _simple,
    "button": _simple,
    "vacuum": _simple,
    "lawn_mower": _lawn_mower,
    "alarm_control_panel": _simple,
    "select": _value,
    "number": _value,
    "text": _value,
    "media_player": _media,
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
