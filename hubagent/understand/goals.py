"""Indirect requests: a goal said instead of a command ("I'm cold", "我好冷", "Mochi keeps
meowing at her empty bowl") and the kinds of device that serve it.

The per-language tables (`tables_en.GOALS`, `tables_zh.GOALS`) relate goal words to kinds of
device, a verb and a direction. They narrow the candidates before the model is asked, and
they are the check that a model's pick for a request that names no device is plausible:
a pick that serves none of the request's goals is not acted on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from hubagent.home.registry import Registry
from hubagent.types import Entity
from hubagent.understand import cues, tables_en, tables_zh


@dataclass(frozen=True)
class Goal:
    """One goal a request states: the kinds that serve it, the verb and the direction."""

    kinds: tuple[str, ...]
    verb: str
    direction: int


def goals_in(text: str) -> list[Goal]:
    """The goals `text` states, in table order (English words, Chinese substrings)."""
    found: list[Goal] = []
    if tables_zh.has_cjk(text):
        for triggers, kinds, verb, direction in tables_zh.GOALS:
            if any(_said(t, lambda w: _has_zh(text, w)) for t in triggers):
                found.append(Goal(kinds, verb, direction))
    if tables_en.NARRATIVE.search(text):
        return found  # "we watched a film last night": told, not wished for
    tw = cues.words(text)
    for triggers, kinds, verb, direction in tables_en.GOALS:
        if any(_said(t, lambda w: _has_en(tw, w)) for t in triggers):
            found.append(Goal(kinds, verb, direction))
    return found


def _has_en(tw: list[str], phrase: str) -> bool:
    """`phrase` is said; a lone temperature word only as a feeling (see `_feeling`)."""
    if phrase in tables_en.FEELING_WORDS:
        return any(w == phrase and _feeling(tw, i) for i, w in enumerate(tw))
    return cues.contains(tw, phrase)


def _feeling(tw: list[str], i: int) -> bool:
    """Is the temperature word at `tw[i]` how a person or a place feels ("I'm hot", "it's
    boiling in here", "the bedroom is freezing"), not a thing's ("hot water", "cold tea")?
    It needs a person or place subject, and no noun straight after it."""
    after = tw[i + 1] if i + 1 < len(tw) else None
    if after is not None and after not in tables_en.FEELING_FOLLOWERS:
        return False  # "hot water", "cold milk": said of a thing
    return bool(set(tw) & tables_en.FEELING_SUBJECTS) or "is" in tw[:i] or "are" in tw[:i]


def _has_zh(text: str, trigger: str) -> bool:
    """A Chinese trigger; 热/冷/凉 said of a thing (热水, 凉茶) is no feeling."""
    if trigger not in ("热", "冷", "凉"):
        return trigger in text
    return any(
        text[i] == trigger
        and (i + 1 >= len(text) or text[i + 1] not in tables_zh.THING_AFTER_TEMPERATURE)
        for i in range(len(text))
    )


def _said(trigger: str, has: Callable[[str], bool]) -> bool:
    """A trigger is a phrase, or "who+what" (each side "a|b"): every side must be said, so
    "dinner" is the cat's goal only with the cat ("give the cat her dinner"), never the
    cook's ("I'm making dinner")."""
    return all(any(has(alt) for alt in side.split("|")) for side in trigger.split("+"))


def kind_words(entity: Entity) -> set[str]:
    """What kind of device an entity is, in words: domain, class, name and aliases."""
    out = {entity.domain, *(cues.words(entity.device_class or ""))}
    for name in (entity.name, *entity.aliases):
        out.update(cues.words(name))
    return out


def serves(entity: Entity, goal: Goal) -> bool:
    """Is `entity` a kind of device that serves `goal`, and can it do the goal's verb?"""
    from hubagent.understand.wording import supported_verb

    mine = kind_words(entity)
    kind = any(set(cues.words(k)) <= mine or k == entity.domain for k in goal.kinds)
    return kind and supported_verb(entity, goal.verb) is not None


def goal_candidates(
    registry: Registry, goals: list[Goal], areas: list[str], strict: bool
) -> list[tuple[Entity, Goal]]:
    """(entity, goal) pairs in `areas` (the named room, or the request's own room, and
    devices without a room); with a room that was only the request's own (`strict` False),
    the whole home when nothing there serves the goal."""
    pool = [e for e in registry.all() if not areas or e.area in areas or e.area is None]
    found = [(e, g) for g in goals for e in pool if serves(e, g)]
    if found or strict or not areas:
        return _first_goal_with_devices(found)
    everywhere = [(e, g) for g in goals for e in registry.all() if serves(e, g)]
    return _first_goal_with_devices(everywhere)


def _first_goal_with_devices(pairs: list[tuple[Entity, Goal]]) -> list[tuple[Entity, Goal]]:
    """Goals are listed most specific first: keep every device of the goals found, once."""
    seen: set[str] = set()
    out = []
    for entity, goal in pairs:
        if entity.entity_id not in seen:
            seen.add(entity.entity_id)
            out.append((entity, goal))
    return out


def supported_by_goal(entity: Entity, text: str) -> Goal | None:
    """The goal of `text` that `entity` serves (the check on a model's indirect pick)."""
    return next((g for g in goals_in(text) if serves(entity, g)), None)


def undo_verb(text: str) -> str | None:
    """ "left his light on" asks for the opposite: turn_off; "still up" (a blind): close."""
    tw = cues.words(text)
    if "left" in tw and "on" in tw[tw.index("left") :]:
        return "turn_off"  # "left his light on (again)"
    for phrase, verb in tables_en.UNDO_STATE:
        if cues.contains(tw, phrase):
            return verb
    return None
