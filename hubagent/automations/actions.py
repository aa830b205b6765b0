"""Running one automation step through the hub: Actions and `say` via the agent (policy,
audit), `delay`, and `notify` through the outbox. Sensitive actions are refused and audited
unless the rule is trusted (see engine.py)."""

from __future__ import annotations

import json
import logging
import threading
from typing import TYPE_CHECKING, Any

from hubagent.automations.model import Automation
from hubagent.automations.validation import NOTIFY_TREE, notify_allowed
from hubagent.store.db import AuditEntry
from hubagent.types import Action, MqttMessage

if TYPE_CHECKING:
    from hubagent.app import Hub

log = logging.getLogger(__name__)

CHANNEL = "automation"


class StepRunner:
    """Executes steps for the engine's worker threads; `stop` cuts delays short."""

    def __init__(self, hub: Hub, stop: threading.Event) -> None:
        self.hub = hub
        self._stop = stop

    def step(self, automation: Automation, requester: str, kind: str, value: Any) -> dict[str, Any]:
        agent = self.hub.agent
        if kind == "delay":
            self._stop.wait(value)
            return {"kind": kind, "status": "done", "seconds": value}
        if kind == "notify":
            if not notify_allowed(value.get("topic")):  # files are checked at load; this
                # holds for steps built any other way too
                reason = f"notify may only publish under {NOTIFY_TREE}/, not {value.get('topic')!r}"
                log.warning("automation %s: %s; refused", automation.id, reason)
                return {"kind": kind, "status": "refused", "reason": reason}
            message = value["message"]
            payload = message if isinstance(message, str) else json.dumps(message)
            self.hub.outbox.send(MqttMessage(value["topic"], payload, qos=1))
            return {"kind": kind, "status": "done", "topic": value["topic"]}
        if kind == "say":
            reply = agent.handle(value, requester=requester, channel=CHANNEL)
            if reply.needs_confirmation:
                reply = self._sensitive(automation, requester, value, reply.understanding)
            return _record(kind, reply, text=value)
        action = Action.from_dict(value)
        entity = self.hub.registry.get(action.entity)
        sensitive = entity is not None and self.hub.policy.is_sensitive(entity, action)
        if sensitive and not self._trusted(automation):
            refusal = self._refuse(automation, requester, [action], action.entity)
            return _record(kind, refusal, text=value)
        reply = agent.execute([action], requester=requester, channel=CHANNEL)
        if reply.needs_confirmation:
            reply = self._sensitive(automation, requester, action.entity, [action])
        return _record(kind, reply, text=action.to_dict())

    # -- sensitive actions -------------------------------------------------------------
    def _trusted(self, automation: Automation) -> bool:
        listed = automation.id in getattr(self.hub.cfg.policy, "trusted_automations", ())
        return automation.allow_sensitive and listed

    def _sensitive(self, automation: Automation, requester: str, what: Any, understood: Any) -> Any:
        """The policy asked for a confirmation: give it for a trusted rule, else refuse."""
        if self._trusted(automation):
            log.warning("automation %s: confirming a sensitive action (trusted)", automation.id)
            return self.hub.agent.handle("yes", requester=requester, channel=CHANNEL)
        self.hub.policy.cancel(requester)  # nobody may answer "yes" for the rule later
        return self._refuse(automation, requester, understood, what)

    def _refuse(
        self, automation: Automation, requester: str, understood: Any, what: Any
    ) -> dict[str, Any]:
        """Refuse a sensitive action for this rule: log, audit, and the step's record."""
        if automation.allow_sensitive:
            why = "its id is not in policy.trusted_automations"
        else:
            why = "it does not set allow_sensitive"
        reason = f"automation {automation.id} may not run a sensitive action ({what}): {why}"
        log.warning("%s; refused", reason)
        if isinstance(understood, list):
            understood = [a.to_dict() if isinstance(a, Action) else a for a in understood]
        elif understood is not None and hasattr(understood, "steps"):
            understood = [a.to_dict() for a in understood.actions]
        if self.hub.store is not None:
            self.hub.store.audit(
                AuditEntry(requester, CHANNEL, str(what), understood, "refused", reason)
            )
        return {"status": "refused", "reason": reason}


def _record(kind: str, reply: Any, text: Any) -> dict[str, Any]:
    """A step's record from the agent's Reply (or from the engine's own refusal)."""
    if isinstance(reply, dict):
        return {**reply, "kind": kind, "text": text}
    status = "refused" if reply.refused and not reply.actions else "done"
    return {
        "kind": kind,
        "text": text,
        "status": status,
        "reply": reply.text,
        "actions": [a.to_dict() for a in reply.actions],
        "refused": reply.refused,
    }
