"""The LLM path: split a request into steps, let the local model pick entity + verb per step
under a registry-built JSON schema, then check the pick against the registry and compute
values from the command text and the current state.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field

from hubagent.home.registry import Registry
from hubagent.types import VERB_CAPABILITY, Action, Entity, Step, Understanding
from hubagent.understand import cues, values, wording
from hubagent.understand.cleaning import clean_area_step
from hubagent.understand.prompt import build_prefix, build_prompt
from hubagent.understand.runtime import Completion, Runtime
from hubagent.understand.schema import parse_step, step_grammar, step_schema
from hubagent.understand.split import split_steps
from hubagent.understand.whole_room import whole_room_step

log = logging.getLogger(__name__)

ATTRIBUTE_VERB = {a: v for v, a in VERB_CAPABILITY.items()}
_ARG_NAME = {"set_color": "color", "select_option": "option", "set_value": "value"}


@dataclass
class LlmStats:
    """Token accounting over the life of an understander (for eval and metrics)."""

    steps: int = 0
    calls: int = 0
    prompt_tokens: int = 0
    generated_tokens: int = 0
    cached_tokens: int = 0
    ms: list[float] = field(default_factory=list)

    def add(self, c: Completion) -> None:
        self.calls += 1
        self.prompt_tokens += c.prompt_tokens
        self.generated_tokens += c.generated_tokens
        self.cached_tokens += c.cached_tokens
        self.ms.append(c.ms)


class LlmUnderstander:
    """Understands requests with a local LLM constrained by the registry."""

    def __init__(
        self,
        registry: Registry,
        runtime: Runtime | None,
        language: str = "en",
        *,
        always_ask: bool = False,
    ) -> None:
        """`always_ask` sends every step to the model even when the wording decides it."""
        self.registry = registry
        self.always_ask = always_ask
        self.runtime = runtime
        self.language = language
        self.stats = LlmStats()
        self._prefix = ""
        self._version = -1

    def _prompt_prefix(self) -> str:
        if self._version != self.registry.version:
            self._prefix = build_prefix(self.registry)
            self._version = self.registry.version
        return self._prefix

    def warm(self) -> bool:
        """Evaluate the stable prompt prefix into the runtime's prompt cache ahead of the
        first request (hub start, registry changes); False without a runtime that can."""
        warm = getattr(self.runtime, "warm", None)
        if warm is None:
            return False
        return warm(build_prompt(self._prompt_prefix(), "")) is not None

    def understand(
        self, text: str, area: str | None = None, only: frozenset[str] | None = None
    ) -> Understanding:
        """Steps with Actions or a precise error for each command in `text`; with `only`,
        among those entities alone (the answer to "which one?")."""
        t0 = time.perf_counter()
        calls_before = self.stats.calls
        steps: list[Step] = []
        answers: list[str] = []
        commands = split_steps(text)
        rooms = [cues.mentioned_areas(self.registry, c) for c in commands]
        previous: Entity | None = None
        for i, command in enumerate(commands):
            self.stats.steps += 1
            try:
                here = _shared_room(rooms, i) or area
                step, answer = self._step(command, here, previous, only)
            except Exception as exc:  # noqa: BLE001 - one bad step never sinks the request
                log.warning("LLM step failed for %r: %s", command, exc)
                step, answer = Step(command, error="unknown_device", detail=str(exc)), None
            steps.append(step)
            if answer:
                answers.append(answer)
            acted = {a.entity for a in step.actions}
            previous = self.registry.get(acted.pop()) if len(acted) == 1 else None
        return Understanding(
            text=text,
            steps=steps,
            # "local" when the registry and the wording decided every step without the model.
            path="llm" if self.stats.calls > calls_before else "local",
            answer="; ".join(answers) or None,
            latency_ms=(time.perf_counter() - t0) * 1000,
        )

    # -- one command ---------------------------------------------------------------------
    def _candidates(self, command: str, area: str | None) -> list[Entity]:
        areas = cues.mentioned_areas(self.registry, command)
        if not areas and cues.unknown_area(self.registry, command):
            return []  # "the garage light" in a home without a garage
        named_area = bool(areas)
        if not areas and area:
            areas = [area]  # the satellite's own area when the command names none
        # Entities without an area (a robot vacuum) serve every room.
        pool = [e for e in self.registry.all() if not areas or e.area in areas or e.area is None]
        named = [e for e in pool if _named(e, self.registry, command)]
        if len(named) > 1:
            # The most precise name wins: "floor lamp" over every other lamp.
            lengths = {
                e.entity_id: cues.name_match_length(e, self.registry, command) for e in named
            }
            best = max(lengths.values())
            named = [e for e in named if lengths[e.entity_id] == best]
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

    def _step(
        self,
        command: str,
        area: str | None,
        previous: Entity | None = None,
        only: frozenset[str] | None = None,
    ) -> tuple[Step, str | None]:
        special = clean_area_step(self.registry, command, area) or whole_room_step(
            self.registry, command, area
        )
        if special is not None:
            return special, None
        candidates = self._candidates(command, area)
        if only is not None:
            # The answer to "which one?": among the devices it names, the request's own.
            candidates = [
                e for e in candidates or self._candidates(command, None) if e.entity_id in only
            ]
            candidates = candidates or [e for e in self.registry.all() if e.entity_id in only]
        if not candidates and previous is not None and _refers_back(command):
            candidates = [previous]  # "turn off the lamp and turn it on again"
        if not candidates:
            return Step(command, error="unknown_device", detail=self._why_none(command, area)), None
        places = {e.area for e in candidates if e.area}
        if len(places) > 1 and not cues.mentioned_areas(self.registry, command):
            # Same kind of device in several rooms and no room named: asking beats guessing.
            detail = cues.which_one(self.registry, candidates)
            return Step(command, error="unknown_device", detail=detail), None
        by_id = {e.entity_id: e for e in candidates}
        known = self.registry.attribute_names()
        # "the lights in the kitchen": every one of them, with one verb.
        plural = len(candidates) > 1 and cues.plural_of_all(command, candidates, self.registry)
        if plural:
            verbs = {wording.cue_verb(command, e, known) for e in candidates}
            if len(verbs) == 1 and (verb := verbs.pop()) not in (None, "get_state"):
                return self._act_on_all(command, candidates, verb, known), None
        sure = wording.cue_verb(command, candidates[0], known) if len(candidates) == 1 else None
        if sure is not None and not self.always_ask:
            # Registry and wording already decide entity and verb: no model call needed.
            text = json.dumps({"e": candidates[0].entity_id, "a": sure})
        elif self.runtime is None:  # no model: first named entity, verb by wording
            first = candidates[0]
            text = json.dumps(
                {"e": first.entity_id, "a": wording.cue_verb(command, first, known) or "set"}
            )
        else:
            text = self._ask(command, candidates)
        choice = parse_step(text, by_id)
        if choice.error or choice.entity is None:
            return Step(command, error=choice.error, detail=text), None
        entity = by_id[choice.entity]
        missing = cues.attribute_missing(entity, command, known)
        if missing:
            detail = f"{entity.name} has no {missing.replace('_', ' ')}"
            return Step(command, error="unknown_attribute", detail=detail), None
        # Unambiguous wording wins over the model's verb ("turn on" is turn_on).
        verb = wording.cue_verb(command, entity, known) or choice.verb or ""
        if verb == "get_state":
            return Step(command), wording.answer(entity, command, known)
        if plural:
            return self._act_on_all(command, candidates, verb, known), None
        return self._act(command, entity, verb, known), None

    def _act_on_all(
        self, command: str, entities: list[Entity], verb: str, known: AbstractSet[str]
    ) -> Step:
        """`verb` on every entity: all of their actions, or the first refusal."""
        steps = [self._act(command, e, verb, known) for e in entities]
        failed = next((s for s in steps if s.error), None)
        return failed or Step(command, [a for s in steps for a in s.actions])

    def _ask(self, command: str, candidates: list[Entity]) -> str:
        """The model's JSON step for one command over `candidates`."""
        assert self.runtime is not None
        questions = wording.is_question(command)  # a request is never answered with a state
        if getattr(self.runtime, "supports_grammar", False):
            start, grammar = step_grammar(candidates, questions)
            prompt = build_prompt(self._prompt_prefix(), command, start)
            completion = self.runtime.complete(prompt, None, 24, grammar=grammar)
            text = start + completion.text
        else:
            prompt = build_prompt(self._prompt_prefix(), command)
            completion = self.runtime.complete(prompt, step_schema(candidates, questions), 48)
            text = completion.text
        self.stats.add(completion)
        return text

    def _act(self, command: str, entity: Entity, verb: str, known: AbstractSet[str]) -> Step:
        named = [
            a for a in cues.mentioned_attributes(command, known, entity) if a in entity.attributes
        ]
        cue = values.read_value(command)
        attr = VERB_CAPABILITY.get(verb)
        if named and (attr not in named) and (verb == "set" or attr or wording.has_value(cue)):
            attr = named[0]  # the command names the attribute: trust the text
        elif verb == "set" and not attr:
            attr = named[0] if named else None
            if attr is None:
                options = {
                    a: spec["options"]
                    for a, spec in entity.attributes.items()
                    if spec.get("options")
                }
                attr = next(
                    (
                        a
                        for a, o in options.items()
                        if values.option_in_text(command, o) is not None
                    ),
                    None,
                ) or wording.primary_attribute(entity)
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
            return Step(command, error="out_of_range", detail=f"no value for {attr}")
        verb = ATTRIBUTE_VERB.get(attr, "set")
        if verb not in entity.verbs:
            verb = "set"
        if verb == "set":
            return Step(
                command, [Action(entity.entity_id, "set", {"attribute": attr, "value": value})]
            )
        return Step(command, [Action(entity.entity_id, verb, {_ARG_NAME.get(verb, attr): value})])


def _shared_room(rooms: list[list[str]], i: int) -> str | None:
    """The room a step that names none shares with its neighbours: the step before's, else
    the step after's ("turn on the humidifier and raise it by 2% in the guest bedroom")."""
    if rooms[i]:
        return None
    before = next((r for r in reversed(rooms[:i]) if r), None)
    after = next((r for r in rooms[i + 1 :] if r), None)
    shared = before or after
    return shared[0] if shared and len(shared) == 1 else None


def _refers_back(command: str) -> bool:
    """A step that names no device but points back at the last one ("turn it on again")."""
    return any(w in ("it", "its", "them", "again") for w in cues.words(command))


def _named(entity: Entity, registry: Registry, command: str) -> bool:
    return cues.grounded(entity, registry, command)
