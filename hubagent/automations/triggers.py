"""Trigger matching: clock times, a small cron parser, state and numeric changes.

A hand-written cron parser instead of `croniter`: the five standard fields with `*`, lists,
ranges, steps and month/day names are about 60 lines, need no dependency, and matching a
minute (rather than computing the next fire time) is all the scheduler needs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
# (name, low, high, names whose index is the value offset by low)
_FIELDS = (
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day of month", 1, 31, ()),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 7, _DAYS),
)


def parse_clock(value: Any) -> time:
    """`"07:30"` or `"07:30:15"` -> time; ValueError naming the value otherwise."""
    match = re.fullmatch(r"\s*([01]?\d|2[0-3]):([0-5]\d)(?::([0-5]\d))?\s*", str(value))
    if not match:
        raise ValueError(f'invalid time {value!r} (use "HH:MM" or "HH:MM:SS")')
    h, m, s = match.groups()
    return time(int(h), int(m), int(s or 0))


@dataclass(frozen=True)
class CronSpec:
    """A 5-field cron expression: minute hour day-of-month month day-of-week."""

    text: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    any_day: bool  # day of month was `*`
    any_weekday: bool  # day of week was `*`

    @classmethod
    def parse(cls, text: str) -> CronSpec:
        parts = text.split()
        if len(parts) != 5:
            raise ValueError(
                f"invalid cron {text!r}: need 5 fields (minute hour day month weekday)"
            )
        sets = [_parse_field(p, *spec) for p, spec in zip(parts, _FIELDS, strict=True)]
        weekdays = frozenset(d % 7 for d in sets[4])  # 7 is Sunday too
        return cls(
            text, sets[0], sets[1], sets[2], sets[3], weekdays, parts[2] == "*", parts[4] == "*"
        )

    def matches(self, when: datetime) -> bool:
        """Whether the minute of `when` is one this expression fires in."""
        if when.minute not in self.minutes or when.hour not in self.hours:
            return False
        if when.month not in self.months:
            return False
        day_ok = when.day in self.days
        weekday_ok = (when.isoweekday() % 7) in self.weekdays
        # Classic cron: when both day fields are restricted, either one matching is enough.
        if self.any_day or self.any_weekday:
            return day_ok and weekday_ok
        return day_ok or weekday_ok


def _parse_field(text: str, name: str, low: int, high: int, names: tuple[str, ...]) -> frozenset:
    values: set[int] = set()
    for item in text.split(","):
        body, _, step_text = item.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) == 0:
                raise ValueError(f"invalid cron {name} step {step_text!r}")
            step = int(step_text)
        if body == "*":
            start, end = low, high
        else:
            first, dash, last = body.partition("-")
            start = _value(first, name, low, high, names)
            end = _value(last, name, low, high, names) if dash else (high if step_text else start)
            if end < start:
                raise ValueError(f"invalid cron {name} range {body!r}")
        values.update(range(start, end + 1, step))
    return frozenset(values)


def _value(text: str, name: str, low: int, high: int, names: tuple[str, ...]) -> int:
    lowered = text.strip().lower()[:3]
    if names and lowered in names:
        return names.index(lowered) + (1 if name == "month" else 0)
    if not text.isdigit() or not low <= int(text) <= high:
        raise ValueError(f"invalid cron {name} {text!r} (allowed {low}-{high})")
    return int(text)


# -- state values ----------------------------------------------------------------------


def norm(value: Any) -> str:
    """Compare states as lower-case text: `"ON"`, `"on"` match; 21 and "21" match."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value == int(value):
        value = int(value)
    return str(value).strip().lower()


def value_in(value: Any, wanted: Any) -> bool:
    """Whether `value` equals `wanted` (a scalar or a list of alternatives)."""
    options = wanted if isinstance(wanted, list | tuple) else [wanted]
    return norm(value) in {norm(o) for o in options}


def as_number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def in_range(value: Any, above: float | None, below: float | None) -> bool:
    """HA semantics: strictly above `above` and strictly below `below`; non-numbers never."""
    number = as_number(value)
    if number is None:
        return False
    return (above is None or number > above) and (below is None or number < below)


def state_matches(options: dict[str, Any], value: Any) -> bool:
    """Whether a new value satisfies a state trigger's `to` (absent: any value)."""
    return "to" not in options or value_in(value, options["to"])


def state_change_fires(options: dict[str, Any], old: Any, new: Any) -> bool:
    """Whether a change old -> new fires a state trigger (to/from both optional)."""
    if norm(old) == norm(new):
        return False
    if "from" in options and not value_in(old, options["from"]):
        return False
    return state_matches(options, new)


def numeric_change_fires(options: dict[str, Any], old: Any, new: Any) -> bool:
    """A numeric_state trigger fires when the value enters the range (was outside before)."""
    above, below = as_number(options.get("above")), as_number(options.get("below"))
    return in_range(new, above, below) and not in_range(old, above, below)


def numeric_holds(options: dict[str, Any], value: Any) -> bool:
    return in_range(value, as_number(options.get("above")), as_number(options.get("below")))


def crossed(last: datetime, now: datetime, at: time) -> bool:
    """Whether the clock time `at` lies in (last, now], possibly across midnight."""
    day = last.date()
    while day <= now.date():
        moment = datetime.combine(day, at, tzinfo=now.tzinfo)
        if last < moment <= now:
            return True
        day += timedelta(days=1)
    return False
