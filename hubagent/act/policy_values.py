"""Policy's value checks: the verdict type, and numbers clamped to the declared range,
options matched case-insensitively, free-form values passed to the executor.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from hubagent.types import Action, Entity

ALLOWED, REFUSED, NEEDS_CONFIRMATION = "allowed", "refused", "needs_confirmation"

# verb -> the attribute it sets and the arg keys it may carry the value in.
VALUE_VERBS: dict[str, tuple[str, tuple[str, ...]]] = {
    "set_brightness": ("brightness", ("brightness", "value")),
    "set_color_temp": ("color_temp", ("color_temp", "kelvin", "value")),
    "set_percentage": ("percentage", ("percentage", "value")),
    "set_humidity": ("humidity", ("humidity", "value")),
    "set_mode": ("mode", ("mode", "value")),
    "set_preset_mode": ("preset_mode", ("preset_mode", "value")),
    "set_position": ("position", ("position", "value")),
    "set_temperature": ("temperature", ("temperature", "value")),
    "set_hvac_mode": ("hvac_mode", ("hvac_mode", "mode", "value")),
    "set_fan_mode": ("fan_mode", ("fan_mode", "mode", "value")),
    "set_swing_mode": ("swing_mode", ("swing_mode", "mode", "value")),
    "set_volume": ("volume", ("volume", "volume_level", "value")),
    "select_option": ("option", ("option", "value")),
    "set_value": ("value", ("value",)),
    "set_effect": ("effect", ("effect", "value")),
    "set_tilt": ("tilt", ("tilt", "tilt_position", "value")),
    "set_fan_speed": ("fan_speed", ("fan_speed", "value")),
}
# Percent-valued attributes have a natural range even when the device declares none.
PERCENT_ATTRIBUTES = frozenset(
    {"brightness", "percentage", "position", "volume", "humidity", "tilt"}
)
SIREN_ARGS = ("tone", "volume", "duration")  # optional arguments of a siren's turn_on


@dataclass
class Decision:
    """The verdict on one action; `reason` is one short sentence for the reply."""

    status: str  # allowed | refused | needs_confirmation
    action: Action
    error: str | None = None  # one of types.STEP_ERRORS
    reason: str = ""
    clamped: bool = False

    @property
    def allowed(self) -> bool:
        return self.status == ALLOWED


def _display(entity: Entity) -> str:
    """The entity's name as it reads after "the": "Front door" -> "front door"."""
    name = entity.name or entity.entity_id
    return name[0].lower() + name[1:] if name[1:2].islower() else name


def _refuse(action: Action, error: str, reason: str) -> Decision:
    return Decision(REFUSED, action, error, reason)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip().rstrip("%°CFKk").strip())
        except ValueError:
            return None
    return None


def _check_values(entity: Entity, action: Action) -> Decision:
    """Validate (and clamp) the value an action carries against the entity's attributes."""
    name = _display(entity)
    if action.action == "set":
        attribute = str(action.args.get("attribute", ""))
        if attribute not in entity.attributes:
            return _refuse(
                action, "unknown_attribute", f"The {name} has no {attribute or 'such setting'}."
            )
        key = "value"
    elif action.action in VALUE_VERBS:
        attribute, keys = VALUE_VERBS[action.action]
        key = next((k for k in keys if k in action.args), keys[0])
    elif action.action == "turn_on" and entity.domain == "siren":
        return _check_siren(entity, action)
    else:
        return Decision(ALLOWED, action)
    spec = dict(entity.attributes.get(attribute) or {})
    if not spec and attribute in PERCENT_ATTRIBUTES:
        spec = {"min": 0, "max": 100}
    label = attribute.replace("_", " ")
    if key not in action.args:
        return _refuse(action, "out_of_range", f"No {label} value was given for the {name}.")
    value = action.args[key]
    if spec.get("options"):
        options = [str(o) for o in spec["options"]]
        match = next((o for o in options if o.lower() == str(value).strip().lower()), None)
        if match is None:
            return _refuse(
                action,
                "out_of_range",
                f"The {name} has no {label} '{value}' (options: {', '.join(options[:8])}).",
            )
        return Decision(ALLOWED, _with_arg(action, key, match))
    if "min" not in spec and "max" not in spec:
        return Decision(ALLOWED, action)  # free-form (e.g. a color name): the executor maps it
    number = _number(value)
    if number is None:
        return _refuse(action, "out_of_range", f"'{value}' is not a valid {label} for the {name}.")
    low, high = _number(spec.get("min")), _number(spec.get("max"))
    clamped = number
    if low is not None and clamped < low:
        clamped = low
    if high is not None and clamped > high:
        clamped = high
    out = int(clamped) if clamped == int(clamped) else clamped
    if clamped != number:
        unit = str(spec.get("unit") or ("%" if attribute in PERCENT_ATTRIBUTES else ""))
        reason = f"The {name} {label} goes from {_fmt(low)} to {_fmt(high)}{unit}, so I set it to {_fmt(out)}{unit}."
        return Decision(ALLOWED, _with_arg(action, key, out), None, reason, True)
    return Decision(ALLOWED, _with_arg(action, key, out))


def _check_siren(entity: Entity, action: Action) -> Decision:
    """A siren's turn_on may carry a tone (one of its tones), a volume (0-100 %) and a
    duration (s), each checked like the setting of that attribute."""
    reasons, clamped = [], False
    for arg in (a for a in SIREN_ARGS if a in action.args):
        if arg not in entity.attributes:
            return _refuse(action, "unknown_attribute", f"The {_display(entity)} has no {arg}.")
        sub = _check_values(
            entity, Action(action.entity, "set", {"attribute": arg, "value": action.args[arg]})
        )
        if sub.status != ALLOWED:
            return replace(sub, action=action)
        action = _with_arg(action, arg, sub.action.args["value"])
        clamped |= sub.clamped
        reasons += [sub.reason] if sub.reason else []
    return Decision(ALLOWED, action, None, " ".join(reasons), clamped)


def _with_arg(action: Action, key: str, value: Any) -> Action:
    return replace(action, args={**action.args, key: value})


def _fmt(value: float | None) -> str:
    if value is None:
        return "?"
    return str(int(value)) if value == int(value) else f"{value:g}"
