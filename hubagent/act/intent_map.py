"""Home Assistant intent (name + slots) on one resolved entity -> the hub's `Action`.

Mirrors what HA's intent handlers call per domain: HassTurnOn opens a cover or valve,
locks a lock, activates a scene, presses a button, starts a vacuum; HassTurnOff closes,
unlocks, stops. The local matcher imports this after it resolved the target entity.
"""

from __future__ import annotations

from typing import Any

from hubagent.types import Action, Entity

_TURN_ON = {
    "cover": "open",
    "valve": "open",
    "lock": "lock",
    "scene": "activate",
    "button": "press",
    "vacuum": "start",
}
_TURN_OFF = {"cover": "close", "valve": "close", "lock": "unlock", "vacuum": "return_to_base"}
_NO_OFF = frozenset({"scene", "button", "select", "number", "text", "sensor", "binary_sensor"})

# Intents that map to one verb whatever the domain (slot -> argument in the value).
_DIRECT: dict[str, tuple[str, str | None, str | None]] = {
    "HassSetPosition": ("set_position", "position", "position"),
    "HassClimateSetTemperature": ("set_temperature", "temperature", "temperature"),
    "HassFanSetSpeed": ("set_percentage", "percentage", "percentage"),
    "HassSetVolume": ("set_volume", "volume_level", "volume"),
    "HassMediaPause": ("pause", None, None),
    "HassMediaUnpause": ("play", None, None),
    "HassMediaNext": ("next", None, None),
    "HassMediaPrevious": ("previous", None, None),
    "HassVacuumStart": ("start", None, None),
    "HassVacuumReturnToBase": ("return_to_base", None, None),
    "HassLawnMowerStartMowing": ("start_mowing", None, None),
    "HassLawnMowerDock": ("dock", None, None),
    "HassHumidifierSetpoint": ("set_humidity", "humidity", "humidity"),
    "HassHumidifierMode": ("set_mode", "mode", "mode"),
    "HassGetState": ("get_state", None, None),
    "HassClimateGetTemperature": ("get_state", None, None),
    "HassGetWeather": ("get_state", None, None),
}


def slot_value(slots: dict[str, Any], name: str) -> Any:
    """A slot's value whether given plainly or as hassil's `{"value": ..., "text": ...}`."""
    value = slots.get(name)
    if isinstance(value, dict):
        value = value.get("value", value.get("text"))
    if isinstance(value, str):
        text = value.strip().rstrip("%").strip()
        try:
            number = float(text)
        except ValueError:
            return value
        return int(number) if number.is_integer() else number
    return value


def _verb_ok(entity: Entity, verb: str) -> bool:
    return verb in entity.verbs or verb == "get_state"


def intent_to_action(entity: Entity, intent: str, slots: dict) -> Action | None:
    """The Action that `intent` with `slots` means on `entity`, or None when it has none."""
    slots = slots or {}
    domain = entity.domain
    verb: str | None = None
    args: dict[str, Any] = {}
    if intent == "HassTurnOn":
        verb = _TURN_ON.get(domain, "turn_on")
    elif intent == "HassTurnOff":
        if domain in _NO_OFF:
            return None
        verb = _TURN_OFF.get(domain, "turn_off")
    elif intent == "HassToggle":
        if domain in ("cover", "valve"):
            is_open = str(entity.state.get("state", "")).lower() in ("open", "opening")
            verb = "close" if is_open else "open"
        elif domain == "lock":
            locked = str(entity.state.get("state", "")).lower() == "locked"
            verb = "unlock" if locked else "lock"
        else:
            verb = "toggle"
    elif intent == "HassLightSet":
        for slot, name, arg in (
            ("brightness", "set_brightness", "brightness"),
            ("color", "set_color", "color"),
            ("temperature", "set_color_temp", "color_temp"),
        ):
            value = slot_value(slots, slot)
            if value is not None:
                verb, args = name, {arg: value}
                break
    elif intent == "HassVacuumCleanArea":
        verb, args = "clean_area", {"area": slot_value(slots, "area")}
    elif intent == "HassSetVolumeRelative":
        volume = _relative_volume(entity, slot_value(slots, "volume_step"))
        if volume is None:
            return None
        verb, args = "set_volume", {"volume": volume}
    elif intent in ("HassMediaPlayerMute", "HassMediaPlayerUnmute"):
        verb, args = "mute", {"mute": intent == "HassMediaPlayerMute"}
    elif intent in _DIRECT:
        verb, slot, arg = _DIRECT[intent]
        if slot is not None:
            value = slot_value(slots, slot)
            if value is None:
                return None
            args = {arg: value}
    if verb is None or not _verb_ok(entity, verb):
        return None
    return Action(entity.entity_id, verb, args)


# What "volume up"/"down" without an amount changes, in percent (Home Assistant's step).
VOLUME_STEP = 10


def _relative_volume(entity: Entity, step: Any) -> int | None:
    """The new volume (percent) for a relative change from the entity's current volume;
    None when the current volume or the step is unknown (nothing is guessed)."""
    current = entity.state.get("volume")
    if isinstance(current, bool) or not isinstance(current, (int, float)):
        return None
    if step in ("up", "down"):
        delta = VOLUME_STEP if step == "up" else -VOLUME_STEP
    else:
        try:
            delta = float(step)
        except (TypeError, ValueError):
            return None
    return int(round(max(0.0, min(100.0, float(current) + delta))))
