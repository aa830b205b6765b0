"""Checks one automation mapping and builds the model, with the file and line of each problem."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import paho.mqtt.client as mqtt

from hubagent.automations.model import (
    ACTION_KINDS,
    CONDITION_TYPES,
    TRIGGER_TYPES,
    WEEKDAYS,
    Automation,
    AutomationError,
    Condition,
    Step,
    Trigger,
)
from hubagent.automations.triggers import CronSpec, parse_clock
from hubagent.automations.yamlfile import (
    LineDict,
    as_text,
    as_tuple,
    key_line,
    line_of,
    parse_duration,
    valid_filter,
)
from hubagent.types import DOMAIN_VERBS, READ_ONLY_DOMAINS, UNIVERSAL_VERBS

# Where `notify` may publish, whatever `notify_topics` says: never a device's command topic,
# never `hubagent/request` (a rule without allow_sensitive once unlocked a door by
# notify-publishing "unlock the front door" and "yes" there).
NOTIFY_TREE = "hubagent/notify"


def notify_allowed(topic: object, notify_topics: Iterable[str] = (f"{NOTIFY_TREE}/#",)) -> bool:
    """A plain topic under `hubagent/notify/` that also matches one of `notify_topics`."""
    if not isinstance(topic, str) or not topic.startswith(NOTIFY_TREE + "/"):
        return False
    if any(c in topic for c in "+#\x00") or len(topic) > 1024:
        return False
    return any(mqtt.topic_matches_sub(f, topic) for f in notify_topics)


def _also(notify_topics: Iterable[str]) -> str:
    narrower = [f for f in notify_topics if f != f"{NOTIFY_TREE}/#"]
    return f" (and {', '.join(narrower)})" if narrower else ""


_ID = re.compile(r"^[A-Za-z0-9_\-]+$")


class Checker:
    """Validates one automation mapping; collects warnings, raises AutomationError."""

    def __init__(self, file: str, known: set[str] | None, notify_topics: Iterable[str]) -> None:
        self.file = file
        self.known = known
        self.notify_topics = tuple(notify_topics)
        self.warnings: list[str] = []

    def fail(self, line: int, reason: str) -> AutomationError:
        return AutomationError(self.file, line, reason)

    def warn_entity(self, entity_id: str, line: int) -> None:
        if self.known is not None and entity_id not in self.known:
            self.warnings.append(
                f"{self.file}:{line}: unknown entity '{entity_id}' (loaded anyway; it may be "
                "discovered later)"
            )

    def mapping(self, value: Any, line: int, what: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(line_of(value, line), f"{what} must be a mapping, got {value!r}")
        return value

    def listing(self, value: Any, line: int, what: str) -> list[Any]:
        if value is None:
            return []
        return value if isinstance(value, list) else [value]

    def allowed_keys(self, data: dict[str, Any], allowed: Iterable[str], what: str) -> None:
        extra = sorted(str(k) for k in set(data) - set(allowed))
        if extra:
            line = key_line(data, extra[0], line_of(data, 0))
            raise self.fail(
                line, f"{what}: unknown key '{extra[0]}' (allowed: {', '.join(sorted(allowed))})"
            )

    def duration(self, data: dict[str, Any], key: str) -> float | None:
        if key not in data:
            return None
        try:
            return parse_duration(data[key])
        except ValueError as exc:
            raise self.fail(key_line(data, key, 0), f"'{key}': {exc}") from None

    def number(self, data: dict[str, Any], key: str) -> float | None:
        value = data.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(key_line(data, key, 0), f"'{key}' must be a number, got {value!r}")
        return float(value)

    def entities(self, data: dict[str, Any], what: str, required: bool = True) -> tuple[str, ...]:
        line = key_line(data, "entity_id", line_of(data, 0))
        ids = as_tuple(data.get("entity_id"))
        if required and not ids:
            raise self.fail(line_of(data, 0), f"{what} needs 'entity_id'")
        for entity_id in ids:
            if not isinstance(entity_id, str) or "." not in entity_id:
                raise self.fail(line, f"'{entity_id}' is not an entity id (domain.name)")
            self.warn_entity(entity_id, line)
        return ids

    # triggers ------------------------------------------------------------------------
    def trigger(self, raw: Any, line: int) -> Trigger:
        data = self.mapping(raw, line, "a trigger")
        line = line_of(data, line)
        platform = data.get("platform", data.get("trigger"))
        if platform not in TRIGGER_TYPES:
            raise self.fail(
                line, f"unknown trigger type {platform!r} (one of {', '.join(TRIGGER_TYPES)})"
            )
        common = {"platform", "trigger", "id"}
        options = {k: v for k, v in data.items() if k not in common}
        for_s: float | None = None
        if platform == "state":
            self.allowed_keys(
                data, common | {"entity_id", "to", "from", "attribute", "for"}, "state trigger"
            )
            self.entities(data, "a state trigger")
            for_s = self.duration(data, "for")
        elif platform == "numeric_state":
            allowed = common | {"entity_id", "attribute", "above", "below", "for"}
            self.allowed_keys(data, allowed, "numeric_state trigger")
            self.entities(data, "a numeric_state trigger")
            self._range(data)
            for_s = self.duration(data, "for")
        elif platform == "mqtt":
            self.allowed_keys(data, common | {"topic", "payload"}, "mqtt trigger")
            topic = data.get("topic")
            if not isinstance(topic, str) or not topic or not valid_filter(topic):
                raise self.fail(line, f"mqtt trigger needs a valid 'topic' filter, got {topic!r}")
            if "payload" in data:
                options["payload"] = as_text(data["payload"])
        elif platform == "time":
            self.allowed_keys(data, common | {"at"}, "time trigger")
            ats = as_tuple(data.get("at"))
            if not ats:
                raise self.fail(line, "time trigger needs 'at' (e.g. \"07:30\")")
            try:
                options["at"] = tuple(parse_clock(a) for a in ats)
            except ValueError as exc:
                raise self.fail(key_line(data, "at", line), str(exc)) from None
        elif platform == "time_pattern":
            self.allowed_keys(data, common | {"cron"}, "time_pattern trigger")
            try:
                options["cron"] = CronSpec.parse(str(data.get("cron", "")))
            except ValueError as exc:
                raise self.fail(key_line(data, "cron", line), str(exc)) from None
        else:
            self.allowed_keys(data, common, "hub_start trigger")
        return Trigger(platform, options, line, for_s)

    def _range(self, data: dict[str, Any]) -> None:
        above, below = self.number(data, "above"), self.number(data, "below")
        if above is None and below is None:
            raise self.fail(line_of(data, 0), "numeric_state needs 'above' and/or 'below'")
        if above is not None and below is not None and above >= below:
            raise self.fail(
                line_of(data, 0), f"'above' ({above:g}) must be less than 'below' ({below:g})"
            )

    # conditions ----------------------------------------------------------------------
    def condition(self, raw: Any, line: int) -> Condition:
        data = self.mapping(raw, line, "a condition")
        line = line_of(data, line)
        for short in ("and", "or", "not"):  # shorthand: {or: [...]}
            if short in data and "condition" not in data:
                data = LineDict({"condition": short, "conditions": data[short]})
                data.line, data.key_lines = line, {}
        kind = data.get("condition")
        if kind not in CONDITION_TYPES:
            raise self.fail(
                line, f"unknown condition type {kind!r} (one of {', '.join(CONDITION_TYPES)})"
            )
        if kind in ("and", "or", "not"):
            self.allowed_keys(data, {"condition", "conditions"}, f"{kind} condition")
            children = tuple(
                self.condition(c, line) for c in self.listing(data.get("conditions"), line, kind)
            )
            if not children:
                raise self.fail(line, f"'{kind}' needs a list of conditions")
            return Condition(kind, {}, line, children)
        options = {k: v for k, v in data.items() if k != "condition"}
        if kind == "state":
            self.allowed_keys(
                data, {"condition", "entity_id", "state", "attribute"}, "state condition"
            )
            self.entities(data, "a state condition")
            if "state" not in data:
                raise self.fail(line, "state condition needs 'state'")
        elif kind == "numeric_state":
            allowed = {"condition", "entity_id", "attribute", "above", "below"}
            self.allowed_keys(data, allowed, "numeric_state condition")
            self.entities(data, "a numeric_state condition")
            self._range(data)
        else:
            self.allowed_keys(data, {"condition", "after", "before", "weekday"}, "time condition")
            try:
                for key in ("after", "before"):
                    if key in data:
                        options[key] = parse_clock(data[key])
            except ValueError as exc:
                raise self.fail(line, str(exc)) from None
            days = tuple(str(d).lower()[:3] for d in as_tuple(data.get("weekday")))
            bad = [d for d in days if d not in WEEKDAYS]
            if bad:
                raise self.fail(line, f"unknown weekday {bad[0]!r} (use {', '.join(WEEKDAYS)})")
            options["weekday"] = days
            if not (days or "after" in data or "before" in data):
                raise self.fail(line, "time condition needs 'after', 'before' or 'weekday'")
        return Condition(kind, options, line)

    # actions -------------------------------------------------------------------------
    def step(self, raw: Any, line: int) -> Step:
        data = self.mapping(raw, line, "an action")
        line = line_of(data, line)
        kinds = [k for k in data if k in ACTION_KINDS]
        if len(kinds) != 1 or len(data) != 1:
            raise self.fail(
                line,
                f"an action is one of {', '.join(ACTION_KINDS)}, got keys {sorted(map(str, data))}",
            )
        kind = kinds[0]
        value = data[kind]
        if kind == "say":
            if not isinstance(value, str) or not value.strip():
                raise self.fail(line, "'say' needs an instruction text")
            return Step(kind, value.strip(), line)
        if kind == "delay":
            try:
                return Step(kind, parse_duration(value), line)
            except ValueError as exc:
                raise self.fail(line, f"'delay': {exc}") from None
        body = self.mapping(value, line, f"'{kind}'")
        if kind == "notify":
            self.allowed_keys(body, {"topic", "message"}, "notify")
            topic = body.get("topic")
            if not isinstance(topic, str) or not topic or "+" in topic or "#" in topic:
                raise self.fail(line, f"notify needs a plain 'topic' (no wildcards), got {topic!r}")
            if not notify_allowed(topic, self.notify_topics):
                raise self.fail(
                    line,
                    f"notify topic '{topic}' is outside {NOTIFY_TREE}/#"
                    f"{_also(self.notify_topics)}; automations may not publish to device "
                    "topics or to the request topic",
                )
            message = body.get("message", "")
            return Step(kind, {"topic": topic, "message": message}, line)
        self.allowed_keys(body, {"entity", "action", "args"}, "action")
        entity, verb = body.get("entity"), body.get("action")
        if not isinstance(entity, str) or "." not in entity:
            raise self.fail(line, f"action needs 'entity' (domain.name), got {entity!r}")
        domain = entity.split(".", 1)[0]
        verbs = ("get_state",) if domain in READ_ONLY_DOMAINS else DOMAIN_VERBS.get(domain, ())
        if not isinstance(verb, str) or verb not in (*verbs, *UNIVERSAL_VERBS):
            raise self.fail(
                line,
                f"'{verb}' is not an action for {domain} (one of {', '.join((*verbs, *UNIVERSAL_VERBS))})",
            )
        args = body.get("args") or {}
        if not isinstance(args, dict):
            raise self.fail(line, f"action 'args' must be a mapping, got {args!r}")
        self.warn_entity(entity, line)
        return Step(kind, {"entity": entity, "action": verb, "args": dict(args)}, line)

    # one automation ------------------------------------------------------------------
    def automation(self, raw: Any, line: int) -> Automation:
        data = self.mapping(raw, line, "an automation")
        line = line_of(data, line)
        allowed = {
            "id", "alias", "description", "trigger", "triggers", "condition", "conditions",
            "action", "actions", "allow_sensitive", "mode", "max_runs_per_minute",
        }  # fmt: skip
        self.allowed_keys(data, allowed, "automation")
        auto_id = data.get("id")
        if not isinstance(auto_id, str) or not _ID.match(auto_id):
            raise self.fail(
                line, f"automation needs an 'id' of letters, digits, _ or -, got {auto_id!r}"
            )
        triggers_raw = self.listing(data.get("trigger", data.get("triggers")), line, "trigger")
        if not triggers_raw:
            raise self.fail(line, f"automation '{auto_id}' needs at least one trigger")
        actions_raw = self.listing(data.get("action", data.get("actions")), line, "action")
        if not actions_raw:
            raise self.fail(line, f"automation '{auto_id}' needs at least one action")
        triggers = tuple(self.trigger(t, line) for t in triggers_raw)
        conditions = tuple(
            self.condition(c, line)
            for c in self.listing(data.get("condition", data.get("conditions")), line, "condition")
        )
        actions = tuple(self.step(a, line) for a in actions_raw)
        mode = data.get("mode", "single")
        if mode not in ("single", "parallel"):
            raise self.fail(
                key_line(data, "mode", line), f"mode must be single or parallel, got {mode!r}"
            )
        max_runs = data.get("max_runs_per_minute", 10)
        if isinstance(max_runs, bool) or not isinstance(max_runs, int) or max_runs < 1:
            raise self.fail(
                line, f"max_runs_per_minute must be a positive integer, got {max_runs!r}"
            )
        sensitive = data.get("allow_sensitive", False)
        if not isinstance(sensitive, bool):
            raise self.fail(line, f"allow_sensitive must be true or false, got {sensitive!r}")
        return Automation(
            id=auto_id,
            alias=str(data.get("alias") or auto_id),
            triggers=triggers,
            conditions=conditions,
            actions=actions,
            file=self.file,
            line=line,
            allow_sensitive=sensitive,
            mode=mode,
            max_runs_per_minute=max_runs,
            warnings=tuple(self.warnings),
        )
