"""Home files (`devices/*.yaml`): floors, areas and devices, format in DESIGN.md."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hubagent.home.registry import Enrichment, Registry
from hubagent.types import Area, Entity, Floor


class HomeFileError(ValueError):
    """A home file that cannot be used; the message names file, entry and problem."""


@dataclass
class Home:
    name: str
    language: str = "en"
    floors: list[Floor] = field(default_factory=list)
    areas: list[Area] = field(default_factory=list)
    entities: list[Entity] = field(default_factory=list)
    # Raw device entries, kept for the simulator (which needs its own `sim:` settings).
    raw_devices: list[dict[str, Any]] = field(default_factory=list)


def _aliases(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise HomeFileError(f"{where}: aliases must be a list of strings")


def parse_home(data: Any, where: str) -> Home:
    """Build a Home from already-parsed YAML data."""
    if not isinstance(data, dict):
        raise HomeFileError(f"{where}: top level must be a mapping")
    home = Home(name=str(data.get("name") or where), language=str(data.get("language", "en")))
    for i, f in enumerate(data.get("floors") or []):
        if not isinstance(f, dict) or "id" not in f:
            raise HomeFileError(f"{where}: floors[{i}] needs an 'id'")
        home.floors.append(
            Floor(str(f["id"]), str(f.get("name", f["id"])), _aliases(f.get("aliases"), where))
        )
    for i, a in enumerate(data.get("areas") or []):
        if not isinstance(a, dict) or "id" not in a:
            raise HomeFileError(f"{where}: areas[{i}] needs an 'id'")
        home.areas.append(
            Area(
                str(a["id"]),
                str(a.get("name", a["id"])),
                a.get("floor"),
                _aliases(a.get("aliases"), f"{where}: areas[{i}]"),
            )
        )
    area_ids = {a.id for a in home.areas}
    for i, d in enumerate(data.get("devices") or []):
        w = f"{where}: devices[{i}]"
        if not isinstance(d, dict):
            raise HomeFileError(f"{w} must be a mapping")
        entity_id = d.get("id")
        if not isinstance(entity_id, str) or "." not in entity_id:
            raise HomeFileError(f"{w}: 'id' must be '<domain>.<name>', got {entity_id!r}")
        area = d.get("area")
        if area is not None and area not in area_ids:
            raise HomeFileError(f"{w} ({entity_id}): unknown area '{area}'")
        attributes = d.get("attributes") or {}
        state = d.get("state") or {}
        mqtt = d.get("mqtt") or {}
        for key, val in (("attributes", attributes), ("state", state), ("mqtt", mqtt)):
            if not isinstance(val, dict):
                raise HomeFileError(f"{w} ({entity_id}): '{key}' must be a mapping")
        home.entities.append(
            Entity(
                entity_id=entity_id,
                name=str(d.get("name") or entity_id.split(".", 1)[1].replace("_", " ")),
                area=area,
                aliases=_aliases(d.get("aliases"), w),
                device_class=d.get("device_class"),
                attributes={k: dict(v or {}) for k, v in attributes.items()},
                state=dict(state),
                mqtt=dict(mqtt),
                source="home",
            )
        )
        home.raw_devices.append(d)
    return home


def load_home(path: str | Path) -> Home:
    """Read and validate one home file."""
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise HomeFileError(f"{p}: file not found") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}:" if mark else ""
        raise HomeFileError(f"{p}:{line} invalid YAML: {exc}") from None
    return parse_home(data, str(p))


def apply_home(registry: Registry, home: Home, *, enrich_only: bool = False) -> None:
    """Put a home into the registry.

    With `enrich_only`, devices only add names, aliases and areas to entities that MQTT
    discovery announces (the hub's mode when the devices are real); otherwise they are
    added as static entities too.
    """
    for floor in home.floors:
        registry.add_floor(floor)
    for area in home.areas:
        registry.add_area(area)
    for entity in home.entities:
        registry.enrich(entity.entity_id, Enrichment(entity.name, entity.aliases, entity.area))
        if not enrich_only:
            registry.upsert(entity)
