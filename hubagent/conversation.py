"""Conversations: a conversation id carries context so follow-ups work.

"turn on the living room lights" then "and the kitchen too" / "also in the bedroom" repeats
the last request for another area; "turn it off" / "dim them to 30%" applies a new verb to
the entities the last request acted on. Everything else goes to `Agent.handle` unchanged.

Context (last text, last actions, area) lives in `Store.set_context`, which encrypts it at
rest when the store has a key. Follow-ups older than `ttl_s` are ignored: "turn it off" ten
minutes later should not silently act on whatever was touched last.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from dataclasses import replace
from typing import Any

from hubagent import language as lang
from hubagent.agent import Agent, Reply
from hubagent.home.registry import normalize_name
from hubagent.store.db import Store
from hubagent.types import Action, Area
from hubagent.understand import cues

log = logging.getLogger(__name__)

# "and the kitchen too", "also in the bedroom", "what about the office?", "the hall as well"
_AREA_FOLLOWUP = re.compile(
    r"^(?:(?P<lead>and also|and|also|what about|how about)\s+)?(?:(?:in|for)\s+)?(?:the\s+)?"
    r"(?P<area>.+?)(?:\s+(?P<tail>too|as well|also))?$"
)
_PRONOUN = re.compile(r"\b(it|them|they|those|that|these)\b")
MAX_ID_LENGTH = 128


def valid_conversation_id(value: object) -> bool:
    """Ids clients may send back: printable, bounded (they become store keys)."""
    return isinstance(value, str) and 0 < len(value) <= MAX_ID_LENGTH and value.isprintable()


def _clean(text: str) -> str:
    return re.sub(r"[.!?,]+$", "", normalize_name(text)).strip()


class Conversations:
    """Follow-up aware front door to the agent, shared by HTTP, Wyoming and MQTT requests."""

    def __init__(self, store: Store | None, agent: Agent, ttl_s: float = 300.0) -> None:
        self.store = store
        self.agent = agent
        self.ttl_s = ttl_s

    def handle(
        self,
        text: str,
        conversation_id: str | None = None,
        *,
        requester: str | None = None,
        channel: str = "api",
        area: str | None = None,
        language: str | None = None,
    ) -> tuple[Reply, str]:
        """`_handle` in the request's language: the interface's tag, else the text's script;
        the follow-ups and questions of this turn are answered in it too."""
        token = lang.set_current(self.agent.request_language(language, text or ""))
        try:
            return self._handle(
                text, conversation_id, requester=requester, channel=channel, area=area
            )
        finally:
            lang.reset_current(token)

    def _handle(
        self,
        text: str,
        conversation_id: str | None = None,
        *,
        requester: str | None = None,
        channel: str = "api",
        area: str | None = None,
    ) -> tuple[Reply, str]:
        """Answer `text` within its conversation; returns the reply and the conversation id
        (a new one when none or an invalid one is given).

        Without a `requester`, the conversation is the requester, so a confirmation
        ("yes") counts only in the conversation that was asked.
        """
        if not valid_conversation_id(conversation_id):
            conversation_id = uuid.uuid4().hex  # the hub's ids are unguessable
        requester = requester or f"{channel}:{conversation_id}"
        context = self._context(conversation_id)
        reply = None
        if context:
            try:
                reply = self._follow_up(text, context, requester, channel, area)
            except Exception:  # noqa: BLE001 - a failed follow-up falls back to a fresh request
                log.exception("follow-up handling failed for %r", text)
        if reply is None:
            reply = self.agent.handle(text, requester=requester, channel=channel, area=area)
        if reply.actions:
            self._remember(conversation_id, text, reply.actions, area)
        elif (question := _which_one(reply)) is not None and self.store is not None:
            # Remember the question so "the desk lamp" / "the one in the office" answers it.
            data = {"text": text, "question": question, "area": area, "updated": time.time()}
            self.store.set_context(conversation_id, data)
        return reply, conversation_id

    # -- context --------------------------------------------------------------------------
    def _context(self, conversation_id: str) -> dict[str, Any] | None:
        if self.store is None:
            return None
        data = self.store.get_context(conversation_id)
        if not data or time.time() - float(data.get("updated", 0)) > self.ttl_s:
            return None
        return data

    def _remember(
        self, conversation_id: str, text: str, actions: list[Action], area: str | None
    ) -> None:
        if self.store is None:
            return
        data = {
            "text": text,
            "actions": [a.to_dict() for a in actions],
            "area": self._acted_area(actions) or area,
            "updated": time.time(),
        }
        self.store.set_context(conversation_id, data)

    def _acted_area(self, actions: list[Action]) -> str | None:
        """The one area every acted-on entity is in, if there is one."""
        areas = {getattr(self.agent.registry.get(a.entity), "area", None) for a in actions}
        return areas.pop() if len(areas) == 1 else None

    # -- follow-ups -----------------------------------------------------------------------
    def _follow_up(
        self,
        text: str,
        context: dict[str, Any],
        requester: str,
        channel: str,
        area: str | None,
    ) -> Reply | None:
        said = _clean(text)
        if context.get("question"):
            return self._answer_question(said, context, requester, channel)
        new_area = self._area_follow_up(said)
        if new_area is not None:
            return self._repeat_in_area(context, new_area, requester, channel)
        if _PRONOUN.search(said):
            return self._same_targets(text, said, context, requester, channel, area)
        return None

    def _answer_question(
        self, said: str, context: dict[str, Any], requester: str, channel: str
    ) -> Reply | None:
        """The last request again, about the choices of its "which one?" that `said` names
        (by device or by room); None when it names none of them (a new request)."""
        registry = self.agent.registry
        question = str(context["question"])
        rooms = cues.mentioned_areas(registry, said)
        offered = [e for e in registry.all() if e.name in question]
        named = [e for e in offered if cues.names_device(e, registry, said)]
        if len(named) > 1:  # "the desk lamp" names the Desk lamp, not every lamp offered
            best = max(cues.name_match_length(e, registry, said) for e in named)
            named = [e for e in named if cues.name_match_length(e, registry, said) == best]
        if rooms:
            named = [e for e in (named or offered) if e.area in rooms]
        if not named:
            return None
        only = frozenset(e.entity_id for e in named)
        return self.agent.handle(
            str(context["text"]), requester=requester, channel=channel, only=only
        )

    def _area_follow_up(self, said: str) -> Area | None:
        match = _AREA_FOLLOWUP.match(said)
        if not match or not (match.group("lead") or match.group("tail")):
            return None  # a bare "kitchen" is too ambiguous to treat as a follow-up
        return self.agent.registry.find_area(match.group("area"))

    def _repeat_in_area(
        self, context: dict[str, Any], new_area: Area, requester: str, channel: str
    ) -> Reply | None:
        """The last request again, with its area swapped for `new_area`."""
        registry = self.agent.registry
        last_text = str(context.get("text", ""))
        old = registry.area(context.get("area"))
        rewritten = None
        if old is not None:
            lowered = normalize_name(last_text)
            for name in sorted((old.name, *old.aliases, old.id), key=len, reverse=True):
                pattern = rf"\b{re.escape(normalize_name(name))}\b"
                if re.search(pattern, lowered):
                    rewritten = re.sub(pattern, normalize_name(new_area.name), lowered, count=1)
                    break
        if rewritten is not None:
            reply = self.agent.handle(rewritten, requester=requester, channel=channel)
        else:  # the area came from the request's context, not its words
            reply = self.agent.handle(
                last_text, requester=requester, channel=channel, area=new_area.id
            )
        if reply.actions or reply.needs_confirmation:
            return reply
        # Same verbs for the same kinds of device in the new area.
        actions = []
        for last in _actions(context):
            entity = registry.get(last.entity)
            if entity is None:
                continue
            for other in registry.in_area(new_area.id):
                same_kind = (other.domain, other.device_class) == (
                    entity.domain,
                    entity.device_class,
                )
                if same_kind and last.action in other.verbs:
                    actions.append(replace(last, entity=other.entity_id))
        if not actions:
            return reply
        return self.agent.execute(
            actions, requester=requester, channel=channel, text=f"{last_text} ({new_area.name})"
        )

    def _same_targets(
        self,
        text: str,
        said: str,
        context: dict[str, Any],
        requester: str,
        channel: str,
        area: str | None,
    ) -> Reply | None:
        """A request that points back ("turn it off", "dim them to 30%", "turn on the desk
        lamp and dim it"): understood whole, with the last turn's devices given as context.
        "it" means them only when the request names no device before it, so "turn on the
        desk lamp and dim it to 30%" dims the desk lamp, never the last turn's light."""
        context_ids = tuple(a.entity for a in _actions(context))
        if not context_ids:
            return None
        return self.agent.handle(
            text, requester=requester, channel=channel, area=area, context=context_ids
        )


def _which_one(reply: Reply) -> str | None:
    """The "which one? ..." question of a reply that asked one."""
    steps = reply.understanding.steps if reply.understanding else []
    if len(steps) == 1 and (steps[0].detail or "").startswith("which one? "):
        return steps[0].detail
    return None


def _actions(context: dict[str, Any]) -> list[Action]:
    out = []
    for raw in context.get("actions") or []:
        try:
            out.append(Action.from_dict(raw))
        except (KeyError, TypeError, ValueError):
            log.warning("conversation context holds a malformed action: %r", raw)
    return out
