"""Timer events on MQTT: `hubagent/notify/timer/<event>` for each start, change, cancel
and finish, and the retained `hubagent/notify/timers` with the timers still running (so a
display that connects later shows them). Under `hubagent/notify/`, which the hub account
may write."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from hubagent.assist.dispatch import phrase
from hubagent.assist.timers import Timer, TimerManager
from hubagent.types import MqttMessage

TIMER_EVENT_TOPIC = "hubagent/notify/timer/{event}"
TIMERS_STATE_TOPIC = "hubagent/notify/timers"


class TimerNotifier:
    """A TimerManager listener that publishes through `send` (the hub's outbox)."""

    def __init__(self, timers: TimerManager, send: Callable[[MqttMessage], object]) -> None:
        self.timers = timers
        self.send = send

    def __call__(self, event: str, timer: Timer) -> None:
        payload = {"event": event, "time": time.time(), **timer.view()}
        if event == "finished":
            name = timer.name or ""
            payload["announcement"] = " ".join(
                phrase(
                    "timer_done", timer.language, name=name or phrase("timer", timer.language)
                ).split()
            )
        topic = TIMER_EVENT_TOPIC.format(event=event)
        self.send(MqttMessage(topic, json.dumps(payload, ensure_ascii=False), 1))
        self.publish_state()

    def publish_state(self) -> None:
        running = [t.view() for t in self.timers.timers()]
        self.send(MqttMessage(TIMERS_STATE_TOPIC, json.dumps(running, ensure_ascii=False), 1, True))
