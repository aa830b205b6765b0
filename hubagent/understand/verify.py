"""The verifier: every step's actions are checked against the registry and the words of the
request before anything is executed, whichever path produced them.

It refuses or asks; it never substitutes another device. Checks:
- the entity exists and supports the verb;
- explicit values are inside the attribute's range (relative changes were already clamped);
- a toggle on a lock is what it would do: an unlock when locked (so it is confirmed);
- the request's own verb word agrees with the action ("unlock" never becomes a lock);
- a room the command names is the entity's own room;
- a negated command ("don't turn on the kettle") acts on nothing.
Nothing in the request text counts as a confirmation: that is the policy's later turn.
"""

from __future__ import annotations

import re
from typing import Any

from hubagent.home.registry import Registry
from hubagent.types import VERB_CAPABILITY, Action, Entity, Step, Understanding
from hubagent.understand import cues, tables_zh

# Action arguments that carry an attribute's value.
_VALUE_ARGS = {
    "brightness": "brightness", "color_temp": "color_temp", "kelvin": "color_temp",
    "percentage": "percentage", "humidity": "humidity", "position": "position",
    "temperature": "temperature", "volume": "volume", "value": "value",
}  # fmt: skip
# Verb words, per language, that a lock action must agree with.
_UNLOCK_WORDS = ("unlock", "解锁", "开锁", "打开")


def verify(registry: Registry, result: Understanding) -> Understanding:
    """`result` with every step checked; a failing step keeps no actions."""
    result.steps = [_step(registry, s) for s in result.steps]
    return result


# "don't turn on the kettle", "不要开灯": a negated command verb is no command to act on
# ("don't ask me again" negates asking, not the unlock before it).
_NEGATION = re.compile(
    r"\b(?:don['’]?t|do not|never|no need to)\s+(?:(?:please|you|ever|even)\s+)?(\w+)"
    r"|(?:不要|别|不用|甭)(?:再)?(?:把|给)?(?:打开|关|开|调|锁|解锁|启动|播放|暂停)",
    re.IGNORECASE,
)


def _negated(text: str) -> bool:
    from hubagent.understand.split import COMMAND_VERBS

    for match in _NEGATION.finditer(text):
        if match.group(1) is None or match.group(1).lower() in COMMAND_VERBS:
            return True
    return False


def _step(registry: Registry, step: Step) -> Step:
    if step.error or not step.actions:
        return step
    if _negated(step.text):
        return Step(step.text, error="not_allowed", detail="the request says not to")
    checked: list[Action] = []
    for action in step.actions:
        entity = registry.get(action.entity)
        if entity is None:
            return Step(step.text, error="unknown_device", detail=f"no device {action.entity}")
        action = _lock_effect(entity, action, step.text)
        if action.action == "set_color_temp" and "color_temp" in action.args:
            # The vocabulary's argument is `kelvin` (DESIGN.md); the matcher says color_temp.
            action = Action(action.entity, action.action, {"kelvin": action.args["color_temp"]})
        if action.action not in entity.verbs:
            what = action.action.replace("_", " ")
            return Step(step.text, error="unknown_attribute", detail=f"{entity.name} can't {what}")
        problem = _out_of_range(entity, action)
        if problem:
            return Step(step.text, error="out_of_range", detail=problem)
        checked.append(action)
    # A room named with clean_area is what to clean, not where the robot is.
    placed = [registry.get(a.entity) for a in checked if a.action != "clean_area"]
    wrong_room = _room_disagrees(registry, step.text, placed)
    if wrong_room:
        return Step(step.text, error="unknown_device", detail=wrong_room)
    return Step(step.text, checked, detail=step.detail)


def _lock_effect(entity: Entity, action: Action, text: str) -> Action:
    """A lock action as what it does: toggle on a locked lock unlocks; a "lock" the request
    words as an unlock is the unlock (so the policy asks for confirmation)."""
    if entity.domain != "lock":
        return action
    if action.action == "toggle":
        locked = str(entity.state.get("state", "")).lower() == "locked"
        return Action(entity.entity_id, "unlock" if locked else "lock", {})
    low = text.lower()
    if action.action == "lock" and any(w in low for w in _UNLOCK_WORDS):
        return Action(entity.entity_id, "unlock", {})
    return action


def _out_of_range(entity: Entity, action: Action) -> str | None:
    """An explicit value outside the attribute's range or options (refused, not clamped)."""
    attribute = VERB_CAPABILITY.get(action.action)
    for key, value in action.args.items():
        attr = _VALUE_ARGS.get(key) if key != "value" or action.action != "set" else None
        if action.action == "set" and key == "value":
            attr = str(action.args.get("attribute", ""))
        attr = attr if attr in entity.attributes else attribute
        spec = entity.attributes.get(attr or "")
        if not spec or isinstance(value, bool):
            continue
        problem = _outside(spec, value)
        if problem:
            return f"{entity.name} {str(attr).replace('_', ' ')}: {problem}"
    return None


def _outside(spec: dict[str, Any], value: Any) -> str | None:
    options = spec.get("options")
    if options and not isinstance(value, int | float):
        known = {str(o).lower() for o in options}
        return None if str(value).lower() in known else f"{value} is not one of {options}"
    if not isinstance(value, int | float):
        return None
    lo, hi = spec.get("min"), spec.get("max")
    if isinstance(lo, int | float) and value < lo:
        return f"{value:g} is below {lo:g}"
    if isinstance(hi, int | float) and value > hi:
        return f"{value:g} is above {hi:g}"
    step = spec.get("step")
    if isinstance(step, int | float) and step > 0 and isinstance(lo, int | float):
        units = (value - lo) / step
        if abs(units - round(units)) > 1e-6:
            return f"{value:g} is not a step of {step:g}"
    return None


def _room_disagrees(registry: Registry, text: str, entities: list[Entity | None]) -> str | None:
    """A room the command names that is none of the chosen entities' rooms."""
    if tables_zh.has_cjk(text):
        return None  # read through the aliases already (pivot), which keep the room
    named = cues.mentioned_areas(registry, text)
    if not named:
        return None
    for entity in entities:
        if entity is not None and entity.area is not None and entity.area not in named:
            area = registry.area(named[0])
            where = area.name if area else named[0]
            return f"no {entity.name} in {where}"
    return None
