"""One short reply sentence in the request's language, from what was done or refused."""

from __future__ import annotations

from dataclasses import dataclass, field

from hubagent.types import Action

_VERB_EN = {
    "turn_on": "turned on",
    "turn_off": "turned off",
    "toggle": "toggled",
    "set_brightness": "set the brightness of",
    "set_color": "changed the colour of",
    "set_color_temp": "changed the colour temperature of",
    "set_percentage": "set the speed of",
    "set_position": "moved",
    "set_temperature": "set the temperature of",
    "set_hvac_mode": "changed the mode of",
    "open": "opened",
    "close": "closed",
    "stop": "stopped",
    "lock": "locked",
    "unlock": "unlocked",
    "activate": "activated",
    "press": "pressed",
    "play": "started",
    "pause": "paused",
    "start": "started",
    "return_to_base": "sent home",
}
_VERB_ZH = {
    "turn_on": "打开了",
    "turn_off": "关闭了",
    "open": "打开了",
    "close": "关上了",
    "lock": "锁上了",
    "unlock": "解锁了",
}


@dataclass
class Outcome:
    """What happened to one request, in the terms a reply needs."""

    done: list[tuple[Action, str]] = field(default_factory=list)  # (action, entity name)
    refused: list[str] = field(default_factory=list)  # reasons, one short clause each
    confirm: list[str] = field(default_factory=list)  # questions to ask
    answer: str | None = None
    queued: list[str] = field(default_factory=list)  # devices whose commands wait for them
    queue_ttl_s: float = 300.0  # how long they wait before they are dropped


_UNITS = {"set_brightness": "%", "set_position": "%", "set_percentage": "%", "set_volume": "%"}


def _phrase_en(action: Action, name: str) -> str:
    """ "set the temperature of Bedroom thermostat to 22"."""
    if action.action == "clean_area":
        area = action.args.get("area")
        rooms = area if isinstance(area, list | tuple) else [area]
        return f"sent {name} to clean the {_join([str(r).replace('_', ' ') for r in rooms], 'en')}"
    phrase = f"{_VERB_EN.get(action.action, action.action.replace('_', ' '))} {name}"
    if action.action.startswith("set") and action.args:
        value = next(iter(action.args.values()))
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, dict | list):
            phrase += f" to {value}{_UNITS.get(action.action, '')}"
    return phrase


def _join(items: list[str], lang: str) -> str:
    if lang.startswith("zh"):
        return "、".join(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _queued(outcome: Outcome, language: str) -> str:
    """Commands accepted but not sent: their device (or the broker) is not reachable now."""
    names = list(dict.fromkeys(outcome.queued))
    ttl = outcome.queue_ttl_s
    within = f"{round(ttl / 60)} min" if ttl >= 90 else f"{ttl:g} s"
    if language.startswith("zh"):
        return f"{'、'.join(names)}暂时无法连接：命令已排队，恢复后发送（{within} 内有效）。"
    verb = "is" if len(names) == 1 else "are"
    return (
        f"{_join(names, language)} {verb} not reachable right now: the command is queued and "
        f"sent as soon as it is back (dropped if that takes more than {within})."
    )


def reply_text(outcome: Outcome, language: str = "en") -> str:
    """Build the reply: answer, then what was done, then what was refused or needs a yes."""
    zh = language.startswith("zh")
    parts: list[str] = []
    if outcome.answer:
        parts.append(outcome.answer)
    if outcome.done:
        if zh:
            parts.append(
                "已"
                + _join([_VERB_ZH.get(a.action, "处理了") + n for a, n in outcome.done], language)
                + "。"
            )
        else:
            phrases = [_phrase_en(a, n) for a, n in outcome.done]
            text = _join(phrases, language)
            parts.append(text[0].upper() + text[1:] + ".")
    if outcome.queued:
        parts.append(_queued(outcome, language))
    parts.extend(outcome.confirm)
    parts.extend(outcome.refused)
    if not parts:
        return "抱歉，我没听懂。" if zh else "Sorry, I didn't understand that."
    return " ".join(p.strip() for p in parts if p.strip())
