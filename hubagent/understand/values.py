"""What value a single command asks for: numbers, directions, extremes, options, colours,
resolved against an attribute's range or options and its current state.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from hubagent.home.registry import normalize_name
from hubagent.understand.cues import contains, words

UP_WORDS = frozenset(
    (
        "increase",
        "raise",
        "up",
        "higher",
        "more",
        "warmer",
        "hotter",
        "brighter",
        "louder",
        "boost",
        "enhance",
        "turn_up",
    )
)
DOWN_WORDS = frozenset(
    (
        "decrease",
        "lower",
        "down",
        "reduce",
        "less",
        "cooler",
        "colder",
        "dim",
        "dimmer",
        "quieter",
        "drop",
        "decreasing",
    )
)
_NUMBER_WORDS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "fifteen": 15, "twenty": 20, "thirty": 30, "fifty": 50,
    "a": 1, "an": 1,
}  # fmt: skip
COLORS: dict[str, tuple[int, int, int]] = {
    "red": (255, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255), "white": (255, 255, 255),
    "yellow": (255, 255, 0), "orange": (255, 165, 0), "purple": (128, 0, 128),
    "pink": (255, 192, 203), "cyan": (0, 255, 255), "magenta": (255, 0, 255),
    "warm white": (255, 214, 170), "black": (0, 0, 0),
}  # fmt: skip


class OutOfRange(ValueError):
    """An absolute value outside the attribute's declared range."""


@dataclass
class ValueCue:
    """The value a command asks for."""

    number: float | None = None
    relative: int = 0  # +1 "by N" upwards, -1 downwards, 0 absolute
    extreme: str | None = None  # "max" | "min"
    word: str | None = None  # an option or colour word


def read_value(text: str) -> ValueCue:
    """Number, direction and extremes named by one command."""
    low = normalize_name(text).replace("%", " percent")
    tw = low.split()
    cue = ValueCue()
    to = re.search(r"\bto\s+(-?\d+(?:\.\d+)?)", low)
    by = re.search(r"\bby\s+(?:(-?\d+(?:\.\d+)?)|([a-z]+))\b", low)
    if to:
        cue.number = float(to.group(1))
    elif by and (by.group(1) or by.group(2) in _NUMBER_WORDS):
        cue.number = float(by.group(1)) if by.group(1) else float(_NUMBER_WORDS[by.group(2)])
        cue.relative = _direction(tw) or 1
    else:
        nums = re.findall(r"-?\d+(?:\.\d+)?", low)
        if nums:
            cue.number = float(nums[-1])
        else:
            for w in tw:
                if w in _NUMBER_WORDS and w not in ("a", "an") and _direction(tw):
                    cue.number = float(_NUMBER_WORDS[w])
            if cue.number is not None:
                cue.relative = _direction(tw)
    if cue.number is None and re.search(r"\b(max|maximum|highest|full)\b", low):
        cue.extreme = "max"
    elif cue.number is None and re.search(r"\b(min|minimum|lowest)\b", low):
        cue.extreme = "min"
    if cue.number is None and cue.extreme is None and _direction(tw):
        cue.relative = _direction(tw)  # "one level up", "warmer": one step
    return cue


def _direction(tw: list[str]) -> int:
    for w in tw:
        if w in UP_WORDS:
            return 1
        if w in DOWN_WORDS:
            return -1
    return 0


_OPTION_WORDS = {"automatically": "auto", "automatic": "auto"}


def option_in_text(text: str, options: list[Any]) -> Any | None:
    """The option the text names ("fan_only" matches "fan only"), longest first."""
    tw = [_OPTION_WORDS.get(w, w) for w in words(text)]
    for option in sorted(options, key=lambda o: -len(str(o))):
        if contains(tw, str(option).replace("_", " ")):
            return option
    return None


def resolve_number(cue: ValueCue, spec: dict[str, Any], current: Any) -> float | None:
    """The absolute value for a numeric attribute, clamped to its range."""
    lo, hi = _num(spec.get("min")), _num(spec.get("max"))
    if cue.extreme == "max":
        return hi
    if cue.extreme == "min":
        return lo
    if cue.number is None:
        if cue.relative and isinstance(current, int | float):
            step = _num(spec.get("step")) or _default_step(lo, hi)
            value = float(current) + cue.relative * step
        else:
            return None
    elif cue.relative:
        base = float(current) if isinstance(current, int | float) else 0.0
        value = base + cue.relative * cue.number
    else:
        value = cue.number
        # An explicit target outside the range is refused, not silently changed.
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise OutOfRange(
                f"{value:g} is outside {lo:g}..{hi:g}"
                if lo is not None and hi is not None
                else f"{value:g} is out of range"
            )
    if lo is not None:
        value = max(lo, value)
    if hi is not None:
        value = min(hi, value)
    return value


def resolve_option(cue: ValueCue, text: str, spec: dict[str, Any], current: Any) -> Any | None:
    """The option named by the text, or the neighbour of `current` for "one level up"."""
    options = list(spec.get("options") or [])
    named = option_in_text(text, options)
    if named is not None:
        return named
    if cue.relative and current in options:
        index = options.index(current) + cue.relative * int(cue.number or 1)
        return options[max(0, min(len(options) - 1, index))]
    if cue.extreme and options:
        return options[-1] if cue.extreme == "max" else options[0]
    return None


def _default_step(lo: float | None, hi: float | None) -> float:
    """One step of "brighter" / "warmer" without an amount: a tenth of a wide range (10 of
    0-100 %), else 1 (one degree)."""
    if lo is not None and hi is not None and hi - lo >= 50:
        return round((hi - lo) / 10)
    return 1


def _num(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
