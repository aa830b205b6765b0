"""Simulated devices: the discovery config, state and command handling of real firmware.

Pure (no MQTT). Each device owns the topics `<root>/<account>/state`, `.../set`,
`.../<thing>/set` and `.../availability`, where the account is the object part of its
entity id (the ACL contract of `hubagent.security.acl`). Two firmware styles are imitated:
zigbee2mqtt (full keys, JSON state, `availability` list) and ESPHome (abbreviated keys,
plain-text state). Home-file values (percent, kelvin) are converted to the device's own
units (0-254 brightness, mireds) the way the real bridge reports them.

A home-file device may carry a `sim:` mapping: `kind` (default: the entity's domain),
`manufacturer`, `model`, `sw_version` (device block); lights: `color_mode` (`xy` or `rgb`);
sensors: `key` (JSON key of the reading), `unit`, `drift` (noise per tick), `digits`.
"""

from __future__ import annotations

import colorsys
import json
import logging
import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

log = logging.getLogger(__name__)

Message = tuple[str, str]  # (topic, payload)
ORIGIN = {"name": "hubagent-sim", "sw": "0.1.0"}


class BadCommand(ValueError):
    """A command payload the firmware rejects (logged, never raised to the caller)."""


def as_number(value: Any, what: str) -> float:
    if isinstance(value, bool):
        raise BadCommand(f"{what} must be a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise BadCommand(f"{what} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise BadCommand(f"{what} must be a finite number, got {value!r}")
    return number


def percent_to(value: Any, top: int) -> int:
    return round(max(0.0, min(100.0, as_number(value, "value"))) * top / 100)


def rgb_to_xy(r: float, g: float, b: float) -> tuple[float, float]:
    """sRGB (0-255) -> CIE xy, the conversion zigbee2mqtt applies for xy bulbs."""

    def lin(c: float) -> float:
        c /= 255
        return ((c + 0.055) / 1.055) ** 2.4 if c > 0.04045 else c / 12.92

    r, g, b = lin(r), lin(g), lin(b)
    x = r * 0.4124 + g * 0.3576 + b * 0.1805
    y = r * 0.2126 + g * 0.7152 + b * 0.0722
    z = r * 0.0193 + g * 0.1192 + b * 0.9505
    total = x + y + z
    if total <= 0:
        return 0.3127, 0.3290  # black has no chromaticity: report D65 white
    return round(x / total, 4), round(y / total, 4)


def xy_to_rgb(x: float, y: float) -> tuple[int, int, int]:
    """CIE xy -> sRGB (0-255) at full brightness."""
    y = max(y, 1e-6)
    big_x, big_z = x / y, (1 - x - y) / y
    r = big_x * 3.2406 - 1.5372 - big_z * 0.4986
    g = -big_x * 0.9689 + 1.8758 + big_z * 0.0415
    b = big_x * 0.0557 - 0.2040 + big_z * 1.0570
    top = max(r, g, b, 1e-6)

    def gam(c: float) -> int:
        c = max(0.0, c / top)
        c = 1.055 * c ** (1 / 2.4) - 0.055 if c > 0.0031308 else 12.92 * c
        return round(max(0.0, min(1.0, c)) * 255)

    return gam(r), gam(g), gam(b)


@dataclass
class SimDevice:
    """One simulated device; subclasses say how its firmware talks."""

    entity_id: str
    name: str
    attributes: dict[str, dict[str, Any]] = field(default_factory=dict)
    initial: dict[str, Any] = field(default_factory=dict)  # home-file state (percent, kelvin)
    device_class: str | None = None
    sim: dict[str, Any] = field(default_factory=dict)
    discovery_prefix: str = "homeassistant"
    root: str = "home"
    state: dict[str, Any] = field(default_factory=dict)  # the firmware's own state

    component: ClassVar[str] = ""
    plain_state: ClassVar[bool] = False  # state topic carries text, not JSON
    main_command: ClassVar[bool] = True  # listens on `<root>/<account>/set`

    def __post_init__(self) -> None:
        self.state = self.initial_state()

    # Topics -------------------------------------------------------------------------
    @property
    def account(self) -> str:
        return self.entity_id.split(".", 1)[1]

    @property
    def base(self) -> str:
        return f"{self.root}/{self.account}"

    @property
    def state_topic(self) -> str:
        return f"{self.base}/state"

    @property
    def command_topic(self) -> str:
        return f"{self.base}/set"

    @property
    def availability_topic(self) -> str:
        return f"{self.base}/availability"

    def topic_for(self, thing: str) -> str:
        return f"{self.base}/{thing}/set"

    @property
    def discovery_topic(self) -> str:
        return f"{self.discovery_prefix}/{self.component}/{self.account}/{self.account}/config"

    def command_topics(self) -> list[str]:
        """Every topic the device subscribes to for commands."""
        main = [self.command_topic] if self.main_command else []
        return main + [self.topic_for(t) for t in self.things()]

    def things(self) -> tuple[str, ...]:
        """`<thing>`s of its secondary command topics `<root>/<account>/<thing>/set`."""
        return ()

    # Discovery ----------------------------------------------------------------------
    def device_block(self) -> dict[str, Any]:
        return {
            "identifiers": [f"hubagent_sim_{self.account}"],
            "name": self.name,
            "manufacturer": self.sim.get("manufacturer", "hubagent"),
            "model": self.sim.get("model", f"Simulated {self.component}"),
            "sw_version": str(self.sim.get("sw_version", "1.0.0")),
        }

    def discovery_config(self) -> dict[str, Any]:
        """The retained discovery payload, as this device's firmware would publish it."""
        cfg: dict[str, Any] = {
            "name": None,  # zigbee2mqtt: the entity takes the device's name
            "object_id": self.account,
            "default_entity_id": self.entity_id,
            "unique_id": f"sim_{self.account}_{self.component}",
            "device": self.device_block(),
            "origin": dict(ORIGIN),
            "availability": [{"topic": self.availability_topic}],
            "state_topic": self.state_topic,
        }
        if self.device_class:
            cfg["device_class"] = self.device_class
        if self.main_command:
            cfg["command_topic"] = self.command_topic
        cfg.update(self.extra_config())
        return cfg

    def extra_config(self) -> dict[str, Any]:
        return {}

    def discovery_message(self) -> Message:
        return self.discovery_topic, json.dumps(self.discovery_config(), sort_keys=True)

    # State and commands -------------------------------------------------------------
    def initial_state(self) -> dict[str, Any]:
        return {}

    def state_messages(self) -> list[Message]:
        """The state message(s) the device publishes (retained) now."""
        if self.plain_state:
            return [(self.state_topic, str(self.state.get("state", "")))]
        return [(self.state_topic, json.dumps(self.state, sort_keys=True))]

    def handle_command(self, topic: str, payload: bytes) -> list[Message]:
        """Apply one command; returns the state messages to publish ([] when rejected)."""
        thing = None
        if topic != self.command_topic or not self.main_command:
            thing = next((t for t in self.things() if self.topic_for(t) == topic), None)
            if thing is None:
                log.warning("%s: command on unknown topic %s ignored", self.entity_id, topic)
                return []
        try:
            text = payload.decode("utf-8").strip()
            self.apply(thing, text)
        except (ValueError, TypeError, ArithmeticError) as exc:  # BadCommand, not UTF-8, NaN
            log.warning("%s: bad command %r on %s ignored: %s", self.entity_id, payload, topic, exc)
            return []
        return self.state_messages()

    def apply(self, thing: str | None, text: str) -> None:
        raise BadCommand("this device takes no commands")

    def tick(self, now: float) -> list[Message]:
        """Advance simulated time; returns state messages when something changed."""
        return []

    def ha_state(self) -> dict[str, Any]:
        """The state in home-file terms (percent, kelvin), for tests and benchmarks."""
        return dict(self.state)


def _json_obj(text: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadCommand(f"not JSON: {exc.msg}") from None
    if not isinstance(data, dict):
        raise BadCommand("JSON command must be an object")
    return data


def parse_on_off(value: Any, current: str) -> str:
    word = str(value).upper()
    if word in ("ON", "OFF"):
        return word
    if word == "TOGGLE":
        return "OFF" if current == "ON" else "ON"
    raise BadCommand(f"state must be ON, OFF or TOGGLE, got {value!r}")


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


@dataclass
class EspSwitch(SimDevice):
    """An ESPHome/Tasmota-style switch: default schema, plain ON/OFF, abbreviated keys."""

    component: ClassVar[str] = "switch"
    plain_state: ClassVar[bool] = True

    def initial_state(self) -> dict[str, Any]:
        return {"state": "ON" if self.initial.get("state") == "on" else "OFF"}

    def esp_config(self) -> dict[str, Any]:
        """Common ESPHome keys: abbreviated, named entity, `avty_t` with its defaults."""
        dev = self.device_block()
        cfg: dict[str, Any] = {
            "name": self.name,
            "obj_id": self.account,
            "def_ent_id": self.entity_id,
            "uniq_id": f"sim_{self.account}_{self.component}",
            "avty_t": self.availability_topic,
            "stat_t": self.state_topic,
            "cmd_t": self.command_topic,
            "dev": {
                "ids": dev["identifiers"],
                "name": dev["name"],
                "sw": dev["sw_version"],
                "mdl": dev["model"],
                "mf": dev["manufacturer"],
            },
            "o": dict(ORIGIN),
        }
        if self.device_class:
            cfg["dev_cla"] = self.device_class
        return cfg

    def discovery_config(self) -> dict[str, Any]:
        return {**self.esp_config(), "pl_on": "ON", "pl_off": "OFF"}

    def apply(self, thing: str | None, text: str) -> None:
        self.state = {"state": parse_on_off(text, self.state["state"])}

    def ha_state(self) -> dict[str, Any]:
        return {"state": self.state["state"].lower()}


@dataclass
class EspLock(EspSwitch):
    """An ESPHome lock: LOCK/UNLOCK/OPEN commands, LOCKED/UNLOCKED state text."""

    component: ClassVar[str] = "lock"

    def initial_state(self) -> dict[str, Any]:
        return {"state": "UNLOCKED" if self.initial.get("state") == "unlocked" else "LOCKED"}

    def discovery_config(self) -> dict[str, Any]:
        return {
            **self.esp_config(),
            "pl_lock": "LOCK",
            "pl_unlk": "UNLOCK",
            "pl_open": "OPEN",
            "stat_locked": "LOCKED",
            "stat_unlocked": "UNLOCKED",
        }

    def apply(self, thing: str | None, text: str) -> None:
        results = {"LOCK": "LOCKED", "UNLOCK": "UNLOCKED", "OPEN": "UNLOCKED"}
        if text not in results:
            raise BadCommand(f"lock takes LOCK, UNLOCK or OPEN, got {text!r}")
        self.state = {"state": results[text]}

    def ha_state(self) -> dict[str, Any]:
        return {"state": self.state["state"].lower()}


def kinds() -> dict[str, type[SimDevice]]:
    """Simulator class per kind (`sim.kind`, else the entity's domain)."""
    from hubagent.sim import kinds as more  # builds on this module, so imported late

    return {
        "light": JsonLight,
        "switch": EspSwitch,
        "lock": EspLock,
        "cover": more.Cover,
        "climate": more.Climate,
        "fan": more.Fan,
        "sensor": more.Sensor,
        "binary_sensor": more.BinarySensor,
        "vacuum": more.Vacuum,
    }


def make_device(
    raw: dict[str, Any], *, discovery_prefix: str = "homeassistant", root: str = "home"
) -> SimDevice:
    """A simulated device for one home-file device entry (ValueError when unsupported)."""
    entity_id = str(raw.get("id", ""))
    if "." not in entity_id:
        raise ValueError(f"device id must be '<domain>.<name>', got {entity_id!r}")
    sim = raw.get("sim") or {}
    if not isinstance(sim, dict):
        raise ValueError(f"{entity_id}: 'sim' must be a mapping")
    kind = str(sim.get("kind", entity_id.split(".", 1)[0]))
    table = kinds()
    cls = table.get(kind)
    if cls is None:
        raise ValueError(f"{entity_id}: no simulator for '{kind}' (have {', '.join(table)})")
    try:
        return cls(
            entity_id=entity_id,
            name=str(raw.get("name") or entity_id.split(".", 1)[1].replace("_", " ")),
            attributes={k: dict(v or {}) for k, v in (raw.get("attributes") or {}).items()},
            initial=dict(raw.get("state") or {}),
            device_class=raw.get("device_class"),
            sim=dict(sim),
            discovery_prefix=discovery_prefix,
            root=root,
        )
    except (TypeError, ValueError, AttributeError) as exc:  # a malformed entry, not a bug
        raise ValueError(f"{entity_id}: unusable attributes or state: {exc}") from None
