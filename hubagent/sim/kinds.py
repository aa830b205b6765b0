"""Simulated covers, climate, fans, sensors and vacuums (see `hubagent.sim.devices`).

Split from `devices.py` only to keep modules small; same rules: pure, no MQTT, bad
commands raise `BadCommand` inside `apply` and are logged by `SimDevice.handle_command`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, ClassVar

from hubagent.sim.devices import (
    BadCommand,
    Message,
    SimDevice,
    as_number,
    parse_on_off,
    percent_to,
)


@dataclass
class Cover(SimDevice):
    """A zigbee2mqtt-style cover (blind, curtain, garage door); position only if declared."""

    component: ClassVar[str] = "cover"

    @property
    def has_position(self) -> bool:
        return "position" in self.attributes

    def things(self) -> tuple[str, ...]:
        return ("position",) if self.has_position else ()

    def extra_config(self) -> dict[str, Any]:
        cfg: dict[str, Any] = {
            "value_template": "{{ value_json.state }}",
            "payload_open": "OPEN",
            "payload_close": "CLOSE",
            "payload_stop": "STOP",
            "state_open": "open",
            "state_closed": "closed",
            "state_opening": "opening",
            "state_closing": "closing",
            "state_stopped": "stopped",
        }
        if self.has_position:
            cfg.update(
                set_position_topic=self.topic_for("position"),
                position_topic=self.state_topic,
                position_template="{{ value_json.position }}",
                position_open=100,
                position_closed=0,
            )
        return cfg

    def initial_state(self) -> dict[str, Any]:
        s = self.initial
        if self.has_position:
            pos = percent_to(s.get("position", 100 if s.get("state") == "open" else 0), 100)
            return {"state": "open" if pos > 0 else "closed", "position": pos}
        return {"state": "open" if s.get("state") == "open" else "closed"}

    def apply(self, thing: str | None, text: str) -> None:
        if thing == "position":
            pos = as_number(text, "position")
            if not 0 <= pos <= 100:
                raise BadCommand(f"position must be 0-100, got {text!r}")
            self.state = {"state": "open" if pos > 0 else "closed", "position": round(pos)}
            return
        word = text.upper()
        if word not in ("OPEN", "CLOSE", "STOP"):
            raise BadCommand(f"cover takes OPEN, CLOSE or STOP, got {text!r}")
        if word == "STOP":  # moves are instant here, so stopping changes nothing
            return
        self.state["state"] = "open" if word == "OPEN" else "closed"
        if self.has_position:
            self.state["position"] = 100 if word == "OPEN" else 0


@dataclass
class Climate(SimDevice):
    """An AC or thermostat: modes, target temperature (range, step), fan and swing modes."""

    component: ClassVar[str] = "climate"
    main_command: ClassVar[bool] = False
    _OPTIONAL: ClassVar[tuple[str, ...]] = ("fan_mode", "swing_mode")

    def _options(self, attr: str, default: list[str]) -> list[str]:
        return [str(o) for o in self.attributes.get(attr, {}).get("options", default)]

    def temp_range(self) -> tuple[float, float, float]:
        t = self.attributes.get("temperature", {})
        return float(t.get("min", 16)), float(t.get("max", 30)), float(t.get("step", 0.5))

    def things(self) -> tuple[str, ...]:
        return ("mode", "temperature", *(a for a in self._OPTIONAL if a in self.attributes))

    def extra_config(self) -> dict[str, Any]:
        lo, hi, step = self.temp_range()
        st = self.state_topic
        cfg: dict[str, Any] = {
            "mode_command_topic": self.topic_for("mode"),
            "mode_state_topic": st,
            "mode_state_template": "{{ value_json.mode }}",
            "modes": self._options("hvac_mode", ["off", "heat"]),
            "temperature_command_topic": self.topic_for("temperature"),
            "temperature_state_topic": st,
            "temperature_state_template": "{{ value_json.temperature }}",
            "current_temperature_topic": st,
            "current_temperature_template": "{{ value_json.current_temperature }}",
            "action_topic": st,
            "action_template": "{{ value_json.action }}",
            "min_temp": lo,
            "max_temp": hi,
            "temp_step": step,
            "precision": 0.1,
            "temperature_unit": "C",
        }
        for attr in self._OPTIONAL:
            if attr in self.attributes:
                cfg[f"{attr}_command_topic"] = self.topic_for(attr)
                cfg[f"{attr}_state_topic"] = st
                cfg[f"{attr}_state_template"] = f"{{{{ value_json.{attr} }}}}"
                cfg[f"{attr}s"] = self._options(attr, [])
        return cfg

    def initial_state(self) -> dict[str, Any]:
        s = self.initial
        lo, hi, _ = self.temp_range()
        modes = self._options("hvac_mode", ["off", "heat"])
        mode = str(s.get("hvac_mode", s.get("state", "off")))
        state: dict[str, Any] = {
            "mode": mode if mode in modes else modes[0],
            "temperature": max(lo, min(hi, float(s.get("temperature", (lo + hi) / 2)))),
            "current_temperature": float(s.get("current_temperature", 21.0)),
        }
        for attr in self._OPTIONAL:
            if attr in self.attributes:
                state[attr] = str(s.get(attr, self._options(attr, ["auto"])[0]))
        state["action"] = self._action(state)
        return state

    @staticmethod
    def _action(state: dict[str, Any]) -> str:
        mode = state["mode"]
        if mode == "off":
            return "off"
        if mode == "auto":
            return "cooling" if state["current_temperature"] > state["temperature"] else "heating"
        return {"cool": "cooling", "heat": "heating", "dry": "drying", "fan_only": "fan"}.get(
            mode, "idle"
        )

    def apply(self, thing: str | None, text: str) -> None:
        if thing == "temperature":
            lo, hi, step = self.temp_range()
            value = as_number(text, "temperature")
            if not lo <= value <= hi:
                raise BadCommand(f"temperature must be {lo}-{hi}, got {text!r}")
            self.state["temperature"] = round(round(value / step) * step, 2)
        else:
            attr = "hvac_mode" if thing == "mode" else str(thing)
            options = self._options(attr, ["off", "heat"])
            if text not in options:
                raise BadCommand(f"{thing} must be one of {options}, got {text!r}")
            self.state["mode" if thing == "mode" else attr] = text
        self.state["action"] = self._action(self.state)

    def tick(self, now: float) -> list[Message]:
        # The room follows the set point while running (0.1 °C per tick), else stays put.
        s = self.state
        if s["mode"] in ("off", "fan_only", "dry"):
            return []
        diff = s["temperature"] - s["current_temperature"]
        if abs(diff) < 0.05:
            return []
        s["current_temperature"] = round(s["current_temperature"] + max(-0.1, min(0.1, diff)), 1)
        s["action"] = self._action(s)
        return self.state_messages()

    def ha_state(self) -> dict[str, Any]:
        out = {k: v for k, v in self.state.items() if k not in ("mode", "action")}
        return {"state": self.state["mode"], "hvac_mode": self.state["mode"], **out}


@dataclass
class Fan(SimDevice):
    """A fan with percentage, preset modes and oscillation (separate command topics)."""

    component: ClassVar[str] = "fan"

    def presets(self) -> list[str]:
        return [str(o) for o in self.attributes.get("preset_mode", {}).get("options", [])]

    def things(self) -> tuple[str, ...]:
        return tuple(
            a for a in ("percentage", "preset_mode", "oscillation") if a in self.attributes
        )

    def extra_config(self) -> dict[str, Any]:
        st = self.state_topic
        cfg: dict[str, Any] = {
            "state_value_template": "{{ value_json.state }}",
            "payload_on": "ON",
            "payload_off": "OFF",
        }
        if "percentage" in self.attributes:
            cfg.update(
                percentage_command_topic=self.topic_for("percentage"),
                percentage_state_topic=st,
                percentage_value_template="{{ value_json.percentage }}",
                speed_range_min=1,
                speed_range_max=100,
            )
        if "preset_mode" in self.attributes:
            cfg.update(
                preset_mode_command_topic=self.topic_for("preset_mode"),
                preset_mode_state_topic=st,
                preset_mode_value_template="{{ value_json.preset_mode }}",
                preset_modes=self.presets(),
            )
        if "oscillation" in self.attributes:
            cfg.update(
                oscillation_command_topic=self.topic_for("oscillation"),
                oscillation_state_topic=st,
                oscillation_value_template="{{ value_json.oscillation }}",
                payload_oscillation_on="oscillate_on",
                payload_oscillation_off="oscillate_off",
            )
        return cfg

    def initial_state(self) -> dict[str, Any]:
        s = self.initial
        state: dict[str, Any] = {"state": "ON" if s.get("state") == "on" else "OFF"}
        if "percentage" in self.attributes:
            state["percentage"] = percent_to(s.get("percentage", 50), 100)
        if "preset_mode" in self.attributes:
            state["preset_mode"] = s.get("preset_mode")
        if "oscillation" in self.attributes:
            state["oscillation"] = "oscillate_on" if s.get("oscillation") else "oscillate_off"
        return state

    def apply(self, thing: str | None, text: str) -> None:
        s = self.state
        if thing is None:
            s["state"] = parse_on_off(text, s["state"])
        elif thing == "percentage":
            pct = as_number(text, "percentage")
            if not 0 <= pct <= 100:
                raise BadCommand(f"percentage must be 0-100, got {text!r}")
            s["percentage"] = round(pct)
            s["state"] = "ON" if pct > 0 else "OFF"
            if "preset_mode" in s:
                s["preset_mode"] = None  # a manual speed leaves the preset
        elif thing == "preset_mode":
            if text not in self.presets():
                raise BadCommand(f"preset must be one of {self.presets()}, got {text!r}")
            s["preset_mode"], s["state"] = text, "ON"
        else:
            if text not in ("oscillate_on", "oscillate_off"):
                raise BadCommand(f"oscillation takes oscillate_on/off, got {text!r}")
            s["oscillation"] = text

    def ha_state(self) -> dict[str, Any]:
        out = {**self.state, "state": self.state["state"].lower()}
        if "oscillation" in out:  # HA's attribute name and type
            out["oscillating"] = out.pop("oscillation") == "oscillate_on"
        return out


@dataclass
class Sensor(SimDevice):
    """A zigbee2mqtt-style sensor: JSON state read with `value_template`; drifts when ticked."""

    component: ClassVar[str] = "sensor"
    main_command: ClassVar[bool] = False
    _rng: random.Random = field(default_factory=random.Random, repr=False)
    _center: float = field(default=0.0, repr=False)  # where the drift pulls back to

    @property
    def key(self) -> str:
        return str(self.sim.get("key", self.device_class or "value"))

    def extra_config(self) -> dict[str, Any]:
        cfg: dict[str, Any] = {
            "value_template": f"{{{{ value_json.{self.key} }}}}",
            "state_class": "measurement",
        }
        unit = self.sim.get("unit") or self.attributes.get("value", {}).get("unit")
        if unit:
            cfg["unit_of_measurement"] = unit
        return cfg

    def initial_state(self) -> dict[str, Any]:
        self._rng.seed(self.entity_id)  # the same home drifts the same way every run
        self._center = float(self.initial.get("state", 0) or 0)
        return {self.key: self._center}

    def tick(self, now: float) -> list[Message]:
        # Mean-reverting random walk: noise per tick, pulled back towards the start value.
        noise = float(self.sim.get("drift", 0.05))
        old = float(self.state[self.key])
        new = old + self._rng.gauss(0, noise) + 0.1 * (self._center - old)
        digits = int(self.sim.get("digits", 1))
        new = round(new, digits) if digits > 0 else round(new)
        if new == old:
            return []
        self.state[self.key] = new
        return self.state_messages()

    def ha_state(self) -> dict[str, Any]:
        return {"state": self.state[self.key]}


@dataclass
class BinarySensor(SimDevice):
    """A zigbee2mqtt contact sensor: `contact: true` means closed, so payload_on is false."""

    component: ClassVar[str] = "binary_sensor"
    main_command: ClassVar[bool] = False

    def extra_config(self) -> dict[str, Any]:
        return {
            "value_template": "{{ value_json.contact }}",
            "payload_on": False,
            "payload_off": True,
        }

    def initial_state(self) -> dict[str, Any]:
        return {"contact": self.initial.get("state") != "on"}

    def ha_state(self) -> dict[str, Any]:
        return {"state": "off" if self.state["contact"] else "on"}


@dataclass
class Vacuum(SimDevice):
    """An MQTT vacuum (state schema): text commands, JSON state, fan speeds, battery."""

    component: ClassVar[str] = "vacuum"
    _COMMANDS: ClassVar[dict[str, str]] = {
        "start": "cleaning",
        "pause": "paused",
        "stop": "idle",
        "return_to_base": "returning",
        "clean_spot": "cleaning",
        "locate": "",
    }

    def speeds(self) -> list[str]:
        opts = self.attributes.get("fan_speed", {}).get("options", ["quiet", "standard", "max"])
        return [str(o) for o in opts]

    def things(self) -> tuple[str, ...]:
        return ("fan_speed",)

    def extra_config(self) -> dict[str, Any]:
        cfg: dict[str, Any] = {f"payload_{c}": c for c in self._COMMANDS}
        cfg.update(
            set_fan_speed_topic=self.topic_for("fan_speed"),
            fan_speed_list=self.speeds(),
            supported_features=["start", "pause", "stop", "return_home", "battery", "status"]
            + ["locate", "clean_spot", "fan_speed"],
        )
        return cfg

    def initial_state(self) -> dict[str, Any]:
        s = self.initial
        return {
            "state": str(s.get("state", "docked")),
            "battery_level": int(s.get("battery_level", 100)),
            "fan_speed": str(s.get("fan_speed", self.speeds()[0])),
        }

    def apply(self, thing: str | None, text: str) -> None:
        if thing == "fan_speed":
            if text not in self.speeds():
                raise BadCommand(f"fan speed must be one of {self.speeds()}, got {text!r}")
            self.state["fan_speed"] = text
        elif text in self._COMMANDS:
            self.state["state"] = self._COMMANDS[text] or self.state["state"]
        else:
            raise BadCommand(f"vacuum takes {sorted(self._COMMANDS)}, got {text!r}")

    def tick(self, now: float) -> list[Message]:
        s = self.state
        if s["state"] == "returning":
            s["state"] = "docked"
        elif s["state"] == "cleaning":
            s["battery_level"] = max(0, s["battery_level"] - 1)
            if s["battery_level"] <= 15:
                s["state"] = "returning"
        elif s["state"] == "docked" and s["battery_level"] < 100:
            s["battery_level"] = min(100, s["battery_level"] + 2)
        else:
            return []
        return self.state_messages()
