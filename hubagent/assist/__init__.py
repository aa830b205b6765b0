"""The voice assistant's intents that are about no device: timers, lists, weather,
broadcast, media search (HA's sentences and responses, en and zh-hans).

`build()` wires them for a hub; the agent hands recognised intents to `Assistant.handle`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from hubagent.assist.broadcast import Broadcast
from hubagent.assist.dispatch import Assistant
from hubagent.assist.lists import Lists, add_list_entities
from hubagent.assist.media import Media
from hubagent.assist.notify import TimerNotifier
from hubagent.assist.sentences import register as _register_sentences
from hubagent.assist.timer_intents import TimerIntents
from hubagent.assist.timers import RunCommand, TimerManager
from hubagent.assist.weather import Weather
from hubagent.home.registry import Registry
from hubagent.store.assist import ListTable, TimerTable
from hubagent.store.db import Store
from hubagent.types import MqttMessage
from hubagent.understand.matcher import UNSUPPORTED_INTENTS

__all__ = ["ASSIST_INTENTS", "Assistant", "Parts", "build"]

# Every intent the assistant answers (the matcher's `handled`).
ASSIST_INTENTS = UNSUPPORTED_INTENTS
_register_sentences()  # before any matcher of the hub is built


@dataclass
class Parts:
    assistant: Assistant
    timers: TimerManager
    lists: Lists


def build(
    registry: Registry,
    store: Store | None,
    send: Callable[[MqttMessage], object] | None,
    *,
    ha: Any = None,
    lists: Iterable[str] = (),
    run_command: RunCommand | None = None,
) -> Parts:
    """The assistant with its timers (persisted in `store`), lists and notifications."""
    timers = TimerManager(TimerTable(store) if store is not None else None, run_command)
    if send is not None:
        timers.add_listener(TimerNotifier(timers, send))
    add_list_entities(registry, lists)
    list_handler = Lists(registry, ListTable(store) if store is not None else None, ha)
    assistant = Assistant(registry)
    for part in (
        TimerIntents(timers, registry),
        list_handler,
        Weather(registry),
        Broadcast(send),
        Media(registry, ha),
    ):
        assistant.register(part.handlers())
    return Parts(assistant, timers, list_handler)
