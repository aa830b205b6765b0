"""Choosing the target of one command from the registry: candidates by every name and
alias, the named room or the request's own, the attribute a command names, and the kind of
device it names (a "garage light" is never the garage door)."""

from __future__ import annotations

import re

from hubagent.home.registry import Registry
from hubagent.types import READ_ONLY_DOMAINS, Entity
from hubagent.understand import cues, wording


class Targeting:
    """Candidate entities for a command (mixed into the understander)."""

    registry: Registry

    def _candidates(self, command: str, area: str | None) -> list[Entity]:
        areas = cues.mentioned_areas(self.registry, command)
        if not areas and cues.unknown_area(self.registry, command):
            return []  # "the garage light" in a home without a garage
        named_area = bool(areas)
        if not areas and area:
            areas = [area]  # the satellite's own area when the command names none
        # Entities without an area (a robot vacuum) serve every room.
        pool = [e for e in self.registry.all() if not areas or e.area in areas or e.area is None]
        named = [e for e in pool if cues.grounded(e, self.registry, command)]
        named = [e for e in named if not other_kind(e, self.registry, command)]
        if len(named) > 1:
            # "the heating mode to fan only": a word inside another candidate's option
            # value ("fan only") does not name a fan.
            named = [
                e
                for e in named
                if cues.grounded(e, self.registry, _without_options(command, named, e))
            ] or named
        named += [e for e in _by_plural(pool, command) if e not in named]
        named = [e for e in named if not other_kind(e, self.registry, command)]
        plural = len(named) > 1 and cues.plural_of_all(command, named, self.registry)
        if len(named) > 1 and not plural:
            # The most precise name wins: "floor lamp" over every other lamp.
            lengths = {
                e.entity_id: cues.name_match_length(e, self.registry, command) for e in named
            }
            best = max(lengths.values())
            named = [e for e in named if lengths[e.entity_id] == best]
        named += [e for e in _by_unit(pool, command, named) if e not in named]
        acting = [e for e in named if e.domain not in READ_ONLY_DOMAINS]
        if len(named) > 1 and acting and not wording.is_question(command):
            named = acting  # a command is about what can act, not the humidity sensor
        if len(named) > 1 and not plural:
            # Still tied: the one whose name shares most words with the command
            # ("the cat feeder to six portions" is the Cat feeder portions).
            overlap = {e.entity_id: _overlap(e, command) for e in named}
            top = max(overlap.values())
            if list(overlap.values()).count(top) < len(named):
                named = [e for e in named if overlap[e.entity_id] == top]
        if not named and not named_area and area:
            # "decrease the temperature by 3 degrees" after a step in the guest bedroom: the
            # one device of that room with the attribute; else the one elsewhere in the home.
            if not self._names_a_device(command):
                owners = self._attribute_owners(command, pool)
                if len(owners) == 1:
                    return owners
            return self._candidates(command, None)
        if named:
            return named
        if areas and not self._names_a_device(command):
            owners = self._attribute_owners(command, pool)
            return owners if len(owners) == 1 else []
        # "switch on the coffee thing": the one device whose name has a word no other has.
        loose = cues.distinctive_matches(self.registry, command, pool)
        return loose if len(loose) == 1 else []

    def _attribute_owners(self, command: str, pool: list[Entity]) -> list[Entity]:
        """ "set the brightness to 10 in the dining room": no device word, so the entities
        of `pool` that have the named attribute, the most strongly named one first."""
        known = self.registry.attribute_names()
        named = {
            e.entity_id: set(cues.mentioned_attributes(command, known, e)) & set(e.attributes)
            for e in pool
        }
        owners = [e for e in pool if named[e.entity_id]]
        if len(owners) > 1:
            # "two degrees warmer": temperature (2 words) beats a cover's position (1 word).
            strength = {
                e.entity_id: max(cues.attribute_strength(command, a) for a in named[e.entity_id])
                for e in owners
            }
            best = max(strength.values())
            owners = [e for e in owners if strength[e.entity_id] == best]
            # "set the living room to 21 degrees": degrees are a temperature before a position.
            warm = [e for e in owners if "temperature" in e.attributes]
            if len(warm) == 1 and "degree" in cues.words(command):
                owners = warm
        return owners

    def _why_none(self, command: str, area: str | None) -> str:
        """ "which one? ..." when several devices in the named room fit equally well."""
        areas = cues.mentioned_areas(self.registry, command) or ([area] if area else [])
        if areas and not self._names_a_device(command):
            pool = [e for e in self.registry.all() if e.area in areas]
            tied = self._attribute_owners(command, pool)
            if len(tied) > 1:
                return cues.which_one(self.registry, tied)
        return "no such device here"

    def _names_a_device(self, command: str) -> bool:
        """Does the command use the device word of any entity in the home?"""
        tw = cues.words(cues.without_attribute_phrases(command))  # "fan speed" is no fan
        return cues.names_common_device(command) or any(
            cues.contains(tw, n)
            for e in self.registry.all()
            for n in cues.device_words(e, self.registry)
        )


# Kind words that, said in a command, must be the chosen device's own kind.
STRONG_KINDS = (
    "light", "lamp", "fan", "blind", "curtain", "tv", "television", "speaker", "heater",
    "oven", "window", "kettle", "camera", "vacuum", "thermostat",
)  # fmt: skip


def other_kind(entity: Entity, registry: Registry, command: str) -> str | None:
    """A kind of device the command names that `entity` is not: "the garage light" is not
    the garage door (named "garage"), so it is no candidate for that command."""
    said = cues.without_attribute_phrases(command)
    for spec in entity.attributes.values():
        for option in spec.get("options") or ():
            # "fan only" is an air conditioner's mode, not a fan.
            said = re.sub(rf"\b{re.escape(str(option).replace('_', ' '))}\b", " ", said)
    tw = cues.words(said)
    mine = {w for n in cues.device_words(entity, registry) for w in cues.words(n)}
    mine |= {a.split("_")[0] for a in entity.attributes}  # "the AC fan" is its fan mode
    mine |= set(cues.words(entity.domain.replace("_", " ")))
    for kind in STRONG_KINDS:
        if cues.contains(tw, kind) and kind not in mine:
            return kind
    return None


def _overlap(entity: Entity, command: str) -> int:
    tw = set(cues.words(command)) - cues.GENERIC_WORDS
    return len(tw & {w for n in (entity.name, *entity.aliases) for w in cues.words(n)})


def _without_options(command: str, entities: list[Entity], keep: Entity) -> str:
    """`command` without the option values ("fan only") of the entities other than `keep`."""
    said = " ".join(cues.words(command))
    for e in entities:
        if e is keep:
            continue
        for spec in e.attributes.values():
            for option in spec.get("options") or ():
                phrase = " ".join(cues.words(str(option).replace("_", " ")))
                if " " in phrase:
                    said = re.sub(rf"\b{re.escape(phrase)}\b", " ", said)
    return said


def _by_unit(pool: list[Entity], command: str, named: list[Entity]) -> list[Entity]:
    """ "the cat feeder to six portions": the entity counted in the unit the command gives,
    when its name shares a word with a named one."""
    tw = set(cues.words(command))
    named_words = {w for e in named for n in (e.name, *e.aliases) for w in cues.words(n)}
    found = []
    for e in pool:
        own = {w for n in (e.name, *e.aliases) for w in cues.words(n)}
        units = {
            w
            for spec in e.attributes.values()
            for w in cues.words(str(spec.get("unit") or ""))
            if len(w) > 2 and w not in ("percent", "degree")
        }
        if units & tw and own & named_words:
            found.append(e)
    return found


def _by_plural(pool: list[Entity], command: str) -> list[Entity]:
    """ "all the doors": every device whose name has the plural's head noun."""
    raw = set(re.findall(r"[a-z]+", command.lower()))
    heads = [w for w in _HEADS if w + "s" in raw]
    if not heads:
        return []
    return [
        e
        for e in pool
        if any(h in {w for n in (e.name, *e.aliases) for w in cues.words(n)} for h in heads)
    ]


# Head nouns a plural may name across kinds ("all the doors": locks, covers, sensors).
_HEADS = ("door", "window", "light", "blind", "curtain", "lock", "speaker", "fan", "gate")
