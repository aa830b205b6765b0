"""What the wording of one command makes certain: the verb, the attribute a bare value
means, and the value itself (from `understand.values`), checked against one entity.
"""

from __future__ import annotations

import re
from collections.abc import Set as AbstractSet
from typing import Any

from hubagent.types import Entity
from hubagent.understand import cues, tables_en, values

_QUESTION_WORDS = ("what", "whats", "how", "is", "are", "which", "does", "do")

_PRIMARY = {
    "light": ("brightness",),
    "climate": ("temperature",),
    "cover": ("position",),
    "valve": ("position",),
    "media_player": ("volume",),
    "fan": ("percentage",),
    "humidifier": ("humidity",),
    "number": ("value",),
}
_KEYWORD_VERBS = (
    ("unlock", "unlock"), ("turn on", "turn_on"), ("switch on", "turn_on"),
    ("turn off", "turn_off"), ("switch off", "turn_off"), ("shut off", "turn_off"),
    ("shut down", "turn_off"), ("kill", "turn_off"), ("toggle", "toggle"),
    ("unmute", "unmute"), ("unsilence", "unmute"), ("mute", "mute"), ("silence", "mute"),
    ("hush", "mute"), ("shush", "mute"), ("skip", "next"), ("next", "next"),
    ("go back", "previous"), ("previous", "previous"), ("resume", "play"),
    ("unpause", "play"), ("open", "open"), ("close", "close"), ("shut", "close"),
    ("feed", "press"), ("activate", "activate"), ("run", "activate"), ("boil", "turn_on"),
    ("fire up", "turn_on"),
    ("return to base", "return_to_base"), ("back to it dock", "return_to_base"),
    ("back to base", "return_to_base"),
    ("pause", "pause"), ("play", "play"), ("stop", "stop"), ("start", "start"),
    ("lock", "lock"), ("unlock", "unlock"), ("pack", "press"), ("press", "press"),
    ("charge", "return_to_base"), ("dock", "return_to_base"), ("dock", "dock"),
    ("send home", "return_to_base"), ("mow", "start_mowing"), ("lower", "close"),
    ("raise", "open"),
    # A vacuum's own work named as a verb: "get it cleaning", "hoover the lounge".
    ("clean", "start"), ("cleaning", "start"), ("hoovering", "start"), ("vacuuming", "start"),
)  # fmt: skip
# The same request in another domain's words: "turn on" a cover opens it, "put movie night
# on" activates the scene, "open" a lock unlocks it (and is confirmed as such).
VERB_EQUIVALENTS: dict[str, dict[str, str]] = {
    "cover": {"turn_on": "open", "turn_off": "close"},
    "valve": {"turn_on": "open", "turn_off": "close"},
    "lock": {"turn_on": "unlock", "open": "unlock", "turn_off": "lock", "close": "lock"},
    "scene": {"turn_on": "activate", "start": "activate", "press": "activate"},
    "script": {"activate": "turn_on", "start": "turn_on"},
    "button": {"turn_on": "press", "start": "press", "activate": "press"},
    "vacuum": {"turn_on": "start", "turn_off": "stop", "play": "start", "activate": "start"},
    "climate": {"start": "turn_on", "stop": "turn_off"},
    "switch": {"start": "turn_on", "stop": "turn_off", "activate": "turn_on"},
    "fan": {"start": "turn_on", "stop": "turn_off"},
    "humidifier": {"start": "turn_on", "stop": "turn_off"},
    "media_player": {"start": "play", "unmute": "mute"},
}


# The state a verb leaves a device in (a group skips the devices already there).
_RESULT_STATE = {
    "turn_on": ("on",), "turn_off": ("off",), "lock": ("locked",), "unlock": ("unlocked",),
    "open": ("open",), "close": ("closed",), "pause": ("paused",), "play": ("playing",),
}  # fmt: skip


def said_verbs(command: str) -> set[str]:
    """The action verbs the command's own words name ("run it" -> activate)."""
    tw = cues.words(_ON_OFF.sub(r"turn \2", " ".join(cues.words(command))))
    return {verb for phrase, verb in _KEYWORD_VERBS if cues.contains(tw, phrase)}


def already(entity: Entity, verb: str) -> bool:
    """Is `entity` already in the state `verb` would leave it in?"""
    state = str(entity.state.get("state", "")).lower()
    return state in _RESULT_STATE.get(verb, ())


def supported_verb(entity: Entity, verb: str) -> str | None:
    """`verb`, or its equivalent for this entity's domain, if the entity can do it. A toggle
    on a lock or cover is what it would do from the current state."""
    if verb == "toggle" and verb not in entity.verbs:
        state = str(entity.state.get("state", "")).lower()
        flipped = {"locked": "unlock", "unlocked": "lock", "open": "close", "closed": "open"}
        verb = flipped.get(state, verb)
    if verb in entity.verbs:
        return verb
    other = VERB_EQUIVALENTS.get(entity.domain, {}).get(verb)
    return other if other and other in entity.verbs else None


def cue_verb(command: str, entity: Entity, known: AbstractSet[str]) -> str | None:
    """The verb the wording makes certain for this entity, or None to ask the model."""
    if is_question(command):
        return "get_state"
    named = [a for a in cues.mentioned_attributes(command, known, entity) if a in entity.attributes]
    options = [o for spec in entity.attributes.values() for o in spec.get("options") or []]
    tw = [w for w in cues.words(command) if w not in ("it", "them")]  # "turn it on"
    tw = cues.words(_ON_OFF.sub(r"turn \2", " ".join(tw)))  # "flip on", "knock off"
    if re.search(r"\b(?:turn|switch|shut|kill)\b", " ".join(tw)) and "turn_off" in entity.verbs:
        options = [o for o in options if str(o) not in ("off", "on")]  # "shut off the AC"
    cue = values.read_value(command)
    option = values.option_in_text(command, options)
    if has_value(cue) or option is not None:
        return "set"
    if named and not _FIXED_VERBS & set(tw):
        return "set"
    if re.search(r"\b(?:get|set)\b.*\bgoing\b", " ".join(tw)):
        tw = ["start"]  # "get the hoover going (again)"
    split_on_off = _SPLIT_ON_OFF.search(" ".join(tw))
    if split_on_off:
        # "switch the kitchen lights off", "turn the fan on in the bedroom"
        tw = ["turn", split_on_off.group(1)]
    if entity.domain in ("cover", "valve") and not has_value(cue):
        vague = any(cues.contains(tw, b) for b in tables_en.BIT_WORDS)
        opening = 1 if {"open", "raise"} & set(tw) else -1 if {"close", "shut"} & set(tw) else 0
        if vague and (cue.relative or opening):
            return "set"  # "open the curtains a bit": 10 points, not all the way
        if cue.relative and not opening:  # "pull the blinds up", "bring it down": all the way
            return "open" if cue.relative > 0 else "close"
    for phrase, verb in _KEYWORD_VERBS:
        if cues.contains(tw, phrase) and (found := supported_verb(entity, verb)):
            return found
    if cue.relative and primary_attribute(entity):
        return "set"  # "turn the heat up", "a bit brighter": the vague amount
    return None


# "turn the fan on in the bedroom": turn/switch, a few words, then on/off ending the command
# or followed by a place.
_SPLIT_ON_OFF = re.compile(
    r"^(?:turn|switch|put|flip|pop|stick|get|knock|shut|flick)\b(?:\s+\S+){1,5}?\s+(on|off)(?:\s+(?:in|at)\b.*)?$"
)


# Verbs that carry their own value: "mute it" is mute, not "set the mute attribute".
_FIXED_VERBS = frozenset({"mute", "unmute", "toggle"})
_ON_OFF = re.compile(r"\b(flip|flick|pop|stick|put|get|knock|shut|kill|switch|turn)\s+(on|off)\b")


def primary_attribute(entity: Entity) -> str | None:
    """The attribute a bare value refers to ("set the AC to 22" means temperature)."""
    for attr in _PRIMARY.get(entity.domain, ()):
        if attr in entity.attributes:
            return attr
    numeric = [a for a, spec in entity.attributes.items() if "options" not in spec]
    return numeric[0] if len(numeric) == 1 else None


def is_question(command: str) -> bool:
    """A question reads state; a request ending in "?" ("stick the aircon on, would you?")
    is still a request."""
    from hubagent.understand.split import COMMAND_VERBS

    first = command.strip().split(" ", 1)[0].lower().strip("'’")
    if first in ("do", "does"):  # "do what the note says" is a command
        return command.strip().endswith("?")
    if first in _QUESTION_WORDS or first.startswith(("what", "how")):
        return True
    return command.strip().endswith("?") and first not in COMMAND_VERBS


def has_value(cue: values.ValueCue) -> bool:
    return (
        cue.number is not None
        or cue.extreme is not None
        or cue.factor is not None
        or cue.share is not None
    )


def value_for(cue: values.ValueCue, command: str, entity: Entity, attr: str) -> Any:
    spec = entity.attributes.get(attr) or {}
    current = entity.state.get(attr)
    if spec.get("options"):
        return values.resolve_option(cue, command, spec, current)
    if attr in ("color", "rgb_color"):
        colour = values.option_in_text(command, list(values.COLORS))
        return list(values.COLORS[colour]) if colour else None
    off = str(entity.state.get("state", "")).lower() == "off"
    number = values.resolve_number(cue, spec, current, attr, off)
    if number is None:
        return None
    return int(number) if float(number).is_integer() else number
