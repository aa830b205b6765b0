"""The live registry: entities, areas and floors, and their current state.

Discovery, home files and the Home Assistant bridge write here; understanding, policy and
the interfaces read. Listeners hear about every change (the matcher rebuilds its slot lists,
the store persists state, automations evaluate triggers).
"""

from __future__ import annotations

import re
import threading
import time
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

from hubagent.types import Area, Entity, Floor

# kind is "added", "updated", "removed" or "state"; changed holds the state keys that changed.
Listener = Callable[[str, Entity, dict[str, Any]], None]


def normalize_name(text: str) -> str:
    """Lower-case, accent- and punctuation-free form used to compare names and aliases."""
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode() or text
    text = re.sub(r"[_\-'’.]+", " ", text.lower())
    return re.sub(r"\s+", " ", text).strip()


def slugify(text: str) -> str:
    """`Kitchen Ceiling Light` -> `kitchen_ceiling_light` (stable entity-id part)."""
    slug = normalize_name(text)
    slug = re.sub(r"[^a-z0-9]+", "_", slug).strip("_")
    return slug or "unnamed"


@dataclass(frozen=True)
class Enrichment:
    """What a home file says about a discovered entity: friendlier names, aliases, area."""

    name: str | None = None
    aliases: tuple[str, ...] = ()
    area: str | None = None


class Registry:
    """Thread-safe map of entity id -> Entity, plus areas and floors."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._entities: dict[str, Entity] = {}
        self._areas: dict[str, Area] = {}
        self._floors: dict[str, Floor] = {}
        self._enrich: dict[str, Enrichment] = {}
        self._listeners: list[Listener] = []
        self.version = 0  # bumps on every structural change (not on state changes)
        self._attribute_names: tuple[int, frozenset[str]] = (-1, frozenset())

    # -- listeners -------------------------------------------------------------------
    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def _emit(self, kind: str, entity: Entity, changed: dict[str, Any]) -> None:
        for listener in list(self._listeners):
            listener(kind, entity, changed)

    # -- areas and floors ----------------------------------------------------------------
    def add_floor(self, floor: Floor) -> None:
        with self._lock:
            self._floors[floor.id] = floor
            self.version += 1

    def add_area(self, area: Area) -> None:
        with self._lock:
            self._areas[area.id] = area
            self.version += 1

    @property
    def areas(self) -> list[Area]:
        return list(self._areas.values())

    @property
    def floors(self) -> list[Floor]:
        return list(self._floors.values())

    def area(self, area_id: str | None) -> Area | None:
        return self._areas.get(area_id) if area_id else None

    def find_area(self, name: str) -> Area | None:
        """The area whose id, name or alias matches `name`."""
        key = normalize_name(name)
        for area in self._areas.values():
            names = (area.id, area.name, *area.aliases)
            if key in {normalize_name(n) for n in names}:
                return area
        return None

    # -- entities ----------------------------------------------------------------------
    def attribute_names(self) -> frozenset[str]:
        """Every attribute key any entity has (recomputed only when the registry changes)."""
        version, names = self._attribute_names
        if version != self.version:
            with self._lock:
                version = self.version
                names = frozenset(k for e in self._entities.values() for k in e.attributes)
            self._attribute_names = (version, names)
        return names

    def enrich(self, entity_id: str, enrichment: Enrichment) -> None:
        """Remember names/aliases/area for an entity that discovery may announce later."""
        with self._lock:
            self._enrich[entity_id] = enrichment
            current = self._entities.get(entity_id)
        if current is not None:
            self.upsert(current)

    def upsert(self, entity: Entity) -> Entity:
        """Add or replace an entity (keeping its known state); returns the stored entity."""
        with self._lock:
            extra = self._enrich.get(entity.entity_id)
            if extra is not None:
                entity = replace(
                    entity,
                    name=extra.name or entity.name,
                    aliases=tuple(dict.fromkeys((*entity.aliases, *extra.aliases))),
                    area=extra.area or entity.area,
                )
            old = self._entities.get(entity.entity_id)
            if old is not None and not entity.state:
                entity.state = old.state
                entity.last_changed = old.last_changed
            self._entities[entity.entity_id] = entity
            self.version += 1
        self._emit("updated" if old else "added", entity, {})
        return entity

    def remove(self, entity_id: str) -> Entity | None:
        with self._lock:
            entity = self._entities.pop(entity_id, None)
            if entity is not None:
                self.version += 1
        if entity is not None:
            self._emit("removed", entity, {})
        return entity

    def get(self, entity_id: str) -> Entity | None:
        return self._entities.get(entity_id)

    def __contains__(self, entity_id: object) -> bool:
        return entity_id in self._entities

    def __len__(self) -> int:
        return len(self._entities)

    def all(self) -> list[Entity]:
        """All entities, sorted by id (a stable order for prompts and listings)."""
        with self._lock:
            return sorted(self._entities.values(), key=lambda e: e.entity_id)

    def in_area(self, area_id: str) -> list[Entity]:
        return [e for e in self.all() if e.area == area_id]

    def in_floor(self, floor_id: str) -> list[Entity]:
        areas = {a.id for a in self._areas.values() if a.floor == floor_id}
        return [e for e in self.all() if e.area in areas]

    def find(self, name: str, area: str | None = None) -> list[Entity]:
        """Entities whose name or an alias equals `name` (optionally within an area)."""
        key = normalize_name(name)
        hits = []
        for entity in self.all():
            names = {normalize_name(n) for n in (entity.name, *entity.aliases)}
            names.add(normalize_name(entity.entity_id.split(".", 1)[1]))
            if key in names and (area is None or entity.area == area):
                hits.append(entity)
        return hits

    # -- state -------------------------------------------------------------------------
    def update_state(self, entity_id: str, values: dict[str, Any]) -> dict[str, Any]:
        """Merge `values` into the entity's state; returns the keys that actually changed."""
        with self._lock:
            entity = self._entities.get(entity_id)
            if entity is None:
                return {}
            changed = {k: v for k, v in values.items() if entity.state.get(k) != v}
            if not changed:
                return {}
            old = {k: entity.state.get(k) for k in changed}
            entity.state.update(changed)
            entity.last_changed = time.time()
        self._emit("state", entity, old)
        return changed

    def set_available(self, entity_id: str, available: bool) -> None:
        with self._lock:
            entity = self._entities.get(entity_id)
            if entity is None or entity.available == available:
                return
            entity.available = available
        self._emit("state", entity, {"available": not available})

    def load(
        self, floors: Iterable[Floor], areas: Iterable[Area], entities: Iterable[Entity]
    ) -> None:
        """Add a whole home at once (home files, eval homes)."""
        for floor in floors:
            self.add_floor(floor)
        for area in areas:
            self.add_area(area)
        for entity in entities:
            self.upsert(entity)
