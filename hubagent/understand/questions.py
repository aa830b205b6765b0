"""State questions answered from the registry's current state, never by acting.

"What's the humidity in the bathroom?" reads the humidity sensor's value; "what's the
heating set to?" the target (not the measured) temperature; "how warm is it in the bedroom?"
the measured one; "are the doors locked?" every lock, naming the ones that are not.
The words are English here; the reply layer renders the request's language.
"""

from __future__ import annotations

from collections.abc import Set as AbstractSet
from typing import Any

from hubagent.home.registry import Registry
from hubagent.types import Entity
from hubagent.understand import cues

# Question words that name a state attribute, per attribute (the state key they read).
_READS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("set to", "target", "set at"), "temperature"),
    (("how warm", "how cold", "how hot", "current temperature", "temperature"),
     "current_temperature"),
    (("humidity", "how damp", "how humid", "damp"), "current_humidity"),
    (("battery", "charge"), "battery"),
    (("how far open", "how open", "position", "how much open"), "position"),
    (("volume", "how loud"), "volume"),
    (("brightness", "how bright"), "brightness"),
    (("colour", "color"), "color"),
    (("power", "watt", "using"), "state"),
    (("anyone", "anybody", "someone", "somebody", "motion", "movement"), "motion"),
)  # fmt: skip


def read_key(command: str) -> str | None:
    """The state key a question asks about ("how damp" -> current_humidity), if it names one."""
    tw = cues.words(command)
    return next(
        (key for phrases, key in _READS if any(cues.contains(tw, p) for p in phrases)), None
    )


def can_read(entity: Entity, key: str) -> bool:
    return _read(entity, key) is not None


def by_state_words(entities: list[Entity], command: str) -> list[Entity]:
    """The entities whose kind the question's state word fits ("open or closed": a contact
    or a cover, not the lock of the same door)."""
    tw = cues.words(command)
    for words, domains in _STATE_DOMAINS:
        if any(w in tw for w in words):
            return [e for e in entities if e.domain in domains]
    return entities


def answer(registry: Registry, entity: Entity, command: str, known: AbstractSet[str]) -> str:
    """One sentence with the value the question asks about."""
    tw = cues.words(command)
    for phrases, key in _READS:
        if any(cues.contains(tw, p) for p in phrases):
            value = _read(entity, key)
            if value is not None and (key in ("motion", "state") or entity.domain == "sensor"):
                return f"{entity.name} is {_fmt(value, entity, key)}"
            if value is not None:
                return f"{entity.name} {key.replace('_', ' ')} is {_fmt(value, entity, key)}"
    named = [a for a in cues.mentioned_attributes(command, known, entity) if a in entity.state]
    if named:
        return f"{entity.name} {named[0].replace('_', ' ')} is {entity.state.get(named[0])}"
    return f"{entity.name} is {describe_state(entity)}"


def _read(entity: Entity, key: str) -> Any:
    state = entity.state
    if key == "motion":
        return describe_state(entity) if entity.device_class in ("motion", "occupancy") else None
    if key == "current_temperature" and entity.domain == "sensor":
        return state.get("state")
    if key == "current_humidity" and entity.domain == "sensor":
        return state.get("state") if entity.device_class == "humidity" else None
    return state.get(key)


def _fmt(value: Any, entity: Entity, key: str) -> str:
    unit = {"battery": "%", "volume": "%", "brightness": "%", "position": "%"}.get(key, "")
    if key.endswith("humidity"):
        unit = "%"
    if entity.device_class == "power":
        unit = " W"
    return f"{value}{unit}"


def describe_state(entity: Entity) -> str:
    """The state in words: binary sensors as open/closed, motion or not."""
    raw = entity.state.get("state")
    if entity.domain == "binary_sensor":
        on = raw in ("on", True)
        if entity.device_class in ("door", "window", "garage_door", "opening"):
            return "open" if on else "closed"
        if entity.device_class == "motion":
            return "detecting motion" if on else "not detecting motion"
    return str(raw if raw is not None else "unknown")


def group_answer(entities: list[Entity], command: str) -> str:
    """ "Are the doors locked?": each device of the kind the question's state word fits,
    with its state ("Front door lock is locked; Back door lock is unlocked")."""
    tw = cues.words(command)
    wanted = [d for words, d in _STATE_DOMAINS if any(w in tw for w in words)]
    chosen = [e for e in entities if not wanted or e.domain in wanted[0]] or entities
    key = read_key(command)
    if key:
        return "; ".join(
            f"{e.name} {key.replace('_', ' ')} is {_fmt(_read(e, key), e, key)}"
            for e in chosen
            if _read(e, key) is not None
        ) or "; ".join(f"{e.name} is {describe_state(e)}" for e in chosen)
    return "; ".join(f"{e.name} is {describe_state(e)}" for e in chosen)


_STATE_DOMAINS: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (("locked", "unlocked"), ("lock",)),
    (("open", "closed", "shut"), ("cover", "binary_sensor")),
    (("on", "off"), ("light", "switch", "fan", "climate", "humidifier")),
)
