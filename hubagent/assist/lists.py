"""Shopping and named todo lists: add, check off, remove, read back.

Named lists are `todo.*` entities of the registry, so the matcher's `name` slot finds them
the way Home Assistant's sentences expect ("add apples to my Trader Joes list"). Lists the
hub keeps itself (the shopping list and the config's `assistant.lists`) live in the store;
lists imported from Home Assistant (its `todo.shopping_list` too) are changed through its
`todo` services instead. The hub's own shopping list is no registry entity: the shopping
list sentences name no list, and a device count should not grow by one.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Any

from hubagent.assist.dispatch import AssistRequest, Handler, phrase, speak
from hubagent.home.registry import Registry, normalize_name
from hubagent.store.assist import ListTable
from hubagent.types import Entity

log = logging.getLogger(__name__)

SHOPPING_LIST = "todo.shopping_list"
SOURCE = "assistant"  # entities of lists the hub keeps itself


def list_entity_id(name: str) -> str:
    return "todo." + (re.sub(r"\W+", "_", name.strip().casefold()).strip("_") or "list")


def add_list_entities(registry: Registry, names: Iterable[str]) -> None:
    """Register the configured lists (unless an entity of that id is known already, e.g.
    imported from Home Assistant)."""
    wanted = {list_entity_id(n): n for n in names if n and n.strip()}
    for entity_id, name in wanted.items():
        if registry.get(entity_id) is None:
            registry.upsert(Entity(entity_id=entity_id, name=name, source=SOURCE))


class Lists:
    """The list intents over local lists (store) and Home Assistant `todo` entities."""

    def __init__(self, registry: Registry, table: ListTable | None, ha: Any = None) -> None:
        self.registry = registry
        self.table = table
        self.ha = ha  # the Home Assistant bridge, when on

    def handlers(self) -> dict[str, Handler]:
        return {
            "HassShoppingListAddItem": self.add,
            "HassShoppingListCompleteItem": self.complete,
            "HassListAddItem": self.add,
            "HassListCompleteItem": self.complete,
            "HassListRemoveItem": self.remove,
            "HubListRead": self.read,
        }

    def shopping_list(self) -> Entity:
        """Home Assistant's shopping list when imported, else the hub's own."""
        return self.registry.get(SHOPPING_LIST) or Entity(
            entity_id=SHOPPING_LIST, name="Shopping list", source=SOURCE
        )

    def get(self, entity_id: str) -> Entity | None:
        if entity_id == SHOPPING_LIST:
            return self.shopping_list()
        entity = self.registry.get(entity_id)
        return entity if entity is not None and entity.domain == "todo" else None

    def find(self, name: str | None) -> Entity | None:
        """The list entity a request names (the shopping list when it names none)."""
        if not name:
            return self.shopping_list()
        said = normalize_name(name)
        for entity in self.registry.all():
            if entity.domain != "todo":
                continue
            if said in {normalize_name(n) for n in (entity.name, *entity.aliases)}:
                return entity
        return None

    # -- intents ------------------------------------------------------------------------
    def add(self, request: AssistRequest) -> str:
        return self._change(request, "add", "item_added")

    def complete(self, request: AssistRequest) -> str:
        return self._change(request, "complete", "item_completed")

    def remove(self, request: AssistRequest) -> str:
        return self._change(request, "remove", "item_deleted")

    def _change(self, request: AssistRequest, how: str, response: str) -> str:
        item = str(request.slots.get("item") or "").strip()
        entity = self.find(request.slots.get("name"))
        if entity is None or not item:
            return phrase("no_list", request.language)
        if entity.source == "homeassistant":
            changed = self._ha(entity, how, item)
        else:
            changed = self._local(entity, how, item)
        if not changed:
            return phrase("no_item", request.language, item=item)
        slots = {**request.slots, "item": item, "name": request.slots.get("name") or entity.name}
        return speak(request.intent, response, slots)

    def _local(self, entity: Entity, how: str, item: str) -> bool:
        if self.table is None:
            return False
        if how == "add":
            return self.table.add(entity.entity_id, item)
        if how == "complete":
            return self.table.complete(entity.entity_id, item) > 0
        return self.table.remove(entity.entity_id, item) > 0

    def _ha(self, entity: Entity, how: str, item: str) -> bool:
        if self.ha is None:
            return False
        service, data = {
            "add": ("add_item", {"item": item}),
            "complete": ("update_item", {"item": item, "status": "completed"}),
            "remove": ("remove_item", {"item": [item]}),
        }[how]
        try:
            self.ha.call_service("todo", service, {"entity_id": entity.entity_id, **data})
        except Exception as exc:  # noqa: BLE001 - HA down or the item unknown: say so
            log.warning("todo.%s on %s failed: %s", service, entity.entity_id, exc)
            return False
        return True

    def read(self, request: AssistRequest) -> str:
        entity = self.find(request.slots.get("name"))
        if entity is None:
            return phrase("no_list", request.language)
        return self.read_back(entity.entity_id, request.language)

    # -- read back ----------------------------------------------------------------------
    def items(self, entity_id: str) -> list[dict[str, Any]]:
        """The list's items (HTTP `GET /api/lists/<id>`)."""
        entity = self.get(entity_id)
        if entity is None:
            raise KeyError(entity_id)
        if entity.source == "homeassistant" and self.ha is not None:
            found = self.ha.call_service(
                "todo", "get_items", {"entity_id": entity_id}, return_response=True
            )
            raw = ((found or {}).get(entity_id) or {}).get("items") or []
            return [{"item": i.get("summary"), "done": i.get("status") == "completed"} for i in raw]
        if self.table is None:
            return []
        return [{"item": i.item, "done": i.done} for i in self.table.items(entity_id, True)]

    def lists(self) -> list[dict[str, str]]:
        found = [e for e in self.registry.all() if e.domain == "todo"]
        if SHOPPING_LIST not in {e.entity_id for e in found}:
            found.insert(0, self.shopping_list())
        return [{"id": e.entity_id, "name": e.name} for e in found]

    def read_back(self, entity_id: str, language: str) -> str:
        """The open items as one sentence."""
        entity = self.get(entity_id)
        name = entity.name if entity else entity_id
        if entity_id == SHOPPING_LIST and (entity is None or entity.source == SOURCE):
            name = phrase("shopping_list", language)
        items = [i["item"] for i in self.items(entity_id) if not i["done"]]
        if not items:
            return phrase("list_empty", language, name=name)
        sep = "、" if language.startswith("zh") else ", "
        return phrase("list_items", language, name=name, items=sep.join(items))
