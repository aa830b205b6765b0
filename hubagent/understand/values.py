"""What value a single command asks for: numbers, directions, extremes, options, colours,
resolved against an attribute's range or options and its current state.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from hubagent.home.registry import normalize_name
from hubagent.understand import tables_en
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
        "crank",
        "faster",
        "stronger",
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
        "quieten",
        "drop",
        "decreasing",
        "softer",
        "knock",
        "slower",
        "weaker",
    )
)
_NUMBER_WORDS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "fifteen": 15, "twenty": 20, "thirty": 30, "fifty": 50,
    "couple": 2, "couple of": 2,
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
    """The value a command asks for: an absolute number, a change (a delta, a factor, a
    share of the range, "a bit"), an extreme, or an option word."""

    number: float | None = None
    relative: int = 0  # +1 upwards, -1 downwards, 0 absolute
    extreme: str | None = None  # "max" | "min"
    word: str | None = None  # an option or colour word
    factor: float | None = None  # scale the current value ("halve", "twice as bright")
    share: float | None = None  # a share of the range: absolute, or a change when relative
    bit: bool = False  # "a bit", "a notch", a bare "brighter": the vague amount
    warmth: bool = False  # said as warm/cool: for a light's colour temperature, inverted
    unclear: bool = False  # two amounts for one value ("by 1 and 5 degrees"): ask, never guess


def value_text(text: str) -> str:
    """Lower-case words with numbers kept whole ("-5", "2.5"), "%" read as "percent"."""
    low = (
        text.lower().replace("%", " percent ").replace("°c", " degrees ").replace("°", " degrees ")
    )
    low = re.sub(r"(?<![\w.])-(?=\d)", " qqneg", low)  # a sign, not a dash: "to -5"
    low = re.sub(r"(\d),(\d{3})\b", r"\1\2", low)
    low = re.sub(r"(?<=\d)\.(?=\d)", "qqdot", low)  # normalize_name would split "2.5"
    low = re.sub(r"[^a-z0-9 ]+", " ", normalize_name(low))
    low = low.replace("qqdot", ".").replace("qqneg", "-")
    return re.sub(r"\s+", " ", low).strip()


_NUM = r"-?\d+(?:\.\d+)?"


def read_value(text: str) -> ValueCue:
    """Number, direction, factor, share and extremes named by one command (tables_en)."""
    low = tables_en.spell_numbers(value_text(text))
    for word, number in _NUMBER_WORDS.items():
        if word not in ("a", "an"):
            low = re.sub(rf"\b{word}\b", str(number), low)
    low = re.sub(r"\b(?:a |one )?half (?:a |of a )?(degree|percent|point)", r"0.5 \1", low)
    tw = low.split()
    cue = ValueCue()
    if re.search(
        rf"{_NUM}(?:\s+(?:degrees?|percent|points?))?\s+and\s+(?:a |an |{_NUM}\b|half\b)", low
    ):
        cue.unclear = True  # "up by 1 and 5 degrees", "to 22 and a half": not one value
    direction = _direction(tw)
    cue.warmth = bool(re.search(r"\b(warm|warmer|warmest|cool|cooler|coolest)\b", low))
    fraction = next((f for p, f in _FRACTIONS if re.search(rf"\b{p}\b", low)), None)
    to = re.search(rf"\b(?:to|at)\s+({_NUM})", low)
    by = re.search(rf"\b(?:by|up|down)\s+(?:another\s+)?({_NUM})\b", low)
    if any(re.search(rf"\b{p}\b", low) for p in tables_en.WARMEST):
        cue.extreme = "max"  # the warmest: a light's lowest kelvin (see resolve_number)
        return cue
    if any(re.search(rf"\b{p}\b", low) for p in tables_en.COOLEST):
        cue.extreme = "min"
        return cue
    factor = next((f for p, f in tables_en.FACTORS.items() if re.search(rf"\b{p}\b", low)), None)
    if to:
        cue.number = float(to.group(1))
    elif by and direction:
        cue.number, cue.relative = float(by.group(1)), direction
    elif factor is not None:
        cue.factor = factor
    elif (
        fraction is not None
        and re.search(r"\b(?:to|at)\s+(?:a |one )?\w+$", low) is None
        and (re.search(r"\bof the way\b", low) or (direction and re.search(r"\bby\b", low)))
    ):
        if re.search(r"\bof the way\b", low):
            cue.share, cue.relative = fraction, direction or 1  # "a third of the way down"
        else:
            cue.factor = 1 + (direction or -1) * fraction  # "dim it by a third": x 2/3
    elif fraction is not None and re.search(r"\b(?:to|at)\b", low):
        cue.share = fraction  # "to a quarter": that share of the range
    elif any(re.search(rf"\b{p}\b", low) for p in tables_en.HALFWAY):
        cue.share = 0.5
    else:
        nums = re.findall(_NUM, low)
        if nums:
            cue.number = float(nums[-1])
            if direction and re.search(r"\b(?:by|up|down|warmer|cooler|brighter|dimmer)\b", low):
                cue.relative = direction
    if cue.number is None and cue.share is None and cue.factor is None:
        if any(re.search(rf"\b{p}\b", low) for p in tables_en.MAX_PHRASES):
            cue.extreme = "max"
        elif any(re.search(rf"\b{p}\b", low) for p in tables_en.MIN_PHRASES):
            cue.extreme = "min"
        elif direction:
            cue.relative, cue.bit = direction, True  # "a bit brighter", a bare "louder"
    return cue


_FRACTIONS = sorted(tables_en.FRACTIONS.items(), key=lambda kv: -len(kv[0]))


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
    # "on cooling", "to heating": the option's gerund names it too.
    tw = [w[:-3] if w.endswith("ing") and len(w) > 6 and w != "heating" else w for w in tw]
    for option in sorted(options, key=lambda o: -len(str(o))):
        if contains(tw, str(option).replace("_", " ")):
            return option
    return None


_ZERO_WHEN_OFF = frozenset({"brightness", "percentage", "volume"})


def resolve_number(
    cue: ValueCue, spec: dict[str, Any], current: Any, attr: str = "", off: bool = False
) -> float | None:
    """The absolute value for a numeric attribute. An explicit value outside the range is
    refused (`OutOfRange`); a change that overshoots is clamped; the result is rounded half
    up to the attribute's step (or a whole number)."""
    lo, hi = _num(spec.get("min")), _num(spec.get("max"))
    invert = cue.warmth and attr == "color_temp"  # warmer light is fewer kelvin
    have = isinstance(current, int | float) and not isinstance(current, bool)
    base = float(current) if have else None
    if base is None and off and attr in _ZERO_WHEN_OFF:
        base = lo if lo is not None else 0.0  # "brighter" on a light that is off: from 0
    if cue.extreme:
        top = (cue.extreme == "max") != invert
        return hi if top else lo
    direction = -cue.relative if invert else cue.relative
    if cue.factor is not None:
        if base is None:
            return None
        value = base * cue.factor
    elif cue.share is not None:
        span = (hi - lo) if lo is not None and hi is not None else 100.0
        if direction:
            if base is None:
                return None
            value = base + direction * cue.share * span
        else:
            value = (lo or 0.0) + cue.share * span
    elif cue.number is None:
        if not direction or base is None:
            return None
        value = base + direction * bit_amount(attr, spec)
    elif direction:
        value = (base if base is not None else 0.0) + direction * abs(cue.number)
    else:
        value = cue.number
        # An explicit target outside the range, or off the step, is refused, not changed.
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise OutOfRange(
                f"{value:g} is outside {lo:g}..{hi:g}"
                if lo is not None and hi is not None
                else f"{value:g} is out of range"
            )
        step = _num(spec.get("step"))
        units = (value - (lo or 0.0)) / step if step else 0.0
        if step and abs(units - round(units)) > 1e-6:
            raise OutOfRange(f"{value:g} is not a step of {step:g}")
    if lo is not None:
        value = max(lo, value)
    if hi is not None:
        value = min(hi, value)
    return _round(value, _num(spec.get("step")))


def bit_amount(attr: str, spec: dict[str, Any]) -> float:
    """ "A bit": 10 points on a 0-100 scale (a tenth of a wide range), 1 degree for a
    temperature, 5 % for a target humidity, else one step."""
    lo, hi = _num(spec.get("min")), _num(spec.get("max"))
    if attr in ("temperature", "target_temperature"):
        return 2.0 if str(spec.get("unit", "")).upper().endswith("F") else 1.0
    if attr in ("humidity", "target_humidity"):
        return 5.0
    if lo is not None and hi is not None and hi - lo >= 50:
        return round((hi - lo) / 10)
    return _num(spec.get("step")) or 1.0


def _round(value: float, step: float | None) -> float:
    """Half up to the step (0.5 for an air conditioner) or to a whole number."""
    unit = step if step and step > 0 else 1.0
    return math.floor(value / unit + 0.5 + 1e-9) * unit


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


def _num(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
