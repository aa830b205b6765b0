"""One request end to end: understand -> policy -> executor -> outbox, audited.

Every entry point (CLI, HTTP, Wyoming, MQTT request topic, automations) calls `Agent.handle`
for text or `Agent.execute` for Actions, so one policy and one audit log cover them all.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from hubagent import language as lang
from hubagent.act.delivery import target_for
from hubagent.act.executor import ExecutionError, build_messages
from hubagent.act.policy import Decision, Policy
from hubagent.act.requesters import Origin
from hubagent.act.responses import (
    Outcome,
    decision_reason,
    display_name,
    failed,
    fixed,
    reply_text,
    step_reason,
)
from hubagent.home.registry import Registry
from hubagent.store.db import Store
from hubagent.store.outbox import Target
from hubagent.types import Action, MqttMessage, Understanding
from hubagent.understand.cascade import Cascade

log = logging.getLogger(__name__)

# Publishes (or queues) one device message; False when it waits for its device or the broker.
Send = Callable[[MqttMessage, Target], bool | None]


# "confirm 123456": the one-time code of a sensitive request made over an unauthenticated
# channel, accepted only from these channels (the HTTP API holds the token; cli is local).
CONFIRM_CODE = re.compile(r"^\s*confirm\s+(\d{6})\s*[.!]?\s*$", re.IGNORECASE)
CODE_CHANNELS = frozenset({"http", "api", "cli"})

# The interface that accepted a request says who is behind it (peer, trust) here, so the
# layers between (conversations, follow-ups) need not carry it; unset: the requester.
_ORIGIN: ContextVar[Origin | None] = ContextVar("hubagent_origin", default=None)


@contextmanager
def acting_for(origin: Origin) -> Iterator[None]:
    """Requests handled inside this block come from `origin`."""
    token = _ORIGIN.set(origin)
    try:
        yield
    finally:
        _ORIGIN.reset(token)


def current_origin(requester: str) -> Origin:
    """The origin set by `acting_for`, else the requester itself (authenticated)."""
    return _ORIGIN.get() or Origin(requester)


@dataclass
class Reply:
    """What the hub answers to one request."""

    text: str
    actions: list[Action] = field(default_factory=list)  # sent (or queued while offline)
    refused: list[dict[str, Any]] = field(default_factory=list)  # {"text", "error", "reason"}
    needs_confirmation: bool = False
    understanding: Understanding | None = None
    # The policy's verdict per understood action, in order (the evaluator maps them to steps).
    decisions: list[Decision] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        u = self.understanding
        return {
            "reply": self.text,
            "actions": [a.to_dict() for a in self.actions],
            "refused": self.refused,
            "needs_confirmation": self.needs_confirmation,
            "path": u.path if u else None,
            "intent": u.intent if u else None,
            "steps": [s.to_dict() for s in u.steps] if u else [],
            "latency_ms": round(u.latency_ms, 2) if u else None,
        }


_QUEUED = "\0queued"  # _send: accepted, waiting for the device


class Agent:
    """Connects understanding, policy, execution and the audit log."""

    def __init__(
        self,
        registry: Registry,
        cascade: Cascade,
        policy: Policy,
        send: Send | None,
        store: Store | None = None,
        language: str | Sequence[str] = "en",
        ha: Any = None,
        queue_ttl_s: float = 300.0,
        assist: Any = None,
    ) -> None:
        """`send` publishes (or queues) one message; None makes a dry run that sends nothing.
        `language`: the language(s) served, the first the default.
        `ha` is the Home Assistant bridge that executes entities imported from there.
        `assist` (hubagent.assist.Assistant) answers the intents about no device."""
        self.registry = registry
        self.cascade = cascade
        self.policy = policy
        self.send = send
        self.store = store
        self.languages = lang.served_languages(
            [language] if isinstance(language, str) else language
        )
        self.language = self.languages[0]
        self.ha = ha
        self.queue_ttl_s = queue_ttl_s  # the outbox's TTL, for replies about queued commands
        self.assist = assist

    def request_language(self, tag: str | None, text: str) -> str:
        """The served language a request is in: the interface's tag, else the language of
        the conversation it is part of, else the text's script."""
        code = lang.match(tag, self.languages) or lang.active()
        return code if code in self.languages else lang.detect(text, self.languages)

    def handle(
        self,
        text: str,
        *,
        requester: str = "local",
        channel: str = "cli",
        area: str | None = None,
        only: frozenset[str] | None = None,
        language: str | None = None,
        context: tuple[str, ...] = (),
    ) -> Reply:
        """Understand `text` and act on it within policy; never raises for bad input. With
        `only`, the request is about those entities alone (an answer to "which one?").
        `language` (a tag from the interface) or else the text picks the reply's language.
        `context`: the entities of the conversation's previous turn ("it", "them")."""
        token = lang.set_current(self.request_language(language, text or ""))
        try:
            return self._handle(text, requester, channel, area, only, context)
        finally:
            lang.reset_current(token)

    def _handle(
        self,
        text: str,
        requester: str,
        channel: str,
        area: str | None,
        only: frozenset[str] | None,
        context: tuple[str, ...] = (),
    ) -> Reply:
        text = (text or "").strip()
        if not text:
            return Reply(reply_text(Outcome(), self._language()))
        if (code := CONFIRM_CODE.match(text)) is not None:
            return self._confirm_code(code.group(1), text, requester, channel)
        if self.policy.has_pending(requester):
            confirmed = self.policy.confirm_verbose(requester, text)
            if confirmed.actions is not None:
                return self._run(text, confirmed.actions, requester, channel, None, confirmed=True)
            if confirmed.reason:  # "no", or a "yes" too late: say so; else a new request
                return Reply(fixed(confirmed.reason, self._language()))
        try:
            understanding = self.cascade.understand(text, area, only, context=context)
        except Exception:  # noqa: BLE001 - the hub keeps answering whatever one request does
            log.exception("understanding failed for %r", text)
            return Reply(failed(self._language()))
        if self.assist is not None:
            self._assist(understanding, requester, channel, area)
        if (understanding.intent or {}).get("name") == "HassNevermind":
            return Reply("", understanding=understanding)  # nothing to say, as in HA
        outcome = Outcome(answer=understanding.answer)
        refused = []
        for step in understanding.steps:
            if step.error:
                reason = step_reason(step, self._language())
                refused.append({"text": step.text, "error": step.error, "reason": reason})
                outcome.refused.append(reason)
        return self._run(
            text,
            understanding.actions,
            requester,
            channel,
            understanding,
            outcome=outcome,
            refused=refused,
        )

    def _confirm_code(self, code: str, text: str, requester: str, channel: str) -> Reply:
        """Run a request another (unauthenticated) channel asked for, confirmed here."""
        if not current_origin(requester).authenticated or channel not in CODE_CHANNELS:
            return Reply(fixed("Confirm that in the app or over the HTTP API.", self._language()))
        confirmed = self.policy.confirm_code(code)
        if confirmed.actions is None:
            return Reply(confirmed.reason)
        return self._run(
            f"{text} ({confirmed.asked_by})",
            confirmed.actions,
            requester,
            channel,
            None,
            confirmed=True,
            origin=confirmed.origin,
        )

    def _assist(
        self, understanding: Understanding, requester: str, channel: str, area: str | None
    ) -> None:
        """Let the assistant answer its intents (timers, lists, ...), also as pieces of a
        request of several commands; their answers join the understanding's."""
        pieces = understanding.parts or [understanding]
        answered = False
        for piece in pieces:
            if self.assist.handles(piece):
                self.assist.handle(piece, requester=requester, channel=channel, area=area)
                answered = True
        if answered and understanding.parts:
            understanding.answer = " ".join(p.answer for p in pieces if p.answer) or None

    def execute(
        self, actions: list[Action], *, requester: str, channel: str, text: str = ""
    ) -> Reply:
        """Run Actions given directly (HTTP `POST /api/actions`, automations) through policy."""
        return self._run(text or "direct actions", actions, requester, channel, None)

    def _language(self) -> str:
        """The current request's language (the hub's default outside of a request)."""
        return lang.current(self.language)

    def _run(
        self,
        text: str,
        actions: list[Action],
        requester: str,
        channel: str,
        understanding: Understanding | None,
        *,
        confirmed: bool = False,
        outcome: Outcome | None = None,
        refused: list[dict[str, Any]] | None = None,
        origin: Origin | None = None,
    ) -> Reply:
        outcome = outcome or Outcome()
        refused = refused if refused is not None else []
        origin = origin or current_origin(requester)
        decisions: list[Decision]
        if confirmed:  # checked when asked; the executions count against the asker's budget
            decisions = [self.policy.admit(a, origin) for a in actions]
        else:
            decisions = self.policy.check_all(actions, requester, channel, origin)
        done: list[Action] = []
        needs_confirmation = False
        language = self._language()
        for decision in decisions:
            entity = self.registry.get(decision.action.entity)
            name = display_name(entity, decision.action.entity, language)
            if decision.status == "needs_confirmation":
                needs_confirmation = True
                outcome.confirm.append(decision_reason(decision, name, language))
                continue
            if decision.status != "allowed":
                reason = decision_reason(decision, name, language)
                refused.append({"text": text, "error": decision.error, "reason": reason})
                outcome.refused.append(reason)
                continue
            if decision.action.action == "get_state":
                continue
            error = self._send(decision.action, requester, channel)
            if error == _QUEUED:  # accepted: in the reply's actions, but said to be waiting
                done.append(decision.action)
                outcome.queued.append(name)
                continue
            if error:
                refused.append({"text": text, "error": "not_allowed", "reason": error})
                outcome.refused.append(error)
                continue
            done.append(decision.action)
            outcome.done.append((decision.action, name))
            if decision.clamped and decision.reason:
                outcome.refused.append(decision_reason(decision, name, language))
        outcome.queue_ttl_s = self.queue_ttl_s
        reply = Reply(
            reply_text(outcome, language),
            done,
            refused,
            needs_confirmation,
            understanding,
            decisions,
        )
        self._audit(requester, channel, text, understanding or actions, decisions, confirmed)
        return reply

    def _send(self, action: Action, requester: str = "", channel: str = "") -> str | None:
        """Publish the device's own messages for one action; an error text, _QUEUED when
        they wait for the device (or broker) to be back, or None."""
        entity = self.registry.get(action.entity)
        if entity is None:
            return f"I can't find {action.entity}."
        if self.send is None:
            return None
        if entity.source == "homeassistant":
            return self._send_ha(entity.name, action)
        try:
            messages = build_messages(entity, action)
        except ExecutionError as exc:
            return str(exc)
        target = target_for(entity, action, requester, channel)
        sent = [self.send(message, target) for message in messages]
        return _QUEUED if False in sent else None

    def _send_ha(self, name: str, action: Action) -> str | None:
        if self.ha is None:
            return f"{name} is a Home Assistant entity and the Home Assistant bridge is off."
        from hubagent.interfaces.homeassistant import HomeAssistantError

        try:
            self.ha.execute(action)
        except HomeAssistantError as exc:
            return str(exc)
        return None

    def _audit(
        self,
        requester: str,
        channel: str,
        text: str,
        understood: Any,
        decisions: list[Decision],
        confirmed: bool,
    ) -> None:
        if self.store is None:
            return
        if isinstance(understood, list):
            understood = [a.to_dict() for a in understood]
        entry = self.policy.audit_entry(
            requester, channel, text, understood, decisions, "confirmed" if confirmed else None
        )
        self.store.audit(entry)
