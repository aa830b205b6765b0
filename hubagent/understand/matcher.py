"""The local fast path: hassil + home-assistant-intents sentences over the live registry.

`LocalMatcher.match(text, area)` recognises a sentence with the intents package's
templates for the configured language, resolves the targets on the registry with Home
Assistant's semantics and maps each target to an Action. It returns None when no
sentence matched (the cascade then asks the LLM).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from hassil import SlotList, recognize_best

from hubagent import language
from hubagent.act.intent_map import intent_to_action
from hubagent.home.registry import Registry
from hubagent.language import served_languages
from hubagent.types import Action, Entity, Step, Understanding
from hubagent.understand.answers import render_answer, split_by_state
from hubagent.understand.slots import (
    LanguageData,
    area_from_context,
    build_slot_lists,
    load_language,
    result_slots,
)
from hubagent.understand.targets import find_area, resolve_targets

log = logging.getLogger(__name__)

# Questions answered from the registry's state; they publish nothing.
QUERY_INTENTS = frozenset({"HassGetState", "HassClimateGetTemperature"})
# Intents answered without any device.
_NO_DEVICE_INTENTS = frozenset(
    {"HassGetCurrentTime", "HassGetCurrentDate", "HassNevermind", "HassRespond"}
)
# Intents the hub cannot carry out locally (timers, lists, weather, broadcast, media
# search): recognised, but match() hands them to the next path of the cascade.
UNSUPPORTED_INTENTS = frozenset(
    {
        "HassStartTimer",
        "HassCancelTimer",
        "HassCancelAllTimers",
        "HassIncreaseTimer",
        "HassDecreaseTimer",
        "HassPauseTimer",
        "HassUnpauseTimer",
        "HassTimerStatus",
        "HassListAddItem",
        "HassListCompleteItem",
        "HassListRemoveItem",
        "HassShoppingListAddItem",
        "HassShoppingListCompleteItem",
        "HassGetWeather",
        "HassBroadcast",
        "HassMediaSearchAndPlay",
    }
)
# What a refusal says when the devices exist but lack the feature.
_CANNOT = {"HassVacuumCleanArea": "clean a single room"}
# Recognitions remembered per (sentence, area) until the registry's names change: people
# repeat their commands, and hassil takes several ms per sentence (HA's default agent keeps
# such a cache too).
_RECOGNIZED_MEMORY = 256
_WARM_SENTENCE = {"en": "turn on the light", "zh-CN": "打开灯"}


@dataclass
class Recognition:
    """What hassil made of a sentence: HA intent name, slots and response key."""

    name: str
    slots: dict[str, Any] = field(default_factory=dict)
    response: str | None = None
    context_area: str | None = None  # the request's area name given to hassil
    area_required: bool = False  # the sentence is about the request's area only


class LocalMatcher:
    """Sentence templates of one language over one registry; thread-safe."""

    def __init__(self, registry: Registry, language: str = "en", warm: bool = True) -> None:
        self.registry = registry
        self.data: LanguageData = load_language(language)  # UnknownLanguageError if none
        self.language = self.data.code
        # Intents the hub hands on anyway are not tried at all: about 15% less per sentence.
        self._intents = replace(
            self.data.intents,
            intents={
                name: intent
                for name, intent in self.data.intents.intents.items()
                if name not in UNSUPPORTED_INTENTS
            },
        )
        self._lock = threading.Lock()
        self._slot_lists: dict[str, SlotList] = {}
        self._version = -1
        self._recognized: OrderedDict[tuple[str, str | None], Recognition | None] = OrderedDict()
        if warm:
            self.warm()

    # -- slot lists --------------------------------------------------------------------
    def _lists(self) -> dict[str, SlotList]:
        """Slot lists for the current registry, rebuilt when its version moved."""
        version = self.registry.version
        if version != self._version:
            with self._lock:
                if version != self._version:
                    self._slot_lists = build_slot_lists(self.registry)
                    self._recognized.clear()  # names changed: old recognitions may be wrong
                    self._version = version
                    log.debug("slot lists rebuilt for registry version %d", version)
        return self._slot_lists

    def warm(self) -> None:
        """Build the slot lists and run one recognition so the first request is fast."""
        self._lists()
        sentence = _WARM_SENTENCE.get(self.language, "turn on the light")
        recognize_best(
            sentence,
            self._intents,
            slot_lists=self._lists(),
            intent_context={"area": "__warm__"},
            best_slot_name="name",
            language=self.language,
        )

    # -- recognition -------------------------------------------------------------------
    def _context_area(self, area: str | None) -> str | None:
        """The request's area as hassil's context value (the area's name when known)."""
        if not area:
            return None
        known = find_area(self.registry, area)
        return known.name if known is not None else area

    def recognize(self, text: str, area: str | None = None) -> Recognition | None:
        """HA intent name + slots for `text` spoken in `area`, or None when nothing matched."""
        if not isinstance(text, str) or not text.strip():
            return None
        context_area = self._context_area(area)
        slot_lists = self._lists()
        version = self._version
        key = (text.strip(), context_area)
        with self._lock:
            if key in self._recognized:
                self._recognized.move_to_end(key)
                found = self._recognized[key]
                return None if found is None else replace(found, slots=dict(found.slots))
        found = self._recognize(text, context_area, slot_lists)
        with self._lock:
            if self._version == version:  # not recognized against names since replaced
                self._recognized[key] = found
                if len(self._recognized) > _RECOGNIZED_MEMORY:
                    self._recognized.popitem(last=False)
        return None if found is None else replace(found, slots=dict(found.slots))

    def _recognize(
        self, text: str, context_area: str | None, slot_lists: dict[str, SlotList]
    ) -> Recognition | None:
        try:
            result = recognize_best(
                text.strip(),
                self._intents,
                slot_lists=slot_lists,
                intent_context={"area": context_area} if context_area else None,
                best_slot_name="name",
                language=self.language,
            )
        except Exception as exc:  # a bad sentence must never crash the hub
            log.warning("local matcher failed on %r: %s", text, exc)
            return None
        if result is None or result.intent is None:
            return None
        return Recognition(
            name=result.intent.name,
            slots=result_slots(result, context_area),
            response=result.response,
            context_area=context_area,
            area_required=area_from_context(result, context_area),
        )

    def match(self, text: str, area: str | None = None) -> Understanding | None:
        """Understand `text` (spoken in `area`) locally; None hands it to the next path."""
        start = time.perf_counter()
        found = self.recognize(text, area)
        if found is None or found.name in UNSUPPORTED_INTENTS:
            return None
        understanding = self.resolve(text, found, area)
        if understanding is not None:
            understanding.latency_ms = (time.perf_counter() - start) * 1000
        return understanding

    # -- resolution --------------------------------------------------------------------
    def resolve(self, text: str, found: Recognition, area: str | None) -> Understanding | None:
        """Targets, actions or an answer for a recognised intent."""
        intent = {"name": found.name, "slots": dict(found.slots)}
        done = Understanding(text=text, steps=[], path="local", intent=intent)
        if found.name in _NO_DEVICE_INTENTS:
            done.answer = self._render(found, [], [])
            return done

        targets = resolve_targets(
            self.registry, found.name, found.slots, area, area_required=found.area_required
        )
        if targets.error:
            done.steps = [Step(text=text, error=targets.error, detail=targets.detail)]
            return done

        if found.name in QUERY_INTENTS:
            matched, unmatched = split_by_state(targets.entities, found.slots.get("state"))
            done.answer = self._render(found, matched, unmatched)
            done.steps = [Step(text=text)]
            return done

        slots = dict(found.slots)
        if found.name == "HassVacuumCleanArea" and targets.area is not None:
            slots["area"] = targets.area.id
        actions = self._actions(targets.entities, found.name, slots)
        if not actions:
            # The devices exist but none has the feature the sentence asks for.
            names = ", ".join(e.name for e in targets.entities[:3])
            what = _CANNOT.get(found.name, f"do {found.name}")
            done.steps = [
                Step(text=text, error="unknown_attribute", detail=f"{names} cannot {what}")
            ]
            return done
        done.steps = [Step(text=text, actions=actions)]
        return done

    def _actions(self, entities: list[Entity], intent: str, slots: dict[str, Any]) -> list[Action]:
        actions = []
        for entity in entities:
            try:
                action = intent_to_action(entity, intent, slots)
            except Exception as exc:  # one odd entity must not sink the rest
                log.warning("no action for %s on %s: %s", intent, entity.entity_id, exc)
                continue
            if action is not None:
                actions.append(action)
        return actions

    def _render(self, found: Recognition, matched: list[Entity], unmatched: list[Entity]) -> str:
        responses = self.data.responses.get(found.name) or {}
        template = responses.get(found.response or "default") or responses.get("default")
        slots = dict(found.slots)
        if found.context_area and "area" not in slots:
            slots["area"] = found.context_area
        return render_answer(template, slots, matched, unmatched)


class LocalMatchers:
    """One LocalMatcher per served language over one registry, used like a LocalMatcher:
    `match`/`recognize`/`resolve` take the current request's language
    (`hubagent.language.current()`, set by the agent) and fall back to the first served one."""

    def __init__(self, registry: Registry, languages: Sequence[str], warm: bool = True) -> None:
        self.registry = registry
        self.languages = served_languages(languages)
        # Built at start: a language's sentences load in well under a second, and the first
        # request in it should be as fast as any other.
        self.by_language = {code: LocalMatcher(registry, code, warm) for code in self.languages}
        self.default = self.by_language[self.languages[0]]
        self.language = self.default.language
        self.data = self.default.data

    def for_language(self, code: str | None = None) -> LocalMatcher:
        """The matcher of `code` (default: the current request's language)."""
        return self.by_language.get(code or language.current(self.languages[0]), self.default)

    def warm(self) -> None:
        for matcher in self.by_language.values():
            matcher.warm()

    def recognize(self, text: str, area: str | None = None) -> Recognition | None:
        return self.for_language().recognize(text, area)

    def match(self, text: str, area: str | None = None) -> Understanding | None:
        return self.for_language().match(text, area)

    def resolve(self, text: str, found: Recognition, area: str | None) -> Understanding | None:
        return self.for_language().resolve(text, found, area)
