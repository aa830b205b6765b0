"""The assistant: Home Assistant's intents about no device, answered by the hub.

The local matcher recognises them (built with `handled=Assistant.intents`) and passes
them on unresolved; the agent gives the Understanding to `Assistant.handle`, which runs
the intent's handler and puts the spoken answer (from the intents package's response
templates, in the request's language) into it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hubagent import language as lang
from hubagent.assist.context import current as current_origin
from hubagent.home.registry import Registry
from hubagent.types import Entity, Understanding
from hubagent.understand.answers import render_answer
from hubagent.understand.slots import load_language

log = logging.getLogger(__name__)


@dataclass
class AssistRequest:
    """One recognised intent with what the handlers need to know about the request."""

    intent: str
    slots: dict[str, Any]
    text: str
    area: str | None  # registry area id the request comes from (satellite or interface)
    requester: str
    channel: str
    satellite: str | None
    language: str

    def area_name(self, registry: Registry) -> str | None:
        """The area the request names, else the one it comes from (as a name)."""
        named = self.slots.get("area")
        if isinstance(named, str) and named:
            return named
        area = registry.area(self.area) if self.area else None
        return area.name if area is not None else None


Handler = Callable[[AssistRequest], str]


@dataclass
class Assistant:
    """Intent name -> handler; `handle` answers an Understanding in place."""

    registry: Registry
    handlers: dict[str, Handler] = field(default_factory=dict)

    @property
    def intents(self) -> frozenset[str]:
        return frozenset(self.handlers)

    def register(self, handlers: dict[str, Handler]) -> None:
        self.handlers.update(handlers)

    def handles(self, understanding: Understanding) -> bool:
        intent = understanding.intent or {}
        return intent.get("name") in self.handlers and not understanding.steps

    def handle(
        self, understanding: Understanding, *, requester: str, channel: str, area: str | None
    ) -> None:
        """Run the intent's handler; its answer (or a plain apology) becomes the answer."""
        intent = understanding.intent or {}
        origin = current_origin()
        request = AssistRequest(
            intent=str(intent.get("name")),
            slots=dict(intent.get("slots") or {}),
            text=understanding.text,
            area=area,
            requester=requester,
            channel=channel,
            satellite=origin.satellite,
            language=lang.current(),
        )
        try:
            understanding.answer = self.handlers[request.intent](request)
        except Exception:  # noqa: BLE001 - never a traceback to the person asking
            log.exception("assistant: %s failed for %r", request.intent, request.text)
            understanding.answer = phrase("failed", request.language)


def speak(
    intent: str,
    key: str,
    slots: dict[str, Any],
    entities: list[Entity] | None = None,
    language: str | None = None,
) -> str:
    """The intents package's response `key` of `intent`, rendered in the language."""
    data = load_language(language or lang.current())
    responses = data.responses.get(intent) or {}
    template = responses.get(key) or responses.get("default")
    if template is None and responses:
        template = next(iter(responses.values()))
    return render_answer(template, slots, entities or [], []).strip()


def error(key: str, language: str | None = None, slots: dict[str, Any] | None = None) -> str:
    """The intents package's error sentence `key` (e.g. `timer_not_found`)."""
    data = load_language(language or lang.current())
    template = data.errors.get(key)
    if template is None:
        return phrase("failed", language or lang.current())
    return render_answer(template, slots or {}, [], []).strip()


# Sentences the intents package has no template for.
_PHRASES: dict[str, dict[str, str]] = {
    "en": {
        "failed": "Sorry, something went wrong.",
        "no_list": "I can't find that list.",
        "no_item": "{item} is not on the list.",
        "list_empty": "{name} is empty.",
        "list_items": "{name}: {items}.",
        "shopping_list": "Shopping list",
        "no_weather": "I don't know the weather: there is no weather entity or outdoor "
        "temperature sensor.",
        "as_of": " (as of {age} ago)",
        "minutes": "{n} minutes",
        "hours": "{n} hours",
        "no_player": "I can't find a media player that can search for media there.",
        "too_many": "Sorry, {reason}.",
        "timer_done": "{name} timer finished.",
        "timer": "The",
    },
    "zh-hans": {
        "failed": "抱歉，出了点问题。",
        "no_list": "找不到这个清单。",
        "no_item": "清单上没有{item}。",
        "list_empty": "{name}是空的。",
        "list_items": "{name}上有：{items}。",
        "shopping_list": "购物清单",
        "no_weather": "不知道天气：没有天气实体或室外温度传感器。",
        "as_of": "（{age}前的数据）",
        "minutes": "{n}分钟",
        "hours": "{n}小时",
        "no_player": "那里没有能搜索媒体的播放器。",
        "too_many": "抱歉，{reason}。",
        "timer_done": "{name}计时器时间到了。",
        "timer": "",
    },
}


def phrase(key: str, language: str, **values: Any) -> str:
    """One of the assistant's own sentences in `language` (English when not translated)."""
    table = _PHRASES.get(language) or _PHRASES["en"]
    return (table.get(key) or _PHRASES["en"][key]).format(**values)
