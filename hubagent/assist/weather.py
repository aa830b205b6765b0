"""HassGetWeather from the last known state of a weather entity (Home Assistant bridge or
MQTT), or else of an outdoor temperature sensor; works offline and says how old the
state is when it is not fresh."""

from __future__ import annotations

import time

from hubagent.assist.dispatch import AssistRequest, Handler, phrase, speak
from hubagent.home.registry import Registry, normalize_name
from hubagent.types import Entity

STALE_S = 15 * 60  # older than this, the answer says when it was true
_OUTDOOR = ("outdoor", "outside", "exterior", "garden", "室外", "户外", "外面")


class Weather:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def handlers(self) -> dict[str, Handler]:
        return {"HassGetWeather": self.get}

    def source(self, name: str | None) -> Entity | None:
        """The weather entity named (or the first one), else an outdoor temperature sensor."""
        entities = self.registry.all()
        weather = [e for e in entities if e.domain == "weather"]
        if name:
            said = normalize_name(name)
            named = [
                e for e in weather if said in {normalize_name(n) for n in (e.name, *e.aliases)}
            ]
            weather = named or weather
        if weather:
            return weather[0]
        sensors = [
            e
            for e in entities
            if e.domain == "sensor" and e.device_class == "temperature" and "state" in e.state
        ]
        outdoor = [e for e in sensors if any(w in e.name.casefold() for w in _OUTDOOR)]
        return (outdoor or [None])[0]

    def get(self, request: AssistRequest) -> str:
        entity = self.source(request.slots.get("name"))
        if entity is None:
            return phrase("no_weather", request.language)
        if entity.domain != "weather":
            entity = _as_weather(entity)
        answer = " ".join(speak(request.intent, "default", request.slots, [entity]).split())
        age = time.time() - entity.last_changed
        if age > STALE_S:
            answer = answer.rstrip(".。") + phrase(
                "as_of", request.language, age=_age(age, request.language)
            )
        return answer


def _as_weather(sensor: Entity) -> Entity:
    """A temperature sensor in the shape of a weather state (temperature, no condition)."""
    unit = sensor.state.get("unit_of_measurement") or sensor.mqtt.get("unit_of_measurement")
    return Entity(
        entity_id=sensor.entity_id,
        name=sensor.name,
        state={
            "state": "",
            "temperature": sensor.state.get("state"),
            "temperature_unit": unit or "°C",
        },
        last_changed=sensor.last_changed,
    )


def _age(seconds: float, language: str) -> str:
    if seconds >= 2 * 3600:
        return phrase("hours", language, n=int(seconds // 3600))
    return phrase("minutes", language, n=int(seconds // 60))
