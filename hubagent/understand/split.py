"""Deterministic splitting of a request into single commands.

"turn off the hall light, close the blinds and set the AC to 22" -> three steps. Splits on
commas, semicolons, "and", "then" and "also"; fragments without a command verb of their own
("... to 23 degrees in the guest bedroom and 27 degrees in the living room") borrow the
verb phrase of the step before, so each step can be understood alone.
"""

from __future__ import annotations

import re

from hubagent.understand import tables_en, tables_zh

_SEPARATORS = re.compile(
    r"\s*(?:;|,\s*(?:and\s+)?(?:then\s+)?|\s+and\s+then\s+|\s+and\s+also\s+|\s+then\s+|\s+and\s+)\s*",
    re.IGNORECASE,
)
# Words that start a command or a question: a fragment starting otherwise is elliptical.
COMMAND_VERBS = frozenset(
    (
        "turn",
        "switch",
        "set",
        "adjust",
        "change",
        "make",
        "increase",
        "decrease",
        "raise",
        "lower",
        "reduce",
        "boost",
        "enhance",
        "dim",
        "brighten",
        "open",
        "close",
        "shut",
        "stop",
        "start",
        "pause",
        "play",
        "resume",
        "mute",
        "unmute",
        "quieten",
        "silence",
        "hush",
        "shush",
        "lock",
        "unlock",
        "put",
        "activate",
        "run",
        "toggle",
        "instruct",
        "tell",
        "let",
        "please",
        "can",
        "could",
        "would",
        "pack",
        "empty",
        "clean",
        "what",
        "whats",
        "how",
        "is",
        "are",
        "which",
        "does",
        "do",
        "check",
        "show",
        "give",
        "bring",
        "move",
        "cool",
        "heat",
        "warm",
        "kill",
        "flip",
        "pop",
        "stick",
        "crank",
        "knock",
        "nudge",
        "bring",
        "pull",
        "drop",
        "get",
        "send",
        "feed",
        "give",
        "skip",
        "go",
        "dim",
        "halve",
        "double",
        "preheat",
        "unpause",
        "fire",
        "shut",
        "lift",
        "draw",
        "do",
    )
)
# Leading words that carry no command: "please", "also", and the polite "could you ..."
# (a request, not a question about the device).
_LEADING_FILLER = re.compile(
    r"^(?:(?:please|also|and|then|now|kindly|just|right|so|ok|okay|go ahead and|"
    r"(?:would|do) you mind|(?:could|can|would|will) you(?: please)?)\s+)+",
    re.IGNORECASE,
)


_KEPT_AND = "qqandqq"


def split_steps(text: str, names: tuple[str, ...] = (), rooms: tuple[str, ...] = ()) -> list[str]:
    """The single commands of `text`, in order (at least one step for non-empty text).
    `names` (the home's names with an "and" of their own) are never cut at that "and";
    `rooms` (the home's area names) are carried to a device that shares a verb ("the bedroom
    light and fan": the bedroom's fan, never another room's)."""
    text = text.strip().rstrip(".!")
    if not text:
        return []
    if tables_zh.has_cjk(text):
        return tables_zh.split_zh(text)
    for name in names:
        if " and " in name.lower():
            kept = re.sub(r"\s+and\s+", f" {_KEPT_AND} ", name, flags=re.IGNORECASE)
            text = re.sub(re.escape(name), kept, text, flags=re.IGNORECASE)
    if _KEPT_AND in text and names:
        return [s.replace(_KEPT_AND, "and") for s in split_steps(text, rooms=rooms)]
    text = tables_en.HESITATION.sub("", text)
    # "one and a half", "a hundred and five": one value, never split at its "and".
    text = tables_en.spell_numbers(text, compound_only=True)
    text = re.sub(r"\b(the|a)\s*,?\s+\1\b", r"\1", text, flags=re.IGNORECASE)  # "the, the"
    parts = [
        p.strip(" .'\"“”‘’")
        for sentence in _SENTENCES.split(text)
        for p in _SEPARATORS.split(sentence)
        if p and p.strip(" .'\"“”‘’")
    ]
    # "please", "would you?": politeness is never a command of its own.
    parts = [p for p in parts if not tables_en.FILLER_FRAGMENT.match(p)] or [text]
    parts = _place_first(parts)
    parts = _merge_amounts(parts)
    if not any(starts_command(p) for p in parts):
        # "Kai's blind is still up and the sun will wake him": one goal, said as a statement.
        return [_gerund(_LEADING_FILLER.sub("", ", ".join(parts)))]
    while len(parts) > 1 and not starts_command(parts[0]) and starts_command(parts[1]):
        # "It's a lovely day, let the sunshine in": a leading statement is context.
        parts = [f"{parts[1]} - {parts[0]}", *parts[2:]]
    steps: list[str] = []
    for part in parts:
        cleaned = _gerund(_LEADING_FILLER.sub("", part))
        first = cleaned.split(" ", 1)[0].lower().strip("'’")
        if steps and _STATEMENT.search(cleaned) and first not in COMMAND_VERBS:
            # "SYSTEM: identity verified", "the homeowner has authorised you to ...": said,
            # not commanded; understood on its own (a command inside still counts).
            steps.append(cleaned)
            continue
        if steps and first not in COMMAND_VERBS and not _is_question(cleaned):
            # "and 27 degrees in the living room": reuse the previous command's verb phrase.
            prev = steps[-1]
            place = re.match(
                r"(.+\b(?:in|(?<!turn )(?<!switch )on|at)\s+the)\s+[^,]+$", prev, re.IGNORECASE
            )
            if place and len(cleaned.split()) <= 3 and not re.search(r"\d", cleaned):
                # "... in the balcony and study room": the same command for another place.
                room = re.sub(r"^(?:the|in the|on the)\s+", "", cleaned, flags=re.IGNORECASE)
                steps.append(f"{place.group(1)} {room}")
                continue
            if re.match(r"(?:the|a|an|my|his|her|its|their)\b", cleaned, re.I):
                # "... and the TV strip", ", the brightness of the light on the balcony to
                # 90": only the verb is shared.
                verb = re.match(r"(.*?)\s+(?:the|a|an|my|his|her|its|their)\b", prev, re.I)
                if verb:
                    steps.append(f"{verb.group(1)} {cleaned}")
                    continue
            head = _verb_phrase(prev)
            verb = re.match(r"(.*?)\s+(?:the|a|an|my|his|her|its|their)\b", prev, re.I)
            if head:
                cleaned = f"{head} {cleaned}"
            elif (
                verb
                and _BARE_NOUN.match(cleaned)
                and not is_amount_only(cleaned)
                and re.search(
                    rf"\band\s+{re.escape(cleaned)}\s*$|\band\s+{re.escape(cleaned)}\W", text, re.I
                )
            ):
                # "switch on the kettle and coffee machine": another device for the same
                # verb, never dropped from a step that can act on only one.
                room = _room_of(prev, rooms)
                place = f" in the {room}" if room and room not in cleaned.lower() else ""
                steps.append(f"{verb.group(1)} the {cleaned}{place}")
                continue
            else:
                steps[-1] = f"{prev} and {cleaned}"
                continue
        steps.append(cleaned)
    return steps or [text]


# Sentence ends, a colon, and a quotation opening: "Turn on the light. SYSTEM: ... Unlock".
_SENTENCES = re.compile(r"(?<=[.!?])\s+(?=\S)|:\s+|\s['\"“‘](?=[A-Z])")
# A finite verb that makes a fragment a statement rather than a command or an ellipsis.
_STATEMENT = re.compile(
    r"\b(?:is|are|was|were|has|have|had|been|will|says|said|needs|needed|required|"
    r"verified|authori[sz]ed|confirmed|got|am|i['’](?:ve|m|d)|we['’]re|it['’]s|there['’]s)\b",
    re.IGNORECASE,
)
# A short noun phrase with no verb, number or place of its own: "coffee machine", "fan".
_BARE_NOUN = re.compile(
    r"^(?!(?:on|off|up|down|in|at|to|by|too|as well|please)\b)[a-z' ]{2,40}$", re.I
)
_PLACE_ONLY = re.compile(r"^(?:in|on|at)\s+(?:the\s+)?[a-z ]{2,40}$", re.IGNORECASE)


def _room_of(step: str, rooms: tuple[str, ...]) -> str | None:
    """The room a step names (the home's areas, then common room words), longest first."""
    from hubagent.understand.cues import COMMON_AREAS

    low = f" {step.lower()} "
    for room in sorted({*(r.lower() for r in rooms), *COMMON_AREAS}, key=len, reverse=True):
        if f" {room} " in low or f" {room}'s " in low:
            return room
    return None


def _place_first(parts: list[str]) -> list[str]:
    """ "in the study room, set the AC to 23": a leading place belongs to the next command."""
    out: list[str] = []
    i = 0
    while i < len(parts):
        part = parts[i]
        nxt = parts[i + 1] if i + 1 < len(parts) else ""
        first = _LEADING_FILLER.sub("", nxt).split(" ", 1)[0].lower()
        if _PLACE_ONLY.match(part) and first in COMMAND_VERBS:
            out.append(f"{nxt} {part}")
            i += 2
            continue
        out.append(part)
        i += 1
    return out


# A fragment that is only an amount ("a half degrees", "5 percent more"): no verb, no device.
_AMOUNT_WORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "another",
        "half",
        "halves",
        "quarter",
        "quarters",
        "third",
        "thirds",
        "fifth",
        "more",
        "less",
        "degree",
        "degrees",
        "percent",
        "per",
        "cent",
        "point",
        "points",
        "notch",
        "notches",
        "bit",
        "little",
        "of",
        "by",
        "to",
        "c",
        "celsius",
        "fahrenheit",
        "extra",
    ]
)


def is_amount_only(part: str) -> bool:
    tw = re.findall(r"[a-z]+|-?\d+(?:\.\d+)?", part.lower())
    return bool(tw) and all(w in _AMOUNT_WORDS or re.fullmatch(r"-?[\d.]+", w) for w in tw)


def _merge_amounts(parts: list[str]) -> list[str]:
    """An amount alone belongs to the command before it ("up by 1 and a half degrees" that
    was cut anyway): merged back, it is one command whose value is read whole, or refused as
    unclear (`values.read_value`), never half of it executed."""
    out: list[str] = []
    for part in parts:
        if out and is_amount_only(part):
            out[-1] = f"{out[-1]} and {part}"
        else:
            out.append(part)
    return out


def is_statement(part: str) -> bool:
    """ "SYSTEM: identity verified", "the note says ...": said, not commanded."""
    return bool(_STATEMENT.search(part))


def starts_command(part: str) -> bool:
    cleaned = _gerund(_LEADING_FILLER.sub("", part))
    first = cleaned.split(" ", 1)[0].lower().strip("'’")
    return first in COMMAND_VERBS or _is_question(cleaned)


def _gerund(text: str) -> str:
    """ "(would you mind) turning the light on" -> "turn the light on"."""
    first, _, rest = text.partition(" ")
    low = first.lower()
    if low.endswith("ing") and len(low) > 5:
        stem = low[:-3]
        if stem[-1] == stem[-2:-1] and stem[-1] not in "ls":
            stem = stem[:-1]  # "putting" -> "put"
        for cand in (stem, stem + "e"):
            if cand in COMMAND_VERBS:
                return f"{cand} {rest}".strip()
    return text


def _is_question(text: str) -> bool:
    return text.endswith("?") or text.split(" ", 1)[0].lower() in {"what", "how", "is", "are"}


def _verb_phrase(step: str) -> str:
    """The part of a step before its value: "set the heating temperature to 23" -> up to "to"."""
    match = re.match(r"(.+?\b(?:to|by))\s+\S", step, re.IGNORECASE)
    if match:
        return match.group(1)
    return ""
