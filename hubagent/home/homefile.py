"""Home files (`devices/*.yaml`): floors, areas and devices, format in DESIGN.md.

Every problem is reported as `file:line: where: what is wrong`: the YAML is read with a
loader that remembers the line of each mapping, list and value, so the message points at
the entry a person has to fix (never a traceback).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hubagent.home.registry import Enrichment, Registry
from hubagent.types import Area, Entity, Floor


class HomeFileError(ValueError):
    """A home file that cannot be used; the message names file, line, entry and problem."""


@dataclass
class Home:
    name: str
    language: str = "en"
    floors: list[Floor] = field(default_factory=list)
    areas: list[Area] = field(default_factory=list)
    entities: list[Entity] = field(default_factory=list)
    # Raw device entries, kept for the simulator (which needs its own `sim:` settings).
    raw_devices: list[dict[str, Any]] = field(default_factory=list)


# -- YAML with line numbers ----------------------------------------------------------------
class _LineDict(dict):
    """A mapping that knows its line and the line of each key's value."""

    line = 0
    lines: dict[Any, int]


class _LineList(list):
    """A list that knows its line and the line of each item."""

    line = 0
    lines: list[int]


class _Loader(yaml.SafeLoader):
    """SafeLoader whose mappings and lists carry their line numbers."""


def _construct_map(loader: _Loader, node: yaml.MappingNode) -> Any:
    data = _LineDict()
    data.line = node.start_mark.line + 1
    data.lines = {}
    yield data
    data.update(loader.construct_mapping(node))
    for key_node, value_node in node.value:
        if isinstance(key_node, yaml.ScalarNode):
            key = loader.construct_object(key_node)
            data.lines.setdefault(key, value_node.start_mark.line + 1)


def _construct_seq(loader: _Loader, node: yaml.SequenceNode) -> Any:
    data = _LineList()
    data.line = node.start_mark.line + 1
    data.lines = [item.start_mark.line + 1 for item in node.value]
    yield data
    data.extend(loader.construct_sequence(node))


_Loader.add_constructor("tag:yaml.org,2002:map", _construct_map)
_Loader.add_constructor("tag:yaml.org,2002:seq", _construct_seq)


def _plain(value: Any) -> Any:
    """The same data in plain dicts and lists (the line-aware types stay in this module)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _line_of(container: Any, key: Any = None) -> int | None:
    """The line of `container[key]` (or of the container) when it was read from a file."""
    lines = getattr(container, "lines", None)
    if key is not None and lines is not None:
        if isinstance(lines, dict) and key in lines:
            return lines[key]
        if isinstance(lines, list) and isinstance(key, int) and 0 <= key < len(lines):
            return lines[key]
    return getattr(container, "line", None) or None


class _Where:
    """Builds `file:line: entry: problem` messages."""

    def __init__(self, file: str) -> None:
        self.file = file

    def error(self, container: Any, key: Any, entry: str, problem: str) -> HomeFileError:
        line = _line_of(container, key)
        at = f"{self.file}:{line}" if line else self.file
        return HomeFileError(f"{at}: {entry}: {problem}" if entry else f"{at}: {problem}")


# -- checks --------------------------------------------------------------------------------
def _aliases(value: Any, where: _Where, parent: Any, entry: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise where.error(parent, "aliases", entry, "aliases must be a list of strings")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _attribute(name: Any, spec: Any, where: _Where, attrs: Any, entry: str) -> dict[str, Any]:
    """One capability: null/{} (present), a range `{min, max, step?, unit?}` or `{options}`."""
    what = f"{entry}: attribute '{name}'"
    if not isinstance(name, str) or not name:
        raise where.error(attrs, name, entry, f"attribute names must be text, got {name!r}")
    if spec is None:
        return {}
    if not isinstance(spec, dict):
        raise where.error(
            attrs,
            name,
            what,
            f"must be a mapping such as {{min: 0, max: 100}} or {{options: [...]}}, got {spec!r}",
        )
    for key in ("min", "max", "step"):
        if key in spec and not _is_number(spec[key]):
            raise where.error(spec, key, what, f"'{key}' must be a number, got {spec[key]!r}")
    if _is_number(spec.get("min")) and _is_number(spec.get("max")) and spec["min"] > spec["max"]:
        raise where.error(spec, "min", what, f"min {spec['min']} is above max {spec['max']}")
    if "step" in spec and spec["step"] <= 0:
        raise where.error(spec, "step", what, f"'step' must be above 0, got {spec['step']!r}")
    options = spec.get("options")
    if "options" in spec and (
        not isinstance(options, list)
        or not options
        or not all(isinstance(o, str | int | float) for o in options)
    ):
        raise where.error(spec, "options", what, "'options' must be a non-empty list of values")
    if "unit" in spec and not isinstance(spec["unit"], str):
        raise where.error(spec, "unit", what, f"'unit' must be text, got {spec['unit']!r}")
    return _plain(spec)


def _mapping(parent: Any, key: str, where: _Where, entry: str) -> dict[str, Any]:
    value = parent.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise where.error(parent, key, entry, f"'{key}' must be a mapping, got {value!r}")
    return value


def _list(data: dict[str, Any], key: str, where: _Where) -> list[Any]:
    value = data.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise where.error(data, key, "", f"'{key}' must be a list, got {type(value).__name__}")
    return value


def _id(entry: Any, where: _Where, items: Any, i: int, label: str) -> str:
    if not isinstance(entry, dict):
        raise where.error(items, i, label, f"must be a mapping, got {entry!r}")
    value = entry.get("id")
    if not isinstance(value, str | int) or isinstance(value, bool) or str(value) == "":
        raise where.error(entry, "id" if "id" in entry else None, label, "needs an 'id'")
    return str(value)


# -- parsing -------------------------------------------------------------------------------
def parse_home(data: Any, where: str) -> Home:
    """Build a Home from already-parsed YAML data (line numbers when read by `load_home`)."""
    at = _Where(where)
    if not isinstance(data, dict):
        raise at.error(data, None, "", "top level must be a mapping")
    home = Home(name=str(data.get("name") or where), language=str(data.get("language", "en")))
    floors = _list(data, "floors", at)
    for i, f in enumerate(floors):
        label = f"floors[{i}]"
        floor_id = _id(f, at, floors, i, label)
        aliases = _aliases(f.get("aliases"), at, f, label)
        home.floors.append(Floor(floor_id, str(f.get("name", floor_id)), aliases))
    floor_ids = {f.id for f in home.floors}
    areas = _list(data, "areas", at)
    for i, a in enumerate(areas):
        label = f"areas[{i}]"
        area_id = _id(a, at, areas, i, label)
        floor = a.get("floor")
        if floor is not None and floor_ids and str(floor) not in floor_ids:
            raise at.error(a, "floor", f"{label} ({area_id})", f"unknown floor '{floor}'")
        home.areas.append(
            Area(
                area_id,
                str(a.get("name", area_id)),
                floor,
                _aliases(a.get("aliases"), at, a, label),
            )
        )
    area_ids = {a.id for a in home.areas}
    devices = _list(data, "devices", at)
    seen: set[str] = set()
    for i, d in enumerate(devices):
        home.entities.append(_entity(d, at, devices, i, area_ids, seen))
        home.raw_devices.append(_plain(d))
    return home


def _entity(d: Any, at: _Where, devices: Any, i: int, area_ids: set[str], seen: set[str]) -> Entity:
    label = f"devices[{i}]"
    if not isinstance(d, dict):
        raise at.error(devices, i, label, f"must be a mapping, got {d!r}")
    entity_id = d.get("id")
    if not isinstance(entity_id, str) or "." not in entity_id or entity_id.endswith("."):
        raise at.error(
            d,
            "id" if "id" in d else None,
            label,
            f"'id' must be '<domain>.<name>', got {entity_id!r}",
        )
    label = f"{label} ({entity_id})"
    if entity_id in seen:
        raise at.error(d, "id", label, "a second device with this id")
    seen.add(entity_id)
    area = d.get("area")
    if area is not None and area not in area_ids:
        raise at.error(d, "area", label, f"unknown area '{area}'")
    attributes = _mapping(d, "attributes", at, label)
    state = _mapping(d, "state", at, label)
    mqtt = _mapping(d, "mqtt", at, label)
    device_class = d.get("device_class")
    if device_class is not None and not isinstance(device_class, str):
        raise at.error(
            d, "device_class", label, f"'device_class' must be text, got {device_class!r}"
        )
    name = d.get("name")
    if name is not None and not isinstance(name, str | int | float):
        raise at.error(d, "name", label, f"'name' must be text, got {name!r}")
    return Entity(
        entity_id=entity_id,
        name=str(name or entity_id.split(".", 1)[1].replace("_", " ")),
        area=area,
        aliases=_aliases(d.get("aliases"), at, d, label),
        device_class=device_class,
        attributes={k: _attribute(k, v, at, attributes, label) for k, v in attributes.items()},
        state=_plain(state),
        mqtt=_plain(mqtt),
        source="home",
    )


def load_home(path: str | Path) -> Home:
    """Read and validate one home file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise HomeFileError(f"{p}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise HomeFileError(f"{p}: cannot read ({exc})") from None
    try:
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f"{p}:{mark.line + 1}" if mark else str(p)
        problem = getattr(exc, "problem", None) or str(exc)
        raise HomeFileError(f"{at}: invalid YAML: {problem}") from None
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
