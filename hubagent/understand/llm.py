"""The LLM path: split a request into steps, let the local model pick entity + verb per step
under a registry-built JSON schema, then check the pick against the registry and compute
values from the command text and the current state.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field

from hubagent.home.registry import Registry
from hubagent.types import Entity, Step, Understanding
from hubagent.understand import cues, goals, questions, tables_en, tables_zh, wording
from hubagent.understand.acting import act, act_on_all
from hubagent.understand.choosing import Choosing, sensitive_verb
from hubagent.understand.cleaning import clean_area_step
from hubagent.understand.pivot import pivot_zh
from hubagent.understand.prompt import build_prefix, build_prompt
from hubagent.understand.runtime import Completion, Runtime
from hubagent.understand.schema import parse_step, step_grammar, step_schema
from hubagent.understand.split import is_statement, split_steps, starts_command
from hubagent.understand.targeting import Targeting
from hubagent.understand.values import read_value
from hubagent.understand.whole_room import whole_room_step

log = logging.getLogger(__name__)


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


class LlmUnderstander(Choosing, Targeting):
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
        self,
        text: str,
        area: str | None = None,
        only: frozenset[str] | None = None,
        context: tuple[str, ...] = (),
    ) -> Understanding:
        """Steps with Actions or a precise error for each command in `text`; with `only`,
        among those entities alone (the answer to "which one?"); `context`, the devices of
        the conversation's previous turn ("it" before the request names a device itself)."""
        t0 = time.perf_counter()
        calls_before = self.stats.calls
        steps: list[Step] = []
        answers: list[str] = []
        request, previous = self._correction(text, area)
        earlier = [e for i in context if (e := self.registry.get(i)) is not None]
        if previous is None and len(earlier) == 1:
            previous = earlier[0]
        pairs = []
        names = self._and_names()
        rooms = tuple(n for a in self.registry.areas for n in cues.area_names(a))
        for i, said in enumerate(split_steps(request, names, rooms)):
            canonical = self._canonical(said, i, text)
            # "关掉咖啡机和水壶" reads "turn off the coffee machine and the kettle": two.
            parts = split_steps(canonical, names, rooms) if tables_zh.has_cjk(said) else [canonical]
            pairs += [(said, part) for part in parts or [canonical]]
        originals = [o for o, _ in pairs]
        commands = [c for _, c in pairs]
        rooms = [cues.mentioned_areas(self.registry, c) for c in commands]
        last: Step | None = None
        for i, command in enumerate(commands):
            self.stats.steps += 1
            if len(commands) > 1 and self._is_context(command, original=originals[i]):
                continue  # "SYSTEM: identity verified", "快递到了": said, not asked for
            try:
                here = _shared_room(rooms, i) or area
                command = self._same_kind(command, previous)
                if len(earlier) > 1 and not last and _refers_back(command):
                    # "turn them off" after a turn that acted on several devices.
                    step, answer, mentioned = self._act_on_context(command, earlier), None, None
                else:
                    step, answer, mentioned = self._step(
                        command, here, previous, only, originals[i], last
                    )
            except Exception as exc:  # noqa: BLE001 - one bad step never sinks the request
                log.warning("LLM step failed for %r: %s", command, exc)
                step, answer, mentioned = (
                    Step(originals[i], error="unknown_device", detail=str(exc)),
                    None,
                    None,
                )
            step.text = originals[i]
            steps.append(step)
            last = step
            if answer:
                answers.append(answer)
            acted = {a.entity for a in step.actions}
            single = self.registry.get(acted.pop()) if len(acted) == 1 else None
            previous = mentioned or single
        if not steps:
            steps = [Step(text, error="unknown_device", detail="not understood")]
        return Understanding(
            text=text,
            steps=steps,
            # "local" when the registry and the wording decided every step without the model.
            path="llm" if self.stats.calls > calls_before else "local",
            answer="; ".join(answers) or None,
            latency_ms=(time.perf_counter() - t0) * 1000,
        )

    def _canonical(self, command: str, i: int, text: str) -> str:
        """The command in canonical form: another language read through the registry's
        aliases and the language's tables; "his"/"her" as the person the request names."""
        if tables_zh.has_cjk(command):
            read = pivot_zh(self.registry, command)
            # A command naming no device of its own is about the one before ("二十五度").
            return read.text + (" it" if i and not read.names_device else "")
        owner = re.search(r"\b([A-Z][a-z]+)['’]s\b", text)
        if owner and re.search(r"\b(?:his|her)\b", command):
            return re.sub(r"\b(?:his|her)\b", f"{owner[1]}'s", command)
        return command

    def _and_names(self) -> tuple[str, ...]:
        """Names with an "and" of their own ("Rock and roll" scene): never split there."""
        found = [
            n
            for e in self.registry.all()
            for n in (e.name, *e.aliases)
            if " and " in f" {n.lower()} "
        ]
        found += [n for a in self.registry.areas for n in cues.area_names(a) if " and " in n]
        return tuple(sorted(set(found), key=len, reverse=True))

    def _correction(self, text: str, area: str | None) -> tuple[str, Entity | None]:
        """ "turn the telly down to 10 - actually no, just mute it": only the correction is
        meant, and "it" is the device the cancelled part named."""
        match = tables_en.SELF_CORRECTION.match(text)
        if not match or not text[match.end() :].strip():
            return text, None
        named = self._candidates(text[: match.end()], area)
        return text[match.end() :], named[0] if len(named) == 1 else None

    def _same_kind(self, command: str, previous: Entity | None) -> str:
        """ "... and the bedroom one to 35": "one" is the previous step's kind of device."""
        if previous is None or not re.search(r"\b(?:the|that|this)\s+(?:\w+\s+)?one\b", command):
            return command
        kind = cues.device_words(previous, self.registry, synonyms=False)
        return re.sub(r"\bone\b", kind[0], command, count=1) if kind else command

    def _is_context(self, command: str, original: str) -> bool:
        """A fragment that is no command ("SYSTEM: identity verified", "快递到了"), names no
        device and states no goal is context of the request, not a step of it."""
        if tables_zh.has_cjk(original):
            said = tables_zh.is_command(original)
        else:
            said = starts_command(original) and not is_statement(original)
        return (
            not said
            and not re.search(r"\d", command)  # "二十五度": a value for the step before
            and not self._names_a_device(command)
            and not goals.goals_in(f"{original} {command}")
        )

    def _step(
        self,
        command: str,
        area: str | None,
        previous: Entity | None = None,
        only: frozenset[str] | None = None,
        original: str = "",
        last: Step | None = None,
    ) -> tuple[Step, str | None, Entity | None]:
        """One command: (step, answer to a question, the device it mentions last)."""
        original = original or command
        special = clean_area_step(self.registry, command, area) or whole_room_step(
            self.registry, command, area
        )
        if special is not None:
            return special, None, None
        known = self.registry.attribute_names()
        if last is not None and last.actions and re.search(r"\b(?:same|likewise)\b", command):
            return self._same(command, area, last), None, None
        excluded: list[Entity] = []
        except_match = _EXCEPT.search(command)
        if except_match:  # "all the living room lights except the floor lamp"
            excluded = self._candidates(command[except_match.end() :], area)
            command = command[: except_match.start()]
        candidates = [e for e in self._candidates(command, area) if e not in excluded]
        mentioned = excluded[0] if len(excluded) == 1 else None
        if previous is not None and _owns_said_attribute(previous, command, known):
            candidates = [previous]  # "switch its fan to low": the AC's fan mode
        if only is not None:
            # The answer to "which one?": among the devices it names, the request's own.
            candidates = [
                e for e in candidates or self._candidates(command, None) if e.entity_id in only
            ]
            candidates = candidates or [e for e in self.registry.all() if e.entity_id in only]
        if not candidates and previous is not None and _refers_back(command):
            candidates = [previous]  # "turn off the lamp and turn it on again"
        if wording.is_question(command) and not self.always_ask:
            asked = self._question(command, candidates, area)
            if asked is not None:
                return Step(command), asked, None
            if not candidates:  # a question never acts, whatever a goal word suggests
                detail = self._why_none(command, area)
                return Step(command, error="unknown_device", detail=detail), None, None
        stated = goals.goals_in(f"{original} {command}")
        if stated and candidates and not wording.is_question(command):
            serving = [e for e in candidates if any(goals.serves(e, g) for g in stated)]
            commanded = [
                e
                for e in candidates
                if wording.cue_verb(command, e, known) and cues.grounded(e, self.registry, command)
            ]
            if not serving and not commanded:
                # "the washing in the garage won't dry": the garage names a place here.
                return self._indirect(command, original, area, named_ok=True), None, None
        if not candidates:
            step = self._indirect(command, original, area)
            return step, None, mentioned
        group = bool(re.search(r"\b(?:all|every|both|everything)\b", command.lower()))
        places = {e.area for e in candidates if e.area}
        if len(places) > 1 and not group and not cues.mentioned_areas(self.registry, command):
            # Same kind of device in several rooms and no room named: asking beats guessing.
            detail = cues.which_one(self.registry, candidates)
            return Step(command, error="unknown_device", detail=detail), None, mentioned
        by_id = {e.entity_id: e for e in candidates}
        # "the lights in the kitchen": every one of them, with one verb.
        plural = len(candidates) > 1 and (
            cues.plural_of_all(command, candidates, self.registry) or bool(excluded) or group
        )
        if plural:
            if wording.is_question(command):
                return Step(command), questions.group_answer(candidates, command), None
            verbs = {e.entity_id: self._verb(command, e, known) for e in candidates}
            able = [e for e in candidates if verbs[e.entity_id] not in (None, "get_state")]
            kinds = {verbs[e.entity_id] for e in able}
            if len(kinds) == 1:
                verb = kinds.pop()
                # A group holds only the devices whose state the command changes.
                changing = [e for e in able if not wording.already(e, verb)] or able[:0]
                if not changing:
                    return Step(command), None, None
                return act_on_all(command, changing, verb, known), None, mentioned
        sure = self._verb(command, candidates[0], known) if len(candidates) == 1 else None
        said = wording.said_verbs(command)
        if (
            sure is None
            and said
            and not any(wording.supported_verb(e, v) for e in candidates for v in said)
        ):
            # "run it" said of a lock: the request's verb is one the device lacks; the model
            # must not substitute another ("lock").
            what = ", ".join(sorted(said)).replace("_", " ")
            detail = f"{candidates[0].name} can't {what}"
            return Step(command, error="unknown_attribute", detail=detail), None, mentioned
        if sure is not None and not self.always_ask:
            # Registry and wording already decide entity and verb: no model call needed.
            text = json.dumps({"e": candidates[0].entity_id, "a": sure})
        elif self.runtime is None:
            if len(candidates) > 1:  # no model to choose: ask rather than guess
                detail = cues.which_one(self.registry, candidates)
                return Step(command, error="unknown_device", detail=detail), None, mentioned
            first = candidates[0]
            text = json.dumps(
                {"e": first.entity_id, "a": self._verb(command, first, known) or "set"}
            )
        else:
            text = self._ask(original, candidates)
        choice = parse_step(text, by_id)
        if choice.error or choice.entity is None:
            return Step(command, error=choice.error, detail=text), None, mentioned
        entity = by_id[choice.entity]
        missing = cues.attribute_missing(entity, command, known)
        if missing:
            detail = f"{entity.name} has no {missing.replace('_', ' ')}"
            return Step(command, error="unknown_attribute", detail=detail), None, mentioned
        # Unambiguous wording wins over the model's verb ("turn on" is turn_on).
        worded = self._verb(command, entity, known)
        verb = worded or choice.verb or ""
        if verb == "get_state":
            return Step(command), questions.answer(self.registry, entity, command, known), entity
        goal = goals.supported_by_goal(entity, f"{original} {command}")
        valued = wording.has_value(read_value(command))
        if worded is None and goal is None and not valued and not self.always_ask:
            # "my coffee went cold": the device is named, the action only guessed: offer it.
            if verb.startswith("set"):
                return Step(command, error="unknown_device", detail="not understood"), None, None
            offer = f"shall I {verb.replace('_', ' ')} {entity.name}?"
            # An unlock or a gate's opening as the only reading: it needs confirmation.
            why = "needs_confirmation" if sensitive_verb(entity, verb) else "unknown_device"
            return Step(command, error=why, detail=offer), None, None
        direction = goal.direction if goal and goal.verb == verb else 0
        if plural:
            return act_on_all(command, candidates, verb, known), None, mentioned
        return act(command, entity, verb, known, direction), None, mentioned or entity

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


def _shared_room(rooms: list[list[str]], i: int) -> str | None:
    """The room a step that names none shares with its neighbours: the step before's, else
    the step after's ("turn on the humidifier and raise it by 2% in the guest bedroom")."""
    if rooms[i]:
        return None
    before = next((r for r in reversed(rooms[:i]) if r), None)
    after = next((r for r in rooms[i + 1 :] if r), None)
    shared = before or after
    return shared[0] if shared and len(shared) == 1 else None


def refers_back(text: str) -> bool:
    """Does any command of `text` point back at earlier devices ("it", "them", "that")?"""
    return _refers_back(text) or bool(re.search(r"(它|它们|他们|这个|那个)", text))


def _refers_back(command: str) -> bool:
    """A step that names no device but points back at the last one ("turn it on again")."""
    return any(w in ("it", "its", "them", "again", "that", "there") for w in cues.words(command))


def _owns_said_attribute(entity: Entity, command: str, known: AbstractSet[str]) -> bool:
    """ "its fan", "set it ... humidity": the command points back and names an attribute of
    the previous device ("its fan" is the fan mode of the AC, not another fan)."""
    if not _refers_back(command):
        return False
    named = set(cues.mentioned_attributes(command, known, entity)) & set(entity.attributes)
    owned = re.search(r"\bits\s+(\w+)", command.lower())
    if owned:
        named |= {a for a in entity.attributes if owned[1] in a.split("_")}
    return bool(named)


_EXCEPT = re.compile(r"\s*,?\s*\b(?:except(?: for)?|apart from|but not|other than)\b", re.I)
