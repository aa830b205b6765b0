"""Language data and slot lists for the local matcher.

Loads the `home-assistant-intents` sentence data for a language (parsed once per process
and shared by every matcher of that language), and builds hassil slot lists (entity
names and aliases, areas, floors) from the live registry the way Home Assistant's
default conversation agent does.
"""

from __future__ import annotations

import copy
import logging
import threading
from dataclasses import dataclass
from typing import Any

import home_assistant_intents
from hassil import Intents, RecognizeResult, SlotList, TextSlotList
from hassil.util import merge_dict

from hubagent.home.registry import Registry

log = logging.getLogger(__name__)

# Common codes that the intents package spells differently (BCP 47 script subtags, the
# bare `zh`); everything else is matched case-insensitively with `_` read as `-`.
_LANGUAGE_ALIASES = {
    "zh": "zh-CN",
    "zh-hans": "zh-CN",
    "zh-hans-cn": "zh-CN",
    "zh-sg": "zh-CN",
    "zh-hant": "zh-TW",
    "zh-hant-tw": "zh-TW",
    "zh-hant-hk": "zh-HK",
    "pt-pt": "pt",
    "nb-no": "nb",
    "no": "nb",
}

# Entity attributes Home Assistant exposes to hassil's requires/excludes_context checks.
_CONTEXT_ATTRIBUTES = ("device_class",)


class UnknownLanguageError(ValueError):
    """The intents package has no sentences for the requested language."""


@dataclass(frozen=True)
class LanguageData:
    """Parsed sentences, expansion rules, lists, skip words and responses of a language."""

    code: str  # the package's own code, e.g. "en", "zh-CN"
    intents: Intents
    responses: dict[str, dict[str, str]]  # intent -> response key -> Jinja2 template
    errors: dict[str, str]  # error key -> template


_CACHE: dict[str, LanguageData] = {}
_CACHE_LOCK = threading.Lock()
# Sentences other parts of the hub add to a language (intents-package format), merged in
# when the language is loaded: the assistant's "what's on my shopping list".
_EXTRA: dict[str, list[dict[str, Any]]] = {}


def add_sentences(language: str, data: dict[str, Any]) -> None:
    """Add sentences (`{"intents": {name: {"data": [...]}}}`) to a language's templates."""
    code = resolve_language(language)
    with _CACHE_LOCK:
        _EXTRA.setdefault(code, []).append(data)
        _CACHE.pop(code, None)  # parsed again, with them, by the next matcher


def resolve_language(language: str) -> str:
    """The intents package's code for `language` (`zh-hans` -> `zh-CN`, `EN_us` -> `en`)."""
    known = home_assistant_intents.get_languages()
    by_lower = {code.lower(): code for code in known}
    key = language.strip().replace("_", "-").lower()
    key = _LANGUAGE_ALIASES.get(key, key)
    if key.lower() in by_lower:
        return by_lower[key.lower()]
    base = key.split("-", 1)[0]
    if base in by_lower:
        return by_lower[base]
    raise UnknownLanguageError(
        f"no intent sentences for language {language!r}; known: {', '.join(sorted(known))}"
    )


def load_language(language: str) -> LanguageData:
    """Parse (once per process) the intents package data for `language`."""
    code = resolve_language(language)
    with _CACHE_LOCK:
        cached = _CACHE.get(code)
        if cached is not None:
            return cached
        data = home_assistant_intents.get_intents(code)
        if not data:
            raise UnknownLanguageError(f"the intents package has no data for {code!r}")
        if _EXTRA.get(code):
            data = copy.deepcopy(data)  # the package may hand out its own cached dict
            for extra in _EXTRA[code]:
                merge_dict(data, copy.deepcopy(extra))
        responses = data.get("responses") or {}
        loaded = LanguageData(
            code=code,
            intents=Intents.from_dict(data),
            responses=dict(responses.get("intents") or {}),
            errors=dict(responses.get("errors") or {}),
        )
        _CACHE[code] = loaded
        return loaded


def build_slot_lists(registry: Registry) -> dict[str, SlotList]:
    """hassil slot lists `name`, `area` and `floor` from the registry.

    Entity names and aliases keep the spoken form as the value (Home Assistant's
    semantics: the target resolver accepts a name or an alias) and carry the entity's
    domain and device class as context, so a sentence that requires `domain: light`
    only matches lights. Area and floor aliases map to the canonical name.
    """
    names: list[tuple[str, Any, dict[str, Any], dict[str, Any]]] = []
    for entity in registry.all():
        context: dict[str, Any] = {"domain": entity.domain}
        for attr in _CONTEXT_ATTRIBUTES:
            value = getattr(entity, attr, None)
            if value:
                context[attr] = value
        meta = {"entity_id": entity.entity_id}
        for spoken in dict.fromkeys((entity.name, *entity.aliases)):
            if spoken and spoken.strip():
                names.append((spoken.strip(), spoken.strip(), context, meta))

    areas = [
        (spoken.strip(), area.name)
        for area in registry.areas
        for spoken in dict.fromkeys((area.name, *area.aliases))
        if spoken and spoken.strip()
    ]
    floors = [
        (spoken.strip(), floor.name)
        for floor in registry.floors
        for spoken in dict.fromkeys((floor.name, *floor.aliases))
        if spoken and spoken.strip()
    ]
    # allow_template=False: names such as "Lamp (left)" are literal text, not templates.
    return {
        "name": TextSlotList.from_tuples(names, allow_template=False, name="name"),
        "area": TextSlotList.from_tuples(areas, allow_template=False, name="area"),
        "floor": TextSlotList.from_tuples(floors, allow_template=False, name="floor"),
    }


def result_slots(result: RecognizeResult, context_area: str | None) -> dict[str, Any]:
    """Slot values of a hassil result, the way Home Assistant's intent tests write them.

    The area that hassil copied from the request's context (no spoken text) is left
    out: it is the satellite's area, which the caller already knows.
    """
    slots: dict[str, Any] = {}
    for name, entity in result.entities.items():
        if name == "area" and area_from_context(result, context_area):
            continue
        slots[name] = _plain(entity.value)
    return slots


def area_from_context(result: RecognizeResult, context_area: str | None) -> bool:
    """True when the sentence's `area` slot was copied from the request's area.

    Such sentences ("turn on the lights") are about that area only; others ("pause")
    merely prefer it.
    """
    entity = result.entities.get("area")
    return (
        entity is not None
        and context_area is not None
        and not entity.text
        and entity.value == context_area
    )


def _plain(value: Any) -> Any:
    """JSON-friendly slot value: sets and tuples become lists, whole floats become ints."""
    if isinstance(value, (set, frozenset, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value
