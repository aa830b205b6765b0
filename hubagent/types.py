"""Data shared by every layer: entities, areas, actions and the results of a request.

These are the contracts of DESIGN.md ("Action vocabulary", "Home file", "Eval contract").
Everything here is plain data; behaviour lives in the modules that own it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

# Verbs each domain supports (DESIGN.md, "Action vocabulary"). `set` and `get_state`
# apply to every domain and are checked against declared attributes instead.
DOMAIN_VERBS: dict[str, tuple[str, ...]] = {
    "light": (
        "turn_on",
        "turn_off",
        "toggle",
        "set_brightness",
        "set_color",
        "set_color_temp",
        "set_effect",
    ),
    "switch": ("turn_on", "turn_off", "toggle"),
    "fan": ("turn_on", "turn_off", "toggle", "set_percentage", "oscillate", "set_preset_mode"),
    "humidifier": ("turn_on", "turn_off", "toggle", "set_humidity", "set_mode"),
    "siren": ("turn_on", "turn_off", "toggle"),
    "cover": (
        "open",
        "close",
        "stop",
        "set_position",
        "open_tilt",
        "close_tilt",
        "stop_tilt",
        "set_tilt",
    ),
    "valve": ("open", "close", "stop", "set_position"),
    "climate": (
        "turn_on",
        "turn_off",
        "set_temperature",
        "set_hvac_mode",
        "set_fan_mode",
        "set_swing_mode",
    ),
    "lock": ("lock", "unlock", "open"),
    "media_player": (
        "turn_on",
        "turn_off",
        "play",
        "pause",
        "stop",
        "next",
        "previous",
        "set_volume",
        "mute",
    ),
    "vacuum": ("start", "pause", "stop", "return_to_base", "clean_area", "set_fan_speed", "locate"),
    "lawn_mower": ("start_mowing", "pause", "dock"),
    "script": ("turn_on", "turn_off"),
    "scene": ("activate",),
    "button": ("press",),
    "select": ("select_option",),
    "number": ("set_value",),
    "text": ("set_value",),
    "alarm_control_panel": ("arm_home", "arm_away", "arm_night", "disarm"),
}
UNIVERSAL_VERBS: tuple[str, ...] = ("set", "get_state")
READ_ONLY_DOMAINS: frozenset[str] = frozenset({"sensor", "binary_sensor"})


@dataclass(frozen=True)
class Floor:
    id: str
    name: str
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class Area:
    id: str
    name: str
    floor: str | None = None
    aliases: tuple[str, ...] = ()


@dataclass
class Entity:
    """One controllable or readable thing, found by discovery or declared in a home file.

    `attributes` holds capabilities: name -> {"min", "max", "step", "unit"} or {"options"}.
    `state` holds the current values: {"state": "on", "brightness": 80, ...}; brightness and
    positions are in percent, temperatures in the entity's unit.
    `mqtt` holds the normalised discovery config (full key names, `~` expanded) that the
    executor needs to build the device's own payloads; empty for entities without MQTT.
    """

    entity_id: str
    name: str
    area: str | None = None
    aliases: tuple[str, ...] = ()
    device_class: str | None = None
    attributes: dict[str, dict[str, Any]] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)
    mqtt: dict[str, Any] = field(default_factory=dict)
    source: str = "home"  # "home" | "discovery" | "homeassistant"
    unique_id: str | None = None
    device: dict[str, Any] = field(default_factory=dict)
    available: bool = True
    last_changed: float = field(default_factory=time.time)

    @property
    def domain(self) -> str:
        return self.entity_id.split(".", 1)[0]

    @property
    def verbs(self) -> tuple[str, ...]:
        """The action verbs this entity supports, from its domain and capabilities."""
        if self.domain in READ_ONLY_DOMAINS:
            return ("get_state",)
        base = DOMAIN_VERBS.get(self.domain, ())
        verbs = [v for v in base if _verb_supported(self, v)]
        return (*verbs, *UNIVERSAL_VERBS)


# The capability (attribute) each setting verb needs and sets.
VERB_CAPABILITY: dict[str, str] = {
    "set_brightness": "brightness",
    "set_color": "color",
    "set_color_temp": "color_temp",
    "set_percentage": "percentage",
    "oscillate": "oscillation",
    "set_preset_mode": "preset_mode",
    "set_humidity": "humidity",
    "set_mode": "mode",
    "set_position": "position",
    "set_temperature": "temperature",
    "set_hvac_mode": "hvac_mode",
    "set_fan_mode": "fan_mode",
    "set_swing_mode": "swing_mode",
    "set_volume": "volume",
    "select_option": "option",
    "set_value": "value",
    "clean_area": "cleaning_area",  # a vacuum that cleans one room (HA's CLEAN_AREA)
    "set_effect": "effect",
    "set_tilt": "tilt",
    "set_fan_speed": "fan_speed",
}
# Verbs that set nothing but still need a capability: a cover's tilt topic, a vacuum whose
# supported_features list "locate". Kept apart so VERB_CAPABILITY stays one verb per value.
VERB_NEEDS: dict[str, str] = {
    "open_tilt": "tilt",
    "close_tilt": "tilt",
    "stop_tilt": "tilt",
    "locate": "locate",
}


def _verb_supported(entity: Entity, verb: str) -> bool:
    cap = VERB_CAPABILITY.get(verb) or VERB_NEEDS.get(verb)
    if cap is None:
        return True
    return cap in entity.attributes


@dataclass(frozen=True)
class Action:
    """`{"entity": id, "action": verb, "args": {...}}` — the one tool call of the hub."""

    entity: str
    action: str
    args: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"entity": self.entity, "action": self.action, "args": dict(self.args)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Action:
        return cls(str(data["entity"]), str(data["action"]), dict(data.get("args") or {}))


@dataclass(frozen=True)
class MqttMessage:
    """A message the executor wants published (or the simulator received)."""

    topic: str
    payload: str
    qos: int = 1
    retain: bool = False


# Step errors of the eval contract.
STEP_ERRORS = (
    "unknown_device",
    "unknown_attribute",
    "out_of_range",
    "needs_confirmation",
    "not_allowed",
)


@dataclass
class Step:
    """One command inside a request, with the actions it resolved to or why it could not."""

    text: str
    actions: list[Action] = field(default_factory=list)
    error: str | None = None
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "actions": [a.to_dict() for a in self.actions],
            "error": self.error,
        }


@dataclass
class Understanding:
    """What the cascade made of a request, before policy and execution."""

    text: str
    steps: list[Step]
    path: str  # "local" | "student" | "llm" | "none"
    intent: dict[str, Any] | None = None  # {"name": ..., "slots": {...}} from the matcher
    answer: str | None = None  # for state questions, answered from the store
    latency_ms: float = 0.0
    # A request of several commands understood piece by piece: each piece's own
    # Understanding (the agent's assistant answers the pieces that are its intents).
    parts: list[Understanding] = field(default_factory=list)

    @property
    def actions(self) -> list[Action]:
        return [a for s in self.steps for a in s.actions]
