"""Light commands for the executor: default, json and template schemas, as HA builds them.

Brightness arrives in percent and becomes HA's 0-255 (`round(pct * 255 / 100)`), then the
device scale; colour temperature arrives in kelvin and is sent in mireds unless the config
says `color_temp_kelvin`; colours become rgb, hs or xy by the light's supported modes.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from hubagent.mqtt import capabilities as cap

if TYPE_CHECKING:
    from hubagent.act.executor import _Ctx


def _light_values(ctx: _Ctx, args: dict[str, Any]) -> dict[str, Any]:
    """brightness (0-255), kelvin and rgb from the action's arguments, clamped."""
    out: dict[str, Any] = {}
    if "brightness" in args:
        out["brightness"] = cap.percent_to_255(ctx.number(args, "brightness"))
    if "color_temp" in args or "kelvin" in args:  # DESIGN.md names the argument kelvin
        low, high = cap.kelvin_range(ctx.cfg)
        rng = ctx.entity.attributes.get("color_temp") or {"min": low, "max": high}
        kelvin = ctx.number(args, "color_temp" if "color_temp" in args else "kelvin")
        out["kelvin"] = int(max(rng.get("min", low), min(rng.get("max", high), kelvin)))
    if "color" in args:
        rgb = cap.parse_color(args["color"])
        if rgb is None:
            raise ctx.fail(f"unknown colour {args['color']!r}")
        out["rgb"] = rgb
    return out


def _color_modes(ctx: _Ctx) -> list[str]:
    """Declared modes, else (home-file entities) the `color` capability's modes or rgb."""
    modes = cap.light_color_modes(ctx.cfg)
    if modes:
        return modes
    color = ctx.entity.attributes.get("color")
    if isinstance(color, dict):
        return list(color.get("modes") or ["rgb"])
    return []


def _pick_color_mode(modes: list[str]) -> str | None:
    for mode in ("rgb", "hs", "xy", "rgbw", "rgbww"):
        if mode in modes:
            return mode
    return None


def _rgb_dims(ctx: _Ctx) -> bool:
    """No brightness topic but an rgb one: brightness travels inside the rgb value."""
    return not ctx.cfg.get("brightness_command_topic") and bool(ctx.cfg.get("rgb_command_topic"))


def _publish_rgb(ctx: _Ctx, rgb: tuple[int, ...], brightness: int | None) -> None:
    """rgb to `rgb_command_topic`, scaled by brightness (0-255) when HA would scale it."""
    if _rgb_dims(ctx):
        last = ctx.entity.state.get("brightness")
        level = brightness or (cap.percent_to_255(last) if last else 255)
        rgb = tuple(round(c / 255 * level) for c in rgb)
    r, g, b = rgb
    text = f"{r},{g},{b}"
    ctx.publish(
        "rgb_command_topic", ctx.render("rgb_command_template", text, red=r, green=g, blue=b)
    )


def _light_default(ctx: _Ctx, verb: str, args: dict[str, Any]) -> None:
    if verb == "turn_off":
        return ctx.publish("command_topic", ctx.get("payload_off", "OFF"))
    values = _light_values(ctx, args)
    on_type = ctx.get("on_command_type", "last")
    if on_type == "first":
        ctx.publish("command_topic", ctx.get("payload_on", "ON"))
    if on_type == "brightness" and "brightness" not in values:
        last = ctx.entity.state.get("brightness")
        values["brightness"] = cap.percent_to_255(last) if last else 255
    rgb = values.get("rgb")
    if rgb is not None:
        mode = _pick_color_mode(_color_modes(ctx))
        if mode == "hs":
            h, s = cap.rgb_to_hs(rgb)
            ctx.publish(
                "hs_command_topic", ctx.render("hs_command_template", f"{h},{s}", hue=h, sat=s)
            )
        elif mode == "xy":
            x, y = cap.rgb_to_xy(rgb)
            ctx.publish("xy_command_topic", ctx.render("xy_command_template", f"{x},{y}", x=x, y=y))
        elif mode == "rgb":
            _publish_rgb(ctx, rgb, values.get("brightness"))
        else:
            raise ctx.fail("this light has no colour command topic")
    elif "brightness" in values and _rgb_dims(ctx):
        # HA dims an rgb-only light by sending its last colour scaled to the brightness
        last = ctx.entity.state.get("color")
        base = tuple(last) if isinstance(last, list | tuple) and len(last) == 3 else (255, 255, 255)
        _publish_rgb(ctx, base, values["brightness"])
    if "brightness" in values and ctx.cfg.get("brightness_command_topic"):
        scale = ctx.get("brightness_scale", 255)
        device = max(1, min(round(values["brightness"] / 255 * scale), scale))
        ctx.publish("brightness_command_topic", ctx.render("brightness_command_template", device))
    elif "brightness" in values and "brightness" in args and not _rgb_dims(ctx):
        raise ctx.fail("this light has no brightness_command_topic")
    if "kelvin" in values:
        kelvin = values["kelvin"]
        value = kelvin if ctx.get("color_temp_kelvin", False) else cap.kelvin_to_mired(kelvin)
        ctx.publish("color_temp_command_topic", ctx.render("color_temp_command_template", value))
    if "effect" in args:  # HA sends only effects from effect_list, before the last ON
        if not ctx.cfg.get("effect_command_topic"):
            raise ctx.fail("this light has no effect_command_topic")
        effect = ctx.option(args, "effect", "effect")
        ctx.publish("effect_command_topic", ctx.render("effect_command_template", effect))
    if on_type == "last":
        ctx.publish("command_topic", ctx.get("payload_on", "ON"))


def _light_json(ctx: _Ctx, verb: str, args: dict[str, Any]) -> None:
    if verb == "turn_off":
        return ctx.publish("command_topic", json.dumps({"state": "OFF"}, separators=(",", ":")))
    values = _light_values(ctx, args)
    message: dict[str, Any] = {"state": "ON"}
    modes = _color_modes(ctx)
    if "brightness" in values and (
        cap.light_has_brightness(ctx.cfg) or "brightness" in ctx.entity.attributes
    ):
        scale = ctx.get("brightness_scale", 255)
        message["brightness"] = max(
            round(cap.brightness_to_value(1, scale, values["brightness"])), 1
        )
    if "kelvin" in values:
        kelvin = values["kelvin"]
        use_k = ctx.get("color_temp_kelvin", False)
        message["color_temp"] = kelvin if use_k else cap.kelvin_to_mired(kelvin)
    if "rgb" in values:
        rgb, mode = values["rgb"], _pick_color_mode(modes)
        if mode == "hs":
            h, s = cap.rgb_to_hs(rgb)
            message["color"] = {"h": h, "s": s}
        elif mode == "xy":
            x, y = cap.rgb_to_xy(rgb)
            message["color"] = {"x": x, "y": y}
        elif mode in ("rgb", "rgbw", "rgbww"):
            message["color"] = dict(zip("rgb", rgb, strict=True))
        else:
            raise ctx.fail("this light has no colour modes")
    if "effect" in args:
        message["effect"] = ctx.option(args, "effect", "effect")
    ctx.publish("command_topic", json.dumps(message, separators=(",", ":")))


def _light_template(ctx: _Ctx, verb: str, args: dict[str, Any]) -> None:
    if verb == "turn_off":
        return ctx.publish("command_topic", ctx.render("command_off_template", None, state="off"))
    values = _light_values(ctx, args)
    extra: dict[str, Any] = {"state": "on"}
    if "brightness" in values:
        extra["brightness"] = values["brightness"]
    if "kelvin" in values:
        extra["color_temp"] = cap.kelvin_to_mired(values["kelvin"])
    if "rgb" in values:
        extra.update(zip(("red", "green", "blue"), values["rgb"], strict=True))
    if "effect" in args:
        extra["effect"] = ctx.option(args, "effect", "effect")
    ctx.publish("command_topic", ctx.render("command_on_template", None, **extra))


def build_light(ctx: _Ctx, verb: str, args: dict[str, Any]) -> None:
    """Append the messages for a light verb to `ctx`."""
    if verb == "set_brightness":
        if ctx.number(args, "brightness") <= 0:
            verb, args = "turn_off", {}
        else:
            verb = "turn_on"
    elif verb in ("set_color", "set_color_temp", "set_effect"):
        verb = "turn_on"
    if verb not in ("turn_on", "turn_off"):
        raise ctx.fail(f"a light cannot {verb}")
    schema = ctx.get("schema", "default")
    if schema == "json":
        return _light_json(ctx, verb, args)
    if schema == "template":
        return _light_template(ctx, verb, args)
    return _light_default(ctx, verb, args)
