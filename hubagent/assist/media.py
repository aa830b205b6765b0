"""HassMediaSearchAndPlay: search a media player's library and play the best hit.

Only Home Assistant media players can search (`media_player.search_media`, then
`media_player.play_media`); MQTT players have no search, and the answer says so.
"""

from __future__ import annotations

import logging
from typing import Any

from hubagent.assist.dispatch import AssistRequest, Handler, phrase, speak
from hubagent.home.registry import Registry, normalize_name
from hubagent.types import Entity

log = logging.getLogger(__name__)


class Media:
    def __init__(self, registry: Registry, ha: Any = None) -> None:
        self.registry = registry
        self.ha = ha

    def handlers(self) -> dict[str, Handler]:
        return {"HassMediaSearchAndPlay": self.search_and_play}

    def player(self, request: AssistRequest) -> Entity | None:
        """The player named, else one in the named area or the request's area."""
        players = [e for e in self.registry.all() if e.domain == "media_player"]
        name = request.slots.get("name")
        if name:
            said = normalize_name(str(name))
            players = [
                e for e in players if said in {normalize_name(n) for n in (e.name, *e.aliases)}
            ]
        area = request.slots.get("area")
        area_id = (
            (found.id if (found := self.registry.find_area(str(area))) else None)
            if area
            else request.area
        )
        in_area = [e for e in players if area_id and e.area == area_id]
        searchable = [e for e in (in_area or players) if e.source == "homeassistant"]
        return (searchable or [None])[0]

    def search_and_play(self, request: AssistRequest) -> str:
        player = self.player(request)
        if player is None or self.ha is None:
            return phrase("no_player", request.language)
        query: dict[str, Any] = {"entity_id": player.entity_id}
        query["search_query"] = str(request.slots.get("search_query") or "")
        if request.slots.get("media_class"):
            query["media_filter_classes"] = [request.slots["media_class"]]
        try:
            found = self.ha.call_service(
                "media_player", "search_media", query, return_response=True
            )
            hits = ((found or {}).get(player.entity_id) or {}).get("result") or []
            if hits:
                first = hits[0]
                self.ha.call_service(
                    "media_player",
                    "play_media",
                    {
                        "entity_id": player.entity_id,
                        "media_content_id": first.get("media_content_id"),
                        "media_content_type": first.get("media_content_type"),
                    },
                )
        except Exception as exc:  # noqa: BLE001 - HA down or no search support: say so
            log.warning("media search on %s failed: %s", player.entity_id, exc)
            hits = []
        return speak(request.intent, "default", {**request.slots, "media": hits})
