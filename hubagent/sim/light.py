"""The zigbee2mqtt-style simulated light (JSON schema, 0-254 brightness, mireds, xy/rgb)."""

from __future__ import annotations

import colorsys
import json
import math
from dataclasses import dataclass
from typing import Any, ClassVar

from hubagent.sim.base import SimDevice
from hubagent.sim.values import (
    BadCommand,
    as_number,
    parse_on_off,
    percent_to,
    rgb_to_xy,
    xy_to_rgb,
)


def _json_obj(text: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadCommand(f"not JSON: {exc.msg}") from None
    if not isinstance(data, dict):
        raise BadCommand("JSON command must be an object")
    return data


@dataclass
class JsonLight(SimDevice):
    """A zigbee2mqtt light (JSON schema): brightness 0-254, color_temp in mireds, xy/rgb."""

    component: ClassVar[str] = "light"

    @property
    def color_modes(self) -> list[str]:
        modes = []
        if "color" in self.attributes:
            modes.append(self.sim.get("color_mode", "xy"))
        if "color_temp" in self.attributes:
            modes.append("color_temp")
        if not modes:
            modes.append("brightness" if "brightness" in self.attributes else "onoff")
        return modes

    def mireds_range(self) -> tuple[int, int]:
        # Rounded outwards so the announced range covers the home file's kelvin range.
        ct = self.attributes.get("color_temp", {})
        lo = math.floor(1e6 / float(ct.get("max", 6500)))
        return lo, math.ceil(1e6 / float(ct.get("min", 2000)))

    def extra_config(self) -> dict[str, Any]:
        cfg: dict[str, Any] = {"schema": "json", "supported_color_modes": self.color_modes}
        if "brightness" in self.attributes or "color" in self.attributes:
            cfg.update(brightness=True, brightness_scale=254)
        if "color_temp" in self.attributes:
            cfg["min_mireds"], cfg["max_mireds"] = self.mireds_range()
        return cfg

    def initial_state(self) -> dict[str, Any]:
        s = self.initial
        state: dict[str, Any] = {"state": "ON" if s.get("state") == "on" else "OFF"}
        if "brightness" in self.attributes:
            state["brightness"] = percent_to(s.get("brightness", 100), 254)
        if "color_temp" in self.attributes:
            lo, hi = self.mireds_range()
            kelvin = float(s.get("color_temp", 1e6 / ((lo + hi) / 2)))
            state["color_temp"] = max(lo, min(hi, round(1e6 / kelvin)))
            state["color_mode"] = "color_temp"
        if "color" in self.attributes and "color_temp" not in self.attributes:
            self._set_color({"r": 255, "g": 255, "b": 255}, state)
        return state

    def _set_color(self, color: Any, state: dict[str, Any]) -> None:
        if not isinstance(color, dict):
            raise BadCommand(f"color must be an object, got {color!r}")
        if {"r", "g", "b"} <= color.keys():
            rgb = tuple(max(0, min(255, round(as_number(color[k], k)))) for k in "rgb")
        elif {"x", "y"} <= color.keys():
            rgb = xy_to_rgb(as_number(color["x"], "x"), as_number(color["y"], "y"))
        elif {"h", "s"} <= color.keys() or {"hue", "saturation"} <= color.keys():
            h = as_number(color.get("h", color.get("hue")), "hue") % 360
            sat = max(0.0, min(100.0, as_number(color.get("s", color.get("saturation")), "s")))
            rgb = tuple(round(c * 255) for c in colorsys.hsv_to_rgb(h / 360, sat / 100, 1))
        else:
            raise BadCommand(f"color needs r/g/b, x/y or h/s, got {color!r}")
        mode = self.color_modes[0]
        if mode == "xy":
            x, y = rgb_to_xy(*rgb)
            state["color"] = {"x": x, "y": y}
        else:
            state["color"] = {"r": rgb[0], "g": rgb[1], "b": rgb[2]}
        state["color_mode"] = mode

    def apply(self, thing: str | None, text: str) -> None:
        cmd = _json_obj(text)
        new = dict(self.state)
        if "state" in cmd:
            new["state"] = parse_on_off(cmd["state"], self.state["state"])
        if "brightness" in cmd and "brightness" in self.state:
            bri = max(0, min(254, round(as_number(cmd["brightness"], "brightness"))))
            new["brightness"] = bri
            new["state"] = "ON" if bri > 0 else "OFF"  # zigbee2mqtt: brightness 0 is off
        if "color_temp" in cmd and "color_temp" in self.state:
            lo, hi = self.mireds_range()
            new["color_temp"] = max(lo, min(hi, round(as_number(cmd["color_temp"], "color_temp"))))
            new["color_mode"] = "color_temp"
            new["state"] = new["state"] if "state" in cmd else "ON"
        if "color" in cmd and "color" in self.attributes:
            self._set_color(cmd["color"], new)
            new["state"] = new["state"] if "state" in cmd else "ON"
        if not ({"state", "brightness", "color_temp", "color"} & cmd.keys()):
            raise BadCommand(f"nothing this light understands in {sorted(cmd)}")
        self.state = new

    def ha_state(self) -> dict[str, Any]:
        out: dict[str, Any] = {"state": self.state["state"].lower()}
        if "brightness" in self.state:
            out["brightness"] = round(self.state["brightness"] * 100 / 254)
        if "color_temp" in self.state:
            out["color_temp"] = math.floor(1e6 / self.state["color_temp"])  # as HA converts
        if "color" in self.state:
            c = self.state["color"]
            out["rgb"] = list(xy_to_rgb(c["x"], c["y"]) if "x" in c else (c["r"], c["g"], c["b"]))
        return out
