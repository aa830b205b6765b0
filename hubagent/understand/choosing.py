"""Choosing what a command is about when its words alone do not decide: a stated goal
("I'm cold"), wording no table knows (the model chooses, its pick acted on only when the
words support it), a state question, "do the same with ...", and the devices of the
conversation's previous turn ("turn them off")."""

from __future__ import annotations

from collections.abc import Set as AbstractSet

from hubagent.home.registry import Registry
from hubagent.types import Action, Entity, Step
from hubagent.understand import cues, goals, questions, wording
from hubagent.understand.acting import act, act_on_all
from hubagent.understand.runtime import Runtime
from hubagent.understand.schema import parse_step


class Choosing:
    """Mixed into the understander, whose registry, runtime, `_ask` and targeting
    (`_candidates`, `_names_a_device`, `_why_none`) it uses."""

    registry: Registry
    runtime: Runtime | None

    def _act_on_context(self, command: str, entities: list[Entity]) -> Step:
        """A command about the previous turn's devices, each one that can do its verb."""
        known = self.registry.attribute_names()
        verbs = {e.entity_id: self._verb(command, e, known) for e in entities}
        able = [e for e in entities if verbs[e.entity_id] not in (None, "get_state")]
        kinds = {verbs[e.entity_id] for e in able}
        if len(kinds) != 1:
            return Step(
                command, error="unknown_device", detail=cues.which_one(self.registry, entities)
            )
        return act_on_all(command, able, kinds.pop(), known)

    def _question(self, command: str, candidates: list[Entity], area: str | None) -> str | None:
        """A state question answered from the registry: the devices named, narrowed to
        those holding the value asked about (else that value in the named room) and to
        the kind the state word fits; one device -> its value, several -> each one's."""
        key = questions.read_key(command)
        pool = candidates
        if key:
            holding = [e for e in pool if questions.can_read(e, key)]
            if not holding:
                rooms = cues.mentioned_areas(self.registry, command) or ([area] if area else [])
                holding = [
                    e
                    for e in self.registry.all()
                    if rooms and e.area in rooms and questions.can_read(e, key)
                ]
            pool = holding or pool
        fitting = questions.by_state_words(pool, command)
        if pool and not fitting:
            # "Is the front door open?" named the lock; the door's contact shares its name.
            said = set(cues.words(command)) - _STOP
            near = [
                e
                for e in self.registry.all()
                if len(said & {w for n in (e.name, *e.aliases) for w in cues.words(n)}) >= 2
            ]
            fitting = questions.by_state_words(near, command)
        pool = fitting or pool
        if not pool:
            return None
        if len(pool) == 1:
            known = self.registry.attribute_names()
            return questions.answer(self.registry, pool[0], command, known)
        return questions.group_answer(pool, command)

    def _verb(self, command: str, entity: Entity, known: AbstractSet[str]) -> str | None:
        """The verb the wording makes certain; else the one a stated goal or a complaint
        about the state asks for ("I can barely hear the telly", "left his light on")."""
        verb = wording.cue_verb(command, entity, known)
        if verb is not None and verb != "set":
            return verb
        undo = goals.undo_verb(command)
        if undo and (found := wording.supported_verb(entity, undo)):
            return found
        goal = goals.supported_by_goal(entity, command)
        if verb is None and goal is not None:
            return wording.supported_verb(entity, goal.verb)
        return verb

    def _same(self, command: str, area: str | None, last: Step) -> Step:
        """ "do the same with Kai's": the last step's action on the device this one names."""
        said = set(cues.words(command)) - cues.GENERIC_WORDS - {"do", "same", "with", "for"}
        pool = [
            e
            for e in self.registry.all()
            if said & {w for n in (e.name, *e.aliases) for w in cues.words(n)}
        ] or self._candidates(command, area)
        done = last.actions[0]
        fits = [
            e
            for e in pool
            if e.entity_id != done.entity
            and done.action in e.verbs
            and all(k in e.attributes or k in ("attribute", "value") for k in done.args)
        ]
        if len(fits) != 1:
            detail = cues.which_one(self.registry, fits) if fits else "no such device here"
            return Step(command, error="unknown_device", detail=detail)
        return Step(command, [Action(fits[0].entity_id, done.action, dict(done.args))])

    def _indirect(
        self, command: str, original: str, area: str | None, named_ok: bool = False
    ) -> Step:
        """A command naming no device: a stated goal ("I'm cold") narrows the kinds of device;
        one fits -> done, several -> the model chooses among them. Wording nothing here
        knows goes to the model too, and its pick is acted on only when the words support
        it; otherwise the hub asks."""
        named_device = self._names_a_device(command) and not named_ok
        if named_device or cues.unknown_area(self.registry, command):
            return Step(command, error="unknown_device", detail=self._why_none(command, area))
        named = cues.mentioned_areas(self.registry, command)
        stated = goals.goals_in(f"{original} {command}")
        pairs = goals.goal_candidates(
            self.registry, stated, named or ([area] if area else []), strict=bool(named)
        )
        known = self.registry.attribute_names()
        if len(pairs) == 1:
            entity, goal = pairs[0]
        elif pairs and self.runtime is not None:
            by_id = {e.entity_id: (e, g) for e, g in pairs}
            choice = parse_step(
                self._ask(original, [e for e, _ in pairs]), {k: v[0] for k, v in by_id.items()}
            )
            if choice.entity is None:
                return Step(
                    command,
                    error="unknown_device",
                    detail=cues.which_one(self.registry, [e for e, _ in pairs]),
                )
            entity, goal = by_id[choice.entity]
        elif pairs:
            return Step(
                command,
                error="unknown_device",
                detail=cues.which_one(self.registry, [e for e, _ in pairs]),
            )
        else:
            return self._unknown_wording(command, original, area)
        verb = wording.supported_verb(entity, goal.verb) or goal.verb
        return act(command, entity, verb, known, goal.direction)

    def _unknown_wording(self, command: str, original: str, area: str | None) -> Step:
        """Wording no table knows: the model is asked over the request's room (or the home);
        its pick is acted on only when the request names that device, else the hub asks."""
        if self.runtime is None:
            return Step(command, error="unknown_device", detail=self._why_none(command, area))
        pool = [e for e in self.registry.all() if not area or e.area in (area, None)]
        pool = pool or self.registry.all()
        by_id = {e.entity_id: e for e in pool}
        choice = parse_step(self._ask(original, pool), by_id)
        if choice.entity is None or choice.verb is None:
            return Step(command, error="unknown_device", detail=self._why_none(command, area))
        entity = by_id[choice.entity]
        if cues.grounded(entity, self.registry, command):
            return act(command, entity, choice.verb, self.registry.attribute_names())
        if choice.verb.startswith("set") or choice.verb == "get_state":
            # A value the request never gave is no offer worth making.
            return Step(command, error="unknown_device", detail=self._why_none(command, area))
        picked = wording.supported_verb(entity, choice.verb) or choice.verb
        said = {wording.supported_verb(entity, v) for v in wording.said_verbs(command)} - {None}
        if said and picked not in said:
            # The words name a verb ("get it cleaning": start): the model's other verb is
            # never offered; the words' own verb is, when it is one.
            if len(said) != 1:
                return Step(command, error="unknown_device", detail=self._why_none(command, area))
            picked = next(iter(said))
        offer = f"shall I {picked.replace('_', ' ')} {entity.name}?"
        if sensitive_verb(entity, picked):
            # The only reading is an unlock or opening a gate: that is what is asked about.
            return Step(command, error="needs_confirmation", detail=offer)
        return Step(command, error="unknown_device", detail=offer)


def sensitive_verb(entity: Entity, verb: str) -> bool:
    """Unlocking, or opening a garage door or gate (the policy's defaults): asked, not done."""
    if entity.domain == "lock":
        return verb in ("unlock", "open")
    return entity.domain == "cover" and entity.device_class in ("garage", "gate") and verb == "open"


_STOP = frozenset(
    {"is", "are", "the", "a", "an", "or", "and", "it", "what", "how", "open", "closed"}
)
