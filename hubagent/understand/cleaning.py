"""Cleaning a room with a robot vacuum: the room a request names is what to clean, not
where the vacuum stands ("vacuum the kitchen", "send the robot to clean the store room").
"""

from __future__ import annotations

import re

from hubagent.home.registry import Registry
from hubagent.types import Action, Entity, Step
from hubagent.understand import cues

_CLEAN_WORDS = ("clean", "cleaning", "hoover", "mop", "sweep")


def clean_area_step(registry: Registry, command: str, area: str | None) -> Step | None:
    """A `clean_area` step when `command` asks a vacuum to clean a named room, else None."""
    vacuums = [e for e in registry.all() if e.domain == "vacuum"]
    rooms = cues.mentioned_areas(registry, command)
    if not vacuums or not rooms:
        return None
    named = [e for e in vacuums if cues.names_device(e, registry, command)]
    if not _asks_to_clean(command, named, rooms):
        return None
    # "the purifier cleans the air in the kitchen" is about the purifier; the room's own
    # name ("Garage" door alias "garage") does not count as naming a device.
    rest = _without_rooms(registry, command, rooms)
    if any(e.domain != "vacuum" and cues.names_device(e, registry, rest) for e in registry.all()):
        return None
    pick = named or vacuums
    if len(pick) > 1 and area:
        pick = [e for e in pick if e.area == area] or pick  # the one near the speaker
    if len(pick) > 1:
        return Step(command, error="unknown_device", detail=cues.which_one(registry, pick))
    vacuum = pick[0]
    if "cleaning_area" not in vacuum.attributes:
        detail = f"{vacuum.name} cannot clean a single room"
        return Step(command, error="unknown_attribute", detail=detail)
    target: str | list[str] = rooms[0] if len(rooms) == 1 else rooms
    return Step(command, [Action(vacuum.entity_id, "clean_area", {"area": target})])


def _without_rooms(registry: Registry, command: str, rooms: list[str]) -> str:
    text = " ".join(cues.words(command))
    for room in rooms:
        found = registry.area(room)
        names = cues.area_names(found) if found else {room.replace("_", " ")}
        for name in sorted(names, key=len, reverse=True):
            text = re.sub(rf"\b{re.escape(' '.join(cues.words(name)))}\b", " ", text)
    return text


def _asks_to_clean(command: str, named: list[Entity], rooms: list[str]) -> bool:
    tw = cues.words(command)
    if any(w in tw for w in _CLEAN_WORDS) or (tw and tw[0] == "vacuum"):
        return True
    # "start the robot in the kitchen" when the robot lives elsewhere (HA's name_area form).
    return "start" in tw and any(e.area not in rooms for e in named)
