"""What the hub says, in the request's language: one table of phrases per language.

A reply is built from an `Outcome` (answer, what was done, questions, refusals). Everything
worded lives in a `Phrases` table (English, Simplified Chinese); adding a language is adding
a table. Where another part of the hub already worded a sentence in English (the policy's
reasons, the understander's details), the English table uses it as is and other tables say
the same from the error code, the device and the values.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hubagent.language import CHINESE, ENGLISH, canonical
from hubagent.types import Action, Entity, Step

if TYPE_CHECKING:
    from hubagent.act.policy import Decision


@dataclass(frozen=True)
class Phrases:
    """Every sentence and word of replies in one language. Templates use `str.format`."""

    not_understood: str
    failed: str  # understanding raised
    done: str  # the sentence of what was done: {items}
    done_verbs: dict[str, str]  # verb -> phrase with {name} (and {value}{unit} when set)
    done_default: str  # a verb without its own phrase: {verb} {name}
    value_suffix: str  # added to a set_* phrase that does not place {value} itself
    clean_area: str  # {name} {rooms}
    which_one: str  # {options}
    step_errors: dict[str, str]  # step error -> text with {what}/{text}/{detail}
    step_detail: str  # a step error the understander explained: {detail} {text}
    step_default: str
    decisions: dict[str, str]  # policy verdict (error) -> text with {reason} {name} {verb}
    decision_default: str
    clamped: str  # {reason} {name}
    confirm_verbs: dict[str, str]  # sensitive verb -> word for the confirmation question
    confirm_verb_default: str
    queued: str  # devices not reachable now: {names} {verb} {within}
    queued_verbs: tuple[str, str]  # the verb for one device, for several
    fixed: dict[str, str] = field(default_factory=dict)  # English sentence -> this language
    # An understander's English detail, by how it starts -> this language (for the tables
    # that cannot show English details as they are).
    details: dict[str, str] = field(default_factory=dict)
    list_sep: str = ", "
    list_last: str = " and "
    or_word: str = " or "
    part_sep: str = " "
    explains_details: bool = True  # the understander's English details can be shown as is
    name_script: re.Pattern[str] | None = None  # prefer an alias in this script as the name


_UNITS = {"set_brightness": "%", "set_position": "%", "set_percentage": "%", "set_volume": "%"}

EN = Phrases(
    not_understood="Sorry, I didn't understand that.",
    failed="Sorry, something went wrong understanding that.",
    done="{items}.",
    done_verbs={
        "turn_on": "turned on {name}",
        "turn_off": "turned off {name}",
        "toggle": "toggled {name}",
        "set_brightness": "set the brightness of {name}",
        "set_color": "changed the colour of {name}",
        "set_color_temp": "changed the colour temperature of {name}",
        "set_percentage": "set the speed of {name}",
        "set_position": "moved {name}",
        "set_temperature": "set the temperature of {name}",
        "set_hvac_mode": "changed the mode of {name}",
        "open": "opened {name}",
        "close": "closed {name}",
        "stop": "stopped {name}",
        "lock": "locked {name}",
        "unlock": "unlocked {name}",
        "activate": "activated {name}",
        "press": "pressed {name}",
        "play": "started {name}",
        "pause": "paused {name}",
        "start": "started {name}",
        "return_to_base": "sent home {name}",
    },
    done_default="{verb} {name}",
    value_suffix=" to {value}{unit}",
    clean_area="sent {name} to clean the {rooms}",
    which_one="Which one: {options}?",
    step_errors={
        "unknown_device": "I can't find {what}.",
        "unknown_attribute": "{what} can't do that.",
        "out_of_range": "That value is out of range for {what}.",
        "not_allowed": "That is not allowed for {what}.",
        "needs_confirmation": "{what} needs confirmation.",
    },
    step_detail="Not done: {detail} ('{text}').",
    step_default="I couldn't do {what}.",
    decisions={},  # the policy's own English sentence
    decision_default="{reason}",
    clamped="{reason}",
    confirm_verbs={},
    confirm_verb_default="",
    queued=(
        "{names} {verb} not reachable right now: the command is queued and sent as soon as it"
        " is back (dropped if that takes more than {within})."
    ),
    queued_verbs=("is", "are"),
)

ZH = Phrases(
    not_understood="抱歉，我没听懂。",
    failed="抱歉，处理这句话时出错了。",
    done="已{items}。",
    done_verbs={
        "turn_on": "打开{name}",
        "turn_off": "关闭{name}",
        "toggle": "切换{name}",
        "set_brightness": "把{name}的亮度调到{value}{unit}",
        "set_color": "把{name}的颜色调成{value}",
        "set_color_temp": "把{name}的色温调到{value}K",
        "set_percentage": "把{name}的风速调到{value}{unit}",
        "set_preset_mode": "把{name}的模式调成{value}",
        "set_position": "把{name}调到{value}{unit}",
        "set_temperature": "把{name}的温度调到{value}度",
        "set_hvac_mode": "把{name}的模式调成{value}",
        "set_fan_mode": "把{name}的风速调成{value}",
        "set_swing_mode": "把{name}的摆风调成{value}",
        "set_humidity": "把{name}的湿度调到{value}%",
        "set_mode": "把{name}的模式调成{value}",
        "set_volume": "把{name}的音量调到{value}{unit}",
        "mute": "设置{name}的静音",
        "open": "打开{name}",
        "close": "关上{name}",
        "stop": "停止{name}",
        "lock": "锁上{name}",
        "unlock": "解锁{name}",
        "activate": "启动{name}",
        "press": "按下{name}",
        "play": "播放{name}",
        "pause": "暂停{name}",
        "next": "让{name}播放下一首",
        "previous": "让{name}播放上一首",
        "start": "启动{name}",
        "return_to_base": "让{name}回去充电",
        "select_option": "把{name}设为{value}",
        "set_value": "把{name}设为{value}",
    },
    done_default="处理{name}",
    value_suffix="为{value}{unit}",
    clean_area="让{name}去打扫{rooms}",
    which_one="哪一个：{options}？",
    step_errors={
        "unknown_device": "没有执行：找不到这个设备（“{text}”）。",
        "unknown_attribute": "没有执行：这个设备不支持这个操作（“{text}”）。",
        "out_of_range": "没有执行：数值超出范围（“{text}”）。",
        "not_allowed": "没有执行：不允许这样做（“{text}”）。",
        "needs_confirmation": "这需要确认（“{text}”）。",
    },
    step_detail="",  # the understander's details are English: say it from the error code
    step_default="没有执行：“{text}”。",
    decisions={
        "unknown_device": "我找不到{name}。",
        "unknown_attribute": "{name}不支持这个操作。",
        "out_of_range": "这个数值超出了{name}的范围。",
        "not_allowed": "不允许这样控制{name}。",
        "needs_confirmation": "要{verb}{name}吗？请说“是”确认。",
    },
    decision_default="没有执行：{name}。",
    clamped="数值超出了{name}的范围，已调到最接近的允许值。",
    confirm_verbs={"unlock": "解锁", "open": "打开", "set_position": "打开", "disarm": "撤防"},
    confirm_verb_default="执行",
    queued="{names}暂时无法连接：命令已排队，恢复后发送（{within}内有效）。",
    queued_verbs=("", ""),
    fixed={
        "There is nothing waiting for confirmation.": "没有等待确认的操作。",
        "That confirmation expired; please ask again.": "确认已过期，请再说一遍。",
        "Okay, cancelled.": "好的，已取消。",
        "Confirm that in the app or over the HTTP API.": "请在应用里或通过 HTTP API 确认。",
    },
    details={
        "the request is too long": "没有执行：这句话太长了，请说得短一些。",
        "too many commands in one request": "没有执行：一次说的命令太多了，请分开说。",
    },
    list_sep="、",
    list_last="和",
    or_word="还是",
    part_sep="",
    explains_details=False,
    name_script=re.compile(r"[\u3400-\u9fff]"),
)

TABLES: dict[str, Phrases] = {ENGLISH: EN, CHINESE: ZH}


def phrases(language: str | None) -> Phrases:
    """The table of `language` (any BCP 47 tag); English when there is none for it."""
    try:
        return TABLES.get(canonical(language or ENGLISH), EN)
    except ValueError:
        return EN


@dataclass
class Outcome:
    """What happened to one request, in the terms a reply needs."""

    done: list[tuple[Action, str]] = field(default_factory=list)  # (action, entity name)
    refused: list[str] = field(default_factory=list)  # reasons, one short clause each
    confirm: list[str] = field(default_factory=list)  # questions to ask
    answer: str | None = None
    queued: list[str] = field(default_factory=list)  # devices whose commands wait for them
    queue_ttl_s: float = 300.0  # how long they wait before they are dropped


def display_name(entity: Entity | None, fallback: str, language: str | None) -> str:
    """The entity's name as this language's replies call it (a Chinese alias in Chinese)."""
    if entity is None:
        return fallback
    script = phrases(language).name_script
    if script is not None:
        for alias in entity.aliases:
            if script.search(alias):
                return alias
    return entity.name


def _join(items: list[str], p: Phrases, last: str | None = None) -> str:
    if len(items) <= 1:
        return "".join(items)
    return p.list_sep.join(items[:-1]) + (last or p.list_last) + items[-1]


def _value(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _phrase(action: Action, name: str, p: Phrases) -> str:
    """ "set the temperature of Bedroom thermostat to 22" / "把卧室空调的温度调到22度"."""
    if action.action == "clean_area":
        area = action.args.get("area")
        rooms = area if isinstance(area, list | tuple) else [area]
        return p.clean_area.format(
            name=name, rooms=_join([str(r).replace("_", " ") for r in rooms], p)
        )
    verb = action.action.replace("_", " ")
    template = p.done_verbs.get(action.action, p.done_default)
    value = next(iter(action.args.values()), None) if action.args else None
    has_value = action.action.startswith("set") and not isinstance(value, dict | list | None)
    unit = _UNITS.get(action.action, "")
    if has_value and "{value}" not in template:
        template += p.value_suffix
    return template.format(name=name, verb=verb, value=_value(value), unit=unit)


def _queued(outcome: Outcome, p: Phrases) -> str:
    """Commands accepted but not sent: their device (or the broker) is not reachable now."""
    names = list(dict.fromkeys(outcome.queued))
    ttl = outcome.queue_ttl_s
    within = f"{round(ttl / 60)} min" if ttl >= 90 else f"{ttl:g} s"
    verb = p.queued_verbs[0] if len(names) == 1 else p.queued_verbs[1]
    return p.queued.format(names=_join(names, p), verb=verb, within=within)


def reply_text(outcome: Outcome, language: str = ENGLISH) -> str:
    """Build the reply: answer, then what was done, then what was refused or needs a yes."""
    p = phrases(language)
    parts: list[str] = []
    if outcome.answer:
        parts.append(outcome.answer)
    if outcome.done:
        text = _join([_phrase(a, n, p) for a, n in outcome.done], p)
        parts.append(p.done.format(items=text[0].upper() + text[1:]))
    if outcome.queued:
        parts.append(_queued(outcome, p))
    parts.extend(outcome.confirm)
    parts.extend(outcome.refused)
    if not parts:
        return p.not_understood
    return p.part_sep.join(part.strip() for part in parts if part.strip())


def step_reason(step: Step, language: str = ENGLISH) -> str:
    """Why a step of the understanding was not done, or the question it asks."""
    p = phrases(language)
    detail = (step.detail or "").strip()
    if detail.startswith("which one? "):  # ask, not "Not done"
        options = detail.removeprefix("which one? ")
        # The understander lists the choices with English punctuation.
        options = options.replace(EN.or_word, p.or_word).replace(EN.list_sep, p.list_sep)
        return p.which_one.format(options=options)
    if detail.startswith("shall I "):  # the model's guess, offered, never done
        return detail[0].upper() + detail[1:]
    known = next((text for start, text in p.details.items() if detail.startswith(start)), None)
    if known is not None:
        return known
    if p.explains_details and " " in detail:  # already a phrase: "no light in Kitchen"
        return p.step_detail.format(detail=detail.rstrip("."), text=step.text)
    what = detail or f"what '{step.text}' refers to"
    template = p.step_errors.get(step.error or "", p.step_default)
    return template.format(what=what, text=step.text, detail=detail)


def decision_reason(decision: Decision, name: str, language: str = ENGLISH) -> str:
    """The policy's verdict on one action as this language says it."""
    p = phrases(language)
    verb = p.confirm_verbs.get(decision.action.action, p.confirm_verb_default)
    if decision.clamped and decision.status != "needs_confirmation":
        return p.clamped.format(reason=decision.reason, name=name)
    template = p.decisions.get(decision.error or "", p.decision_default)
    return template.format(reason=decision.reason, name=name, verb=verb)


def fixed(sentence: str, language: str = ENGLISH) -> str:
    """A sentence another module worded in English, in this language when the table has it."""
    return phrases(language).fixed.get(sentence, sentence)


def failed(language: str = ENGLISH) -> str:
    return phrases(language).failed
