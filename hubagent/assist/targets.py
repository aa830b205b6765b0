"""The entity an assistant intent is about (weather entity, list, media player), without
acting: what the ha-intents eval compares with Home Assistant's target entities."""

from __future__ import annotations

from typing import Any

from hubagent.assist.dispatch import AssistRequest
from hubagent.assist.lists import Lists
from hubagent.assist.media import Media
from hubagent.assist.weather import Weather
from hubagent.home.registry import Registry


def assist_target(
    registry: Registry, intent: str, slots: dict[str, Any], area: str | None
) -> str | None:
    """The entity id the intent's handler would use, or None (timers, broadcast, ...)."""
    request = AssistRequest(intent, dict(slots), "", area, "eval", "eval", None, "en")
    found = None
    if intent == "HassGetWeather":
        found = Weather(registry).source(slots.get("name"))
    elif intent.startswith(("HassList", "HassShoppingList")):
        found = Lists(registry, None).find(slots.get("name"))
    elif intent == "HassMediaSearchAndPlay":
        found = Media(registry).player(request)
    return found.entity_id if found is not None else None
