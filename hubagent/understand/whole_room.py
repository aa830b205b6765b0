"""Requests about every device of a room: "turn off everything in the kitchen".

Only devices that simply switch (lights, switches, fans, players, humidifiers) are meant;
locks, covers, alarms and climate are never swept along with "everything". A room must be
named (or be the speaker's): "turn off everything" alone is too broad to guess.
"""

from __future__ import annotations

import re

from hubagent.home.registry import Registry, normalize_name
from hubagent.types import Action, Step
from hubagent.understand import cues

SWITCHABLE = frozenset({"light", "switch", "fan", "media_player", "humidifier"})
_EVERYTHING = re.compile(r"\b(everything|all (?:the )?devices|all (?:the )?things)\b")
_ON_OFF = re.compile(r"\b(?:turn|switch|power)\b(?:\s+\S+){0,4}?\s+(on|off)\b")


def whole_room_step(registry: Registry, command: str, area: str | None) -> Step | None:
    """Turn every switchable device of the named (or speaker's) room on or off, else None."""
    text = normalize_name(command)
    if not _EVERYTHING.search(text):
        return None
    verb = _on_off(text)
    rooms = cues.mentioned_areas(registry, command) or ([area] if area else [])
    if verb is None or not rooms:
        return None
    targets = [e for e in registry.all() if e.area in rooms and e.domain in SWITCHABLE]
    actions = [Action(e.entity_id, verb) for e in targets if verb in e.verbs]
    if not actions:
        return Step(command, error="unknown_device", detail="nothing there to switch")
    return Step(command, actions)


def _on_off(text: str) -> str | None:
    match = _ON_OFF.search(text)
    return None if match is None else f"turn_{match.group(1)}"
