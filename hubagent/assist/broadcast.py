"""HassBroadcast: a message for every satellite and speaker, published on MQTT
(`hubagent/notify/broadcast`) for whatever plays it (satellites, TTS automations)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from hubagent.assist.dispatch import AssistRequest, Handler, speak
from hubagent.types import MqttMessage

BROADCAST_TOPIC = "hubagent/notify/broadcast"

Send = Callable[[MqttMessage], object]


class Broadcast:
    def __init__(self, send: Send | None) -> None:
        self.send = send

    def handlers(self) -> dict[str, Handler]:
        return {"HassBroadcast": self.broadcast}

    def broadcast(self, request: AssistRequest) -> str:
        message = str(request.slots.get("message") or "").strip()
        if self.send is not None and message:
            payload = {
                "message": message,
                "language": request.language,
                "from": request.satellite,
                "area": request.area,
                "time": time.time(),
            }
            self.send(MqttMessage(BROADCAST_TOPIC, json.dumps(payload, ensure_ascii=False), 1))
        return speak(request.intent, "default", request.slots)
