"""The executor's builders for every platform but lights: switch-likes, fan, cover and
valve, climate, lock/button/vacuum/alarm panel, lawn mower, select/number/text, media player.

Each follows Home Assistant's MQTT integration for its platform (see the executor docstring).
"""

from __future__ import annotations

import json
import math
from typing import Any

from hubagent.act.executor_context import _Ctx
from hubagent.mqtt import capabilities as cap


def build_on_off(ctx: _Ctx, verb: str, args: dict[str, Any]) -> None:
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


def build_fan(ctx: _Ctx, verb: str, args: dict[str, Any]) -> None:
    if verb == "set_percentage" and ctx.number(args, "percentage") <= 0:
        verb = "turn_off"
    if verb in ("turn_on", "turn_off"):
        build_on_off(ctx, verb, {})
        if verb == "turn_on" and "percentage" in args:
            build_fan(ctx, "set_percentage", args)
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


def _ranged(low: float, high: float, pct: float) -> int:
    """HA `percentage_to_ranged_value((low + 1, high), pct)`, rounded: 0-100 % -> low..high."""
    return round(pct * (high - low) / 100 + low)


def _position(ctx: _Ctx, pct: float) -> int:
    """0-100 % -> position_closed..position_open."""
    return _ranged(ctx.get("position_closed", 0), ctx.get("position_open", 100), pct)


def _tilt(ctx: _Ctx, verb: str, args: dict[str, Any]) -> None:
    """HA's cover tilt services: open/close send tilt_opened/closed_value, set_tilt the
    percentage ranged to tilt_min..tilt_max, all through tilt_command_template."""
    if ctx.component != "cover" or not ctx.cfg.get("tilt_command_topic"):
        raise ctx.fail("this cover has no tilt_command_topic")
    if verb == "stop_tilt":
        payload = ctx.cfg.get("payload_stop_tilt", "STOP")
        if payload is None:
            raise ctx.fail("payload_stop_tilt is null: this cover cannot stop its tilt")
        return ctx.publish("tilt_command_topic", payload)
    low, high = ctx.get("tilt_min", 0), ctx.get("tilt_max", 100)
    if verb == "set_tilt":
        given = {"tilt": args.get("tilt", args.get("tilt_position", args.get("value")))}
        pct = int(max(0.0, min(100.0, ctx.number(given, "tilt"))))  # HA coerces to int
        value, shown = _ranged(low, high, pct), pct
    else:
        key, default = (
            ("tilt_opened_value", 100) if verb == "open_tilt" else ("tilt_closed_value", 0)
        )
        value = shown = ctx.get(key, default)
    variables = {
        "tilt_position": shown,
        "position_open": ctx.get("position_open", 100),
        "position_closed": ctx.get("position_closed", 0),
        "tilt_min": low,
        "tilt_max": high,
    }
    ctx.publish("tilt_command_topic", ctx.render("tilt_command_template", value, **variables))


def build_cover(ctx: _Ctx, verb: str, args: dict[str, Any]) -> None:
    if verb in ("open_tilt", "close_tilt", "stop_tilt", "set_tilt"):
        return _tilt(ctx, verb, args)
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
            return build_cover(ctx, "set_position", {"position": 100 if verb == "open" else 0})
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
                return build_cover(ctx, "open" if pct == 100 else "close", {})
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


def build_climate(ctx: _Ctx, verb: str, args: dict[str, Any]) -> None:
    if verb in ("turn_on", "turn_off") and ctx.cfg.get("power_command_topic"):
        payload = ctx.get(
            "payload_on" if verb == "turn_on" else "payload_off",
            "ON" if verb == "turn_on" else "OFF",
        )
        return ctx.publish("power_command_topic", ctx.render("power_command_template", payload))
    if verb == "turn_off":
        return build_climate(ctx, "set_hvac_mode", {"hvac_mode": "off"})
    if verb == "turn_on":
        modes = [m for m in (ctx.get("modes") or cap.CLIMATE_MODES) if m != "off"]
        preferred = [m for m in ("heat", "heat_cool", "auto", "cool") if m in modes]
        if not modes:
            raise ctx.fail("no hvac mode to turn on with")
        return build_climate(ctx, "set_hvac_mode", {"hvac_mode": (preferred or modes)[0]})
    if verb == "set_temperature":
        # HA publishes the setpoint as asked (a float); temp_step and precision only shape
        # its UI. Out-of-range values are clamped here (HA refuses them).
        value = ctx.number(args, "temperature")
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


def build_simple(ctx: _Ctx, verb: str, args: dict[str, Any]) -> None:
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


def build_vacuum(ctx: _Ctx, verb: str, args: dict[str, Any]) -> None:
    """HA's MQTT vacuum: fan speed (raw, from fan_speed_list) to set_fan_speed_topic;
    locate is payload_locate on command_topic; the rest as build_simple."""
    if verb == "set_fan_speed":
        speed = ctx.option(args, "fan_speed", "fan_speed")
        return ctx.publish("set_fan_speed_topic", speed)
    if verb == "locate":
        return ctx.simple("command_topic", "payload_locate", "locate")
    return build_simple(ctx, verb, args)


def _siren_params(ctx: _Ctx, args: dict[str, Any]) -> dict[str, Any]:
    """tone / volume_level (0-1) / duration (s), each only when the siren supports it
    (HA's process_turn_on_params drops the others)."""
    params: dict[str, Any] = {}
    if args.get("tone") is not None and "tone" in ctx.entity.attributes:
        params["tone"] = ctx.option(args, "tone", "tone")
    volume = args.get("volume", args.get("volume_level"))
    if volume is not None and ctx.cfg.get("support_volume_set", True) is not False:
        pct = ctx.number({"volume": volume}, "volume")
        params["volume_level"] = round(max(0.0, min(100.0, pct)) / 100, 4)
    if args.get("duration") is not None and ctx.cfg.get("support_duration", True) is not False:
        params["duration"] = max(0, int(ctx.number(args, "duration")))
    return params


def build_siren(ctx: _Ctx, verb: str, args: dict[str, Any]) -> None:
    """HA's MQTT siren: without a template the command is JSON, `{"state": "ON", "tone":
    ..., "volume_level": ..., "duration": ...}`; a template gets the same as variables."""
    if verb not in ("turn_on", "turn_off"):
        raise ctx.fail(f"a siren cannot {verb}")
    on = verb == "turn_on"
    payload = ctx.get("payload_on" if on else "payload_off", "ON" if on else "OFF")
    variables: dict[str, Any] = {"state": payload, **(_siren_params(ctx, args) if on else {})}
    key = "command_template" if on or not ctx.cfg.get("command_off_template") else ""
    key = key or "command_off_template"
    if ctx.cfg.get(key):
        rendered = ctx.render(key, payload, **variables)
    else:
        rendered = json.dumps(variables, separators=(",", ":"))
    if rendered in (None, "", "None"):  # HA publishes nothing then
        raise ctx.fail(f"{key} rendered no payload")
    ctx.publish("command_topic", rendered)


def build_lawn_mower(ctx: _Ctx, verb: str, args: dict[str, Any]) -> None:
    """HA's MQTT lawn mower: `<verb>_command_topic`, the verb name through its template."""
    if verb not in ("start_mowing", "pause", "dock"):
        raise ctx.fail(f"a lawn mower cannot {verb}")
    ctx.publish(f"{verb}_command_topic", ctx.render(f"{verb}_command_template", verb))


def build_value(ctx: _Ctx, verb: str, args: dict[str, Any]) -> None:
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


def build_media(ctx: _Ctx, verb: str, args: dict[str, Any]) -> None:
    """media_player (not in HA core MQTT): `<verb>_command_topic` or command_topic +
    `payload_<verb>`; volume 0-1 to `volume_command_topic`."""
    if verb == "set_volume":
        value = round(ctx.number(args, "volume") / 100, 2)
        topic = "volume_command_topic" if ctx.cfg.get("volume_command_topic") else "volumeset_topic"
        return ctx.publish(topic, ctx.render("volume_command_template", value))
    if verb in ("turn_on", "turn_off"):  # HA has no MQTT media player: switch conventions
        on = verb == "turn_on"
        default = ctx.get("payload_on" if on else "payload_off", "ON" if on else "OFF")
        for key in (f"{verb}_command_topic", "power_command_topic", "command_topic"):
            if ctx.cfg.get(key):
                return ctx.publish(key, ctx.get(f"payload_{verb}", default))
        raise ctx.fail(f"no topic to {verb.replace('_', ' ')} in its MQTT config")
    if verb == "mute":
        verb = "mute" if args.get("mute", args.get("value", True)) else "unmute"
    for key in (f"{verb}_command_topic", f"{verb}_topic"):
        if ctx.cfg.get(key):
            return ctx.publish(key, ctx.get(f"payload_{verb}", verb.upper()))
    return ctx.publish("command_topic", ctx.get(f"payload_{verb}", verb.upper()))
