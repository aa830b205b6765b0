"""Conditions: state, numeric_state, time windows and weekdays, and/or/not. Pure functions of
the registry and a clock reading, so tests inject both."""

from __future__ import annotations

from datetime import datetime

from hubagent.automations.model import WEEKDAYS, Condition
from hubagent.automations.triggers import numeric_holds, value_in
from hubagent.home.registry import Registry


def check(condition: Condition, registry: Registry, now: datetime) -> bool:
    """Whether `condition` holds now; unknown entities make state conditions false."""
    kind = condition.kind
    if kind == "and":
        return all(check(c, registry, now) for c in condition.children)
    if kind == "or":
        return any(check(c, registry, now) for c in condition.children)
    if kind == "not":  # none of the listed conditions holds
        return not any(check(c, registry, now) for c in condition.children)
    if kind == "time":
        return _time_holds(condition, now)
    options = condition.options
    ids = options["entity_id"]
    ids = ids if isinstance(ids, list | tuple) else [ids]
    key = options.get("attribute") or "state"
    for entity_id in ids:  # every listed entity must satisfy it
        entity = registry.get(entity_id)
        if entity is None:
            return False
        value = entity.state.get(key)
        if kind == "state" and not value_in(value, options["state"]):
            return False
        if kind == "numeric_state" and not numeric_holds(options, value):
            return False
    return True


def check_all(conditions: tuple[Condition, ...], registry: Registry, now: datetime) -> bool:
    return all(check(c, registry, now) for c in conditions)


def _time_holds(condition: Condition, now: datetime) -> bool:
    options = condition.options
    days = options.get("weekday") or ()
    if days and WEEKDAYS[now.weekday()] not in days:
        return False
    after, before = options.get("after"), options.get("before")
    current = now.time().replace(microsecond=0)
    if after is not None and before is not None and after > before:
        return current >= after or current < before  # a window across midnight
    if after is not None and current < after:
        return False
    return before is None or current < before
