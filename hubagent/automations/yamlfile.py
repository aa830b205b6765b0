"""Reading automation YAML: line numbers on every mapping, YAML 1.2 scalars, durations.

Only `true`/`false` are booleans (`to: on` stays the string "on") and `07:30` stays a
string (YAML 1.1 would read it as the base-60 integer 450).
"""

from __future__ import annotations

import re
from typing import Any

import yaml

# -- YAML with line numbers ----------------------------------------------------------


class LineDict(dict):
    """A mapping that remembers its own line and the line of each key (1-based)."""

    line: int = 0
    key_lines: dict[Any, int]


class Loader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: Loader, node: yaml.MappingNode) -> LineDict:
    loader.flatten_mapping(node)
    out = LineDict()
    out.line = node.start_mark.line + 1
    out.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                None, None, "unhashable key", key_node.start_mark
            ) from None
        out[key] = loader.construct_object(value_node, deep=True)
        out.key_lines[key] = key_node.start_mark.line + 1
    return out


def _construct_bool(loader: Loader, node: yaml.ScalarNode) -> Any:
    value = loader.construct_scalar(node)
    lowered = str(value).lower()
    return lowered == "true" if lowered in ("true", "false") else value


def _construct_number(kind: type) -> Any:
    def construct(loader: Loader, node: yaml.ScalarNode) -> Any:
        value = str(loader.construct_scalar(node))
        if ":" in value:  # a clock time or duration, not YAML 1.1 base 60
            return value
        base = (
            yaml.SafeLoader.construct_yaml_int
            if kind is int
            else yaml.SafeLoader.construct_yaml_float
        )
        return base(loader, node)

    return construct


Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
Loader.add_constructor("tag:yaml.org,2002:bool", _construct_bool)
Loader.add_constructor("tag:yaml.org,2002:int", _construct_number(int))
Loader.add_constructor("tag:yaml.org,2002:float", _construct_number(float))


def line_of(value: Any, default: int) -> int:
    return getattr(value, "line", default) or default


def key_line(mapping: Any, key: str, default: int) -> int:
    return getattr(mapping, "key_lines", {}).get(key, line_of(mapping, default))


# -- durations -----------------------------------------------------------------------


def parse_duration(value: Any) -> float:
    """Seconds from `"00:05:00"`, `"05:00"` (mm:ss is ambiguous, so HH:MM), `{minutes: 5}`,
    or a number of seconds. ValueError with the reason otherwise."""
    if isinstance(value, bool):
        raise ValueError(f"invalid duration {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, dict):
        units = {"days": 86400, "hours": 3600, "minutes": 60, "seconds": 1, "milliseconds": 0.001}
        unknown = sorted(set(value) - set(units))
        if unknown or not value:
            raise ValueError(f"invalid duration {dict(value)!r} (use {', '.join(units)})")
        seconds = 0.0
        for unit, amount in value.items():
            if isinstance(amount, bool) or not isinstance(amount, int | float):
                raise ValueError(f"invalid duration: {unit} must be a number, got {amount!r}")
            seconds += float(amount) * units[unit]
    elif isinstance(value, str):
        match = re.fullmatch(r"\s*(\d+):([0-5]?\d)(?::([0-5]?\d(?:\.\d+)?))?\s*", value)
        if match:
            h, m, s = match.groups()
            seconds = int(h) * 3600 + int(m) * 60 + float(s or 0)
        else:
            try:
                seconds = float(value)
            except ValueError:
                raise ValueError(
                    f"invalid duration {value!r} (use 'HH:MM:SS', seconds or {{minutes: 5}})"
                ) from None
    else:
        raise ValueError(f"invalid duration {value!r}")
    if seconds < 0:
        raise ValueError(f"invalid duration {value!r}: negative")
    return seconds


def as_tuple(value: Any) -> tuple[Any, ...]:
    if value is None:
        return ()
    return tuple(value) if isinstance(value, list | tuple) else (value,)


def as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def valid_filter(topic: str) -> bool:
    parts = topic.split("/")
    for i, part in enumerate(parts):
        if "#" in part and (part != "#" or i != len(parts) - 1):
            return False
        if "+" in part and part != "+":
            return False
    return True
