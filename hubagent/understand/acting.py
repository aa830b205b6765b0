"""From a chosen entity and verb to the Action(s) of one step, with the value computed from
the command, the entity's range and its current state (`values`)."""

from __future__ import annotations

from collections.abc import Set as AbstractSet

from hubagent.types import VERB_CAPABILITY, Action, Entity, Step
from hubagent.understand import cues, values, wording

ATTRIBUTE_VERB = {a: v for v, a in VERB_CAPABILITY.items()}
_ARG_NAME = {"set_color": "color", "select_option": "option", "set_value": "value"}
# Verbs whose argument is fixed by the verb itself.
_FIXED_ARGS = {"mute": ("mute", True), "unmute": ("mute", False)}


def act_on_all(
    command: str, entities: list[Entity], verb: str, known: AbstractSet[str], direction: int = 0
) -> Step:
    """`verb` on every entity: all of their actions, or the first refusal."""
    steps = [act(command, e, verb, known, direction) for e in entities]
    failed = next((s for s in steps if s.error), None)
    return failed or Step(command, [a for s in steps for a in s.actions])


def act(
    command: str, entity: Entity, verb: str, known: AbstractSet[str], direction: int = 0
) -> Step:
    """The step for `verb` on `entity`; `direction` is a goal's change ("I'm cold": +1) when
    the command itself names no value."""
    if verb in _FIXED_ARGS:
        key, value = _FIXED_ARGS[verb]
        if "mute" in entity.verbs:
            return Step(command, [Action(entity.entity_id, "mute", {key: value})])
    named = [a for a in cues.mentioned_attributes(command, known, entity) if a in entity.attributes]
    cue = values.read_value(command)
    if cue.unclear:
        return Step(command, error="out_of_range", detail="two amounts for one value: which?")
    if direction and not wording.has_value(cue) and not cue.relative:
        cue = values.ValueCue(relative=direction, bit=True)  # a goal: "a bit"
    if entity.domain in ("cover", "valve") and cue.bit is False and not cue.relative:
        tw = set(cues.words(command))
        if not wording.has_value(cue) and tw & {"bit", "little", "touch", "notch", "slightly"}:
            # "open the curtains a bit": opening is up, closing down, by "a bit".
            up = 1 if tw & {"open", "raise"} else -1 if tw & {"close", "shut"} else 0
            cue = values.ValueCue(relative=up, bit=True) if up else cue
    if not named and (wording.has_value(cue) or cue.relative):
        stray = cues.unknown_setting_word(entity, command)
        if stray:  # "the speaker's bass to 5": never the default attribute instead
            return Step(command, error="unknown_attribute", detail=f"{entity.name} has no {stray}")
    attr = VERB_CAPABILITY.get(verb)
    if named and (attr not in named) and (verb == "set" or attr or wording.has_value(cue)):
        attr = named[0]  # the command names the attribute: trust the text
    elif verb == "set" and not attr:
        attr = named[0] if named else None
        if attr is None:
            options = {
                a: spec["options"] for a, spec in entity.attributes.items() if spec.get("options")
            }
            attr = next(
                (a for a, o in options.items() if values.option_in_text(command, o) is not None),
                None,
            ) or _colour_or_primary(command, entity)
    if attr is None:
        if verb in entity.verbs and verb != "set":
            return Step(command, [Action(entity.entity_id, verb)])
        return Step(command, error="unknown_attribute", detail="no attribute named")
    if attr not in entity.attributes:
        return Step(command, error="unknown_attribute", detail=f"no {attr}")
    try:
        value = wording.value_for(cue, command, entity, attr)
    except values.OutOfRange as exc:
        return Step(
            command,
            error="out_of_range",
            detail=f"{entity.name} {attr.replace('_', ' ')}: {exc}",
        )
    if value is None:
        if verb in entity.verbs and verb not in ("set", *ATTRIBUTE_VERB.values()):
            return Step(command, [Action(entity.entity_id, verb)])
        return Step(command, error="out_of_range", detail=f"no value for {attr}")
    verb = ATTRIBUTE_VERB.get(attr, "set")
    if verb not in entity.verbs:
        verb = "set"
    if verb == "set":
        return Step(command, [Action(entity.entity_id, "set", {"attribute": attr, "value": value})])
    return Step(command, [Action(entity.entity_id, verb, {_ARG_NAME.get(verb, attr): value})])


def _colour_or_primary(command: str, entity: Entity) -> str | None:
    """ "make it blue": the colour; else the attribute a bare value means."""
    if values.option_in_text(command, list(values.COLORS)) is not None:
        return "color"  # refused as unknown_attribute when the light has no colour
    return wording.primary_attribute(entity)
