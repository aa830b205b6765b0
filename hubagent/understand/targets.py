"""Which entities an intent's slots point at, with Home Assistant's target semantics.

By name or alias (optionally within an area or floor), by area or floor plus domain or
device class, else the request's own area (the satellite's), else the whole home.
Entities that cannot do the verb are dropped later by the intent -> action mapping.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from hubagent.home.registry import Registry, normalize_name
from hubagent.types import Area, Entity, Floor

# Domains an intent implies when the sentence names none (Home Assistant's intent handlers
# only look at these). Intents missing here accept any domain (HassTurnOn, HassGetState...).
INTENT_DOMAINS: dict[str, frozenset[str]] = {
    "HassLightSet": frozenset({"light"}),
    "HassFanSetSpeed": frozenset({"fan"}),
    "HassClimateSetTemperature": frozenset({"climate"}),
    "HassClimateGetTemperature": frozenset({"climate"}),
    "HassClimateSetFanMode": frozenset({"climate"}),
    "HassSetPosition": frozenset({"cover", "valve"}),
    "HassMediaPause": frozenset({"media_player"}),
    "HassMediaUnpause": frozenset({"media_player"}),
    "HassMediaNext": frozenset({"media_player"}),
    "HassMediaPrevious": frozenset({"media_player"}),
    "HassSetVolume": frozenset({"media_player"}),
    "HassSetVolumeRelative": frozenset({"media_player"}),
    "HassMediaPlayerMute": frozenset({"media_player"}),
    "HassMediaPlayerUnmute": frozenset({"media_player"}),
    "HassVacuumStart": frozenset({"vacuum"}),
    "HassVacuumReturnToBase": frozenset({"vacuum"}),
    "HassVacuumCleanArea": frozenset({"vacuum"}),
    "HassLawnMowerStartMowing": frozenset({"lawn_mower"}),
    "HassLawnMowerDock": frozenset({"lawn_mower"}),
}

# Intents whose sentences, when they take the area from the request ("turn on the
# lights", "are any lights on"), mean that area only. The others address a kind of device a
# home usually has one of (thermostat, player, vacuum): the request's area is preferred,
# the rest of the home is the fallback ("pause" from the kitchen pauses the TV).
_AREA_STRICT_INTENTS = frozenset(
    {"HassTurnOn", "HassTurnOff", "HassToggle", "HassLightSet", "HassSetPosition", "HassGetState"}
)

# Media commands without a name go to the players in the state they act on, when any are
# ("pause" pauses what is playing, not every speaker in the house).
_PREFERRED_STATE = {
    "HassMediaPause": "playing",
    "HassMediaNext": "playing",
    "HassMediaPrevious": "playing",
    "HassMediaUnpause": "paused",
}


@dataclass
class Targets:
    """The entities a request points at, or why there are none."""

    entities: list[Entity] = field(default_factory=list)
    error: str | None = None  # "unknown_device" when nothing matched
    detail: str = ""
    area: Area | None = None  # the area the request was scoped to, if any
    floor: Floor | None = None


def values(slot: Any) -> set[str]:
    """A slot value (string or list of strings) as a set of lower-case strings."""
    if slot is None:
        return set()
    if isinstance(slot, (list, set, tuple, frozenset)):
        return {str(v).lower() for v in slot}
    return {str(slot).lower()}


def find_floor(registry: Registry, name: str) -> Floor | None:
    """The floor whose id, name or alias matches `name`."""
    key = normalize_name(name)
    for floor in registry.floors:
        if key in {normalize_name(n) for n in (floor.id, floor.name, *floor.aliases)}:
            return floor
    return None


def find_area(registry: Registry, name: str | None) -> Area | None:
    """The area with this id, name or alias (`None` for no or an unknown area)."""
    if not name:
        return None
    return registry.area(name) or registry.find_area(name)


# registry -> (version, name or alias -> ids, object id -> ids), rebuilt when it changes.
_Index = tuple[int, dict[str, list[str]], dict[str, list[str]]]
_NAME_INDEX: weakref.WeakKeyDictionary[Registry, _Index] = weakref.WeakKeyDictionary()


def _named(registry: Registry, name: str) -> list[Entity]:
    """Entities whose name or alias is `name` (normalised); failing that, whose object id is
    ("open the garage" is the door aliased "garage", not also `light.garage`)."""
    cached = _NAME_INDEX.get(registry)
    if cached is None or cached[0] != registry.version:
        names: dict[str, list[str]] = {}
        object_ids: dict[str, list[str]] = {}
        version = registry.version
        for e in registry.all():
            for key in {normalize_name(n) for n in (e.name, *e.aliases)}:
                names.setdefault(key, []).append(e.entity_id)
            object_id = normalize_name(e.entity_id.split(".", 1)[-1])
            object_ids.setdefault(object_id, []).append(e.entity_id)
        cached = (version, names, object_ids)
        _NAME_INDEX[registry] = cached
    key = normalize_name(name)
    ids = cached[1].get(key) or cached[2].get(key, ())
    found = (registry.get(i) for i in ids)
    return [e for e in found if e is not None]


def _kind_filter(entities: Iterable[Entity], domains: set[str], classes: set[str]) -> list[Entity]:
    out = []
    for entity in entities:
        if domains and entity.domain not in domains:
            continue
        if classes and (entity.device_class or "").lower() not in classes:
            continue
        out.append(entity)
    return out


def _what(domains: set[str], classes: set[str]) -> str:
    if classes:
        return " or ".join(sorted(classes))
    if domains:
        return " or ".join(sorted(d.replace("_", " ") for d in domains))
    return "device"


def resolve_targets(
    registry: Registry,
    intent: str,
    slots: dict[str, Any],
    request_area: str | None = None,
    area_required: bool = False,
) -> Targets:
    """Entities that `intent` with `slots` addresses, from a request made in `request_area`.

    With `area_required` (the sentence took its area from the request: "turn on the
    lights") only that area counts for switching intents; otherwise the request's area is
    a preference and the whole home the fallback.
    """
    area_required = area_required and intent in _AREA_STRICT_INTENTS
    targets = _resolve(registry, intent, slots, request_area, area_required)
    wanted = _PREFERRED_STATE.get(intent)
    if wanted and not slots.get("name") and len(targets.entities) > 1:
        in_state = [e for e in targets.entities if e.state.get("state") == wanted]
        targets.entities = in_state or targets.entities
    return targets


def _resolve(
    registry: Registry,
    intent: str,
    slots: dict[str, Any],
    request_area: str | None,
    area_required: bool,
) -> Targets:
    if intent == "HassVacuumCleanArea" and slots.get("area"):
        # The area is what to clean, not where the vacuum is: find the vacuum without it.
        room = find_area(registry, str(slots["area"]))
        if room is None:
            return Targets(error="unknown_device", detail=f"no area named {slots['area']!r}")
        rest = {k: v for k, v in slots.items() if k != "area"}
        found = _resolve(registry, "HassVacuumStart", rest, request_area, False)
        found.area = room
        return found
    domains = values(slots.get("domain")) or set(INTENT_DOMAINS.get(intent, ()))
    classes = values(slots.get("device_class"))
    everything = registry.all()

    area: Area | None = None
    floor: Floor | None = None
    if slots.get("area"):
        area = find_area(registry, str(slots["area"]))
        if area is None:
            return Targets(error="unknown_device", detail=f"no area named {slots['area']!r}")
    if slots.get("floor"):
        floor = find_floor(registry, str(slots["floor"]))
        if floor is None:
            return Targets(error="unknown_device", detail=f"no floor named {slots['floor']!r}")

    def in_scope(entities: Iterable[Entity]) -> list[Entity]:
        if area is not None:
            return [e for e in entities if e.area == area.id]
        if floor is not None:
            floor_areas = {a.id for a in registry.areas if a.floor == floor.id}
            return [e for e in entities if e.area in floor_areas]
        return list(entities)

    where = f" in {area.name}" if area else f" on {floor.name}" if floor else ""

    if slots.get("name"):
        name = str(slots["name"])
        named = _kind_filter(_named(registry, name), domains, classes)
        if not named:
            return Targets(error="unknown_device", detail=f"no device named {name!r}")
        scoped = in_scope(named)
        if not scoped:
            return Targets(
                error="unknown_device", detail=f"no device named {name!r}{where}", area=area
            )
        if area is None and floor is None and len(scoped) > 1:
            # Same name in several rooms: the one next to the speaker wins.
            here = find_area(registry, request_area)
            near = [e for e in scoped if here is not None and e.area == here.id]
            scoped = near or scoped
        return Targets(entities=scoped, area=area, floor=floor)

    if area is None and floor is None and request_area:
        here = find_area(registry, request_area)
        kinds = _kind_filter(everything, domains, classes)
        local = [e for e in kinds if here is not None and e.area == here.id]
        if local:
            return Targets(entities=local, area=here)
        if not area_required and kinds:
            return Targets(entities=kinds)
        label = here.name if here else "this area"
        return Targets(
            error="unknown_device",
            detail=f"no {_what(domains, classes)} in {label}",
            area=here,
        )

    found = _kind_filter(in_scope(everything), domains, classes)
    if not found:
        return Targets(
            error="unknown_device",
            detail=f"no {_what(domains, classes)}{where}",
            area=area,
            floor=floor,
        )
    return Targets(entities=found, area=area, floor=floor)
