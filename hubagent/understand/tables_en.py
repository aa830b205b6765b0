"""English tables: fillers, amounts, fractions, factors and extremes.

These are vocabulary, not rules about particular requests: the arithmetic that uses them
lives in `values` and is the same for every language (Chinese is read into these forms by
`tables_zh`).
"""

from __future__ import annotations

import re

# Fragments that are politeness or hesitation, never a command of their own.
FILLER_FRAGMENT = re.compile(
    r"^(?:please|pls|would you|could you|will you|can you|thanks|thank you|cheers|ta|um+|uh+|"
    r"er+|erm|hmm+|ok(?:ay)?|right|so|well|now|go ahead|if you (?:would|could|can)|"
    r"would you mind|if you don'?t mind|mate|love|yeah|yes|no)\W*$",
    re.IGNORECASE,
)
# Hesitation words removed inside a command ("get the, uh, the hoover going").
HESITATION = re.compile(r"\b(?:um+|uh+|er+|erm|hmm+)\b[,\s]*", re.IGNORECASE)
# "X - actually no, just Y": only what follows the correction is meant.
SELF_CORRECTION = re.compile(
    r"^.*?(?:[-–—,.;]\s*|\s)(?:actually|no wait|wait|sorry|i mean)\b(?:\s*no\b)?[,\s]*(?:just\s+)?",
    re.IGNORECASE,
)

# "a bit", "a notch": the vague amount (10 points / 1 degree / 5 % humidity, see values).
BIT_WORDS = (
    "a bit", "a little", "a little bit", "a touch", "a notch", "a tad", "slightly", "a smidge",
    "a fraction",
)  # fmt: skip
FRACTIONS: dict[str, float] = {
    "a half": 1 / 2, "half": 1 / 2, "a third": 1 / 3, "one third": 1 / 3, "two thirds": 2 / 3,
    "a quarter": 1 / 4, "one quarter": 1 / 4, "three quarters": 3 / 4, "a fifth": 1 / 5,
}  # fmt: skip
# Words that scale the current value.
FACTORS: dict[str, float] = {
    "twice as": 2.0, "double": 2.0, "halve": 0.5, "half as": 0.5, "three times as": 3.0,
}  # fmt: skip
MAX_PHRASES = (
    "all the way up", "as high as it goes", "as loud as it goes", "as bright as it goes",
    "full blast", "full whack", "max", "maximum", "highest", "full", "fully", "brightest",
    "loudest", "top",
)  # fmt: skip
MIN_PHRASES = (
    "all the way down", "as low as it goes", "as quiet as it goes", "as dim as it goes",
    "min", "minimum", "lowest", "dimmest", "quietest",
)  # fmt: skip
# Colour temperature: warmer light is a lower kelvin (the range's minimum).
WARMEST = ("as warm as it goes", "warmest")
COOLEST = ("as cool as it goes", "coolest", "as cold as it goes")
HALFWAY = ("halfway", "half way", "half open", "half closed", "half-way")

# Goals said instead of commands ("I'm cold", "I need a caffeine fix"): trigger words, the
# kinds of device that serve them (matched against the devices' names, aliases, domain and
# class), the verb, and the direction of a change ("a bit", see values).
# A meal is a pet's goal only when a pet is named with it (see goals._said).
PETS = "cat|kitty|kitten|puss|pussycat|dog|doggy|puppy|pup|pet|pets"
PET_MEALS = "dinner|breakfast|lunch|supper|meal|food|kibble|biscuit|eat|grub"
GOALS: tuple[tuple[tuple[str, ...], tuple[str, ...], str, int], ...] = (
    (("cold", "chilly", "freezing", "nippy", "parky", "warmer", "warm it up", "heat it up"),
     ("climate", "heater", "heating", "radiator"), "set_temperature", 1),
    (("hot", "boiling", "sweltering", "roasting", "stuffy", "baking", "too warm", "cooler",
      "cool down", "cool it down", "cool off"), ("fan",), "turn_on", 0),
    (("hot", "boiling", "sweltering", "roasting", "stuffy", "baking", "too warm", "cooler",
      "cool down", "cool it down", "cool off"), ("climate",), "set_temperature", -1),
    (("coffee", "caffeine", "espresso", "latte", "cappuccino"), ("coffee",), "turn_on", 0),
    (("tea", "cuppa", "brew"), ("kettle",), "turn_on", 0),
    (("hungry", "meow", "meowing", "starving", "empty bowl", "feed", "feeding",
      f"{PETS}+{PET_MEALS}"), ("feeder",), "press", 0),
    (("portion", "portions"), ("portions",), "set_value", 0),
    (("damp", "humid", "muggy", "never going to dry", "condensation", "mould", "mold"),
     ("dehumidifier",), "turn_on", 0),
    (("dark", "can't see", "cannot see", "pitch black", "gloomy", "too dim"),
     ("light",), "turn_on", 0),
    (("too bright", "blinding", "dazzling"), ("light",), "set_brightness", -1),
    (("can't hear", "barely hear", "cannot hear", "too quiet"), ("media_player",),
     "set_volume", 1),
    (("too loud", "a bit loud", "so loud", "noisy", "deafening"), ("media_player",),
     "set_volume", -1),
    (("film", "movie"), ("movie",), "activate", 0),
    (("off to bed", "going to bed", "bedtime", "heading to bed", "turning in"),
     ("good night", "bedtime", "sleep"), "activate", 0),
    (("towel", "shower"), ("towel",), "turn_on", 0),
    (("warm the bed", "cold bed", "bed warm"), ("blanket",), "turn_on", 0),
    (("see right in", "see in", "privacy", "peeking", "nosy", "wake him", "wake me",
      "wake her", "sun in my eyes", "glare"), ("cover",), "close", 0),
    (("sunshine in", "sunshine into", "daylight", "let the sun", "let some light",
      "let the light in", "fresh air"), ("cover",), "open", 0),
    (("cat hair", "crumbs", "dirty floor", "dusty", "dust", "mess on the floor"),
     ("vacuum",), "start", 0),
)  # fmt: skip
# How a person or a room feels ("I'm hot", "it's boiling in here") is a goal only with a
# person or a place as its subject; the temperature word said of a thing ("my tea needs hot
# water", "cold milk") is not a discomfort (see goals._feeling).
FEELING_WORDS = frozenset(
    {"cold", "chilly", "freezing", "nippy", "parky", "hot", "boiling", "sweltering", "roasting",
     "stuffy", "baking", "warm", "warmer", "cooler"}
)  # fmt: skip
FEELING_SUBJECTS = frozenset(
    {"i", "im", "i'm", "me", "we", "were", "we're", "us", "it", "its", "it's", "here", "room",
     "house", "flat", "home", "place", "in", "feel", "feeling", "everyone", "everybody"}
)  # fmt: skip
# Words after a temperature word that keep it a feeling ("hot in here", "cold today").
FEELING_FOLLOWERS = frozenset(
    {"in", "here", "today", "tonight", "now", "and", "but", "so", "outside", "upstairs",
     "downstairs", "out", "again", "already", "still", "up", "down", "off", "it", "please",
     "cold", "hot", "the", "this", "my", "our", "room", "for", "at", "lately", "right"}
)  # fmt: skip
# Complaints about a state that ask for its opposite ("left his light on", "still up").
UNDO_STATE: tuple[tuple[str, str], ...] = (
    ("left on", "turn_off"), ("still on", "turn_off"), ("left the light on", "turn_off"),
    ("left his light on", "turn_off"), ("left her light on", "turn_off"),
    ("still up", "close"), ("still open", "close"), ("left open", "close"),
)  # fmt: skip

# A goal told in the past is a story, not a wish ("I had a shower this morning").
NARRATIVE = re.compile(
    r"\b(?:had|went|did|was|were|watched|already|yesterday|last night|this morning|earlier|"
    r"used to)\b",
    re.IGNORECASE,
)

# Spelled numbers, read as one value before a request is split or its value read: "one and
# a half" is 1.5 (never "one" and "a half"), "a hundred and five" 105, "seventy five" 75,
# "two point five" 2.5, "3 and a quarter" 3.25.
_UNIT_NUMBERS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13,
    "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18,
    "nineteen": 19,
}  # fmt: skip
_TEN_NUMBERS = {
    "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70,
    "eighty": 80, "ninety": 90,
}  # fmt: skip
_AND_FRACTIONS = {"a half": 0.5, "one half": 0.5, "a quarter": 0.25, "three quarters": 0.75}
_U = "|".join(sorted(_UNIT_NUMBERS, key=len, reverse=True))
_T = "|".join(_TEN_NUMBERS)
_BELOW_100 = rf"(?:(?:{_T})(?:[\s-]+(?:{_U}))?|(?:{_U}))"
_CARDINAL = (
    rf"(?:(?:(?:a|one|{_U})\s+hundred)(?:\s+(?:and\s+)?{_BELOW_100})?|{_BELOW_100}|\d+(?:\.\d+)?)"
)
NUMBER_PHRASE = re.compile(
    rf"\b(?P<whole>{_CARDINAL})"
    rf"(?:\s+point\s+(?P<point>(?:(?:{_U})\b\s*)+)"
    rf"|\s+and\s+(?P<frac>{'|'.join(_AND_FRACTIONS)}))?\b",
    re.IGNORECASE,
)


def _cardinal(text: str) -> float:
    text = text.lower().replace("-", " ")
    if re.fullmatch(r"\d+(?:\.\d+)?", text):
        return float(text)
    total = 0
    tw = [w for w in text.split() if w != "and"]
    if "hundred" in tw:
        i = tw.index("hundred")
        head = tw[:i]
        total = 100 * (1 if head in (["a"], ["one"]) else _UNIT_NUMBERS.get(head[0], 1))
        tw = tw[i + 1 :]
    for w in tw:
        total += _UNIT_NUMBERS.get(w, _TEN_NUMBERS.get(w, 0))
    return float(total)


def spell_numbers(text: str, compound_only: bool = False) -> str:
    """Spelled numbers as digits. With `compound_only`, only the phrases that a splitter or a
    word-by-word reader would cut ("one and a half", "a hundred and five", "two point five",
    "seventy five"); single words ("one" in "the bedroom one") stay as they are."""

    def repl(m: re.Match[str]) -> str:
        whole = m.group("whole")
        compound = bool(m.group("point") or m.group("frac")) or len(re.split(r"[\s-]+", whole)) > 1
        if compound_only and not compound:
            return m.group(0)
        if re.fullmatch(r"a|an", whole.strip(), re.IGNORECASE):
            return m.group(0)
        value = _cardinal(whole)
        if m.group("point"):
            digits = "".join(str(_UNIT_NUMBERS[w.lower()]) for w in m.group("point").split())
            value = float(f"{int(value)}.{digits}")
        elif m.group("frac"):
            value += _AND_FRACTIONS[m.group("frac").lower()]
        return f"{value:g}"

    return NUMBER_PHRASE.sub(repl, text)
