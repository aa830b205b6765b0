"""Sandboxed Jinja2 rendering of the `*_template` strings in MQTT discovery configs.

Firmwares ship templates written for Home Assistant, so the environment offers the
variables (`value`, `value_json`) and the HA filters they rely on (`int`, `float`,
`round`, `is_defined`, `from_json`, `to_json`, `iif`, ...). Templates come from the
network: they run in an immutable sandbox with a time and size budget
(`hubagent.mqtt.template_guard`), are size-limited, and compiled once.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import re
import threading
from collections import OrderedDict
from typing import Any

import jinja2

from hubagent.mqtt.template_guard import BudgetExceeded, GuardedEnvironment, render_budgeted

log = logging.getLogger(__name__)

MAX_TEMPLATE_CHARS = 16_384  # real firmware templates are a few hundred characters
_CACHE_SIZE = 2048
_SENTINEL = object()


class TemplateError(ValueError):
    """A template that cannot be compiled or rendered."""


class TemplateBudgetError(TemplateError):
    """A template that went over its time or output budget: treat its source as hostile."""


def _no_default(name: str, value: Any) -> None:
    raise ValueError(f"{name} got invalid input {value!r} and no default was given")


def _to_int(value: Any, default: Any = _SENTINEL, base: int = 10) -> Any:
    try:
        if isinstance(value, str) and base != 10:
            return int(value, base)
        return int(float(value)) if isinstance(value, str) else int(value)
    except (ValueError, TypeError, OverflowError):
        if default is _SENTINEL:
            _no_default("int", value)
        return default


def _to_float(value: Any, default: Any = _SENTINEL) -> Any:
    try:
        return float(value)
    except (ValueError, TypeError):
        if default is _SENTINEL:
            _no_default("float", value)
        return default


def _round(value: Any, precision: int = 0, method: str = "common", default: Any = _SENTINEL):
    try:
        number = float(value)
        if method == "ceil":
            factor = 10**precision
            return math.ceil(number * factor) / factor
        if method == "floor":
            factor = 10**precision
            return math.floor(number * factor) / factor
        if method == "half":
            return round(number * 2) / 2
        return round(number, precision)
    except (ValueError, TypeError):
        if default is _SENTINEL:
            _no_default("round", value)
        return default


def _is_defined(value: Any) -> Any:
    if isinstance(value, jinja2.Undefined):
        value._fail_with_undefined_error()
    return value


def _iif(value: Any, if_true: Any = True, if_false: Any = False, if_none: Any = _SENTINEL):
    if value is None and if_none is not _SENTINEL:
        return if_none
    return if_true if value else if_false


def _from_json(value: Any) -> Any:
    return json.loads(value)


def _to_json(value: Any, ensure_ascii: bool = False, sort_keys: bool = False) -> str:
    return json.dumps(value, ensure_ascii=ensure_ascii, sort_keys=sort_keys)


class _Environment(GuardedEnvironment):
    """A missing key of a JSON object is undefined, not a lookup of the dict's methods
    (`value_json['update']` must not reach `dict.update`)."""

    def getitem(self, obj: Any, argument: Any) -> Any:
        if isinstance(obj, dict) and isinstance(argument, str):
            try:
                return obj[argument]
            except KeyError:
                return self.undefined(obj=obj, name=argument)
        return super().getitem(obj, argument)

    def getattr(self, obj: Any, attribute: str) -> Any:
        if isinstance(obj, dict) and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)


def _build_env() -> GuardedEnvironment:
    env = _Environment(undefined=jinja2.Undefined, autoescape=False)
    filters = {
        "int": _to_int,
        "float": _to_float,
        "round": _round,
        "is_defined": _is_defined,
        "iif": _iif,
        "from_json": _from_json,
        "to_json": _to_json,
        "bool": lambda v, default=_SENTINEL: str(v).lower() in ("1", "true", "on", "yes"),
        "abs": abs,
        "min": lambda v: min(v),
        "max": lambda v: max(v),
    }
    env.filters.update(filters)
    env.guard_filters()
    env.globals.update(
        {
            "int": _to_int,
            "float": _to_float,
            "round": _round,
            "iif": _iif,
            "is_defined": _is_defined,
            "min": min,
            "max": max,
            "bool": filters["bool"],
        }
    )
    return env


# `{{ value_json.a.b }}` / `{{ value_json['a'] }}`: most firmwares' templates. Rendering them
# without Jinja is about 20x cheaper on the ingest path; the result is the same string.
_SIMPLE = re.compile(
    r"^\{\{\s*value_json((?:\.[A-Za-z_]\w*|\[\s*'[^'\\]*'\s*\]|\[\s*\"[^\"\\]*\"\s*\])*)\s*\}\}$"
)
_PART = re.compile(r"\.([A-Za-z_]\w*)|\[\s*'([^'\\]*)'\s*\]|\[\s*\"([^\"\\]*)\"\s*\]")


@functools.lru_cache(maxsize=4096)  # a home has few distinct templates; each message has one
def _simple_path(source: str) -> tuple[str, ...] | None:
    match = _SIMPLE.match(source.strip()) if "value_json" in source else None
    if match is None:
        return None
    return tuple(a or b or c for a, b, c in _PART.findall(match[1]))


def _walk(value: Any, path: tuple[str, ...]) -> Any:
    """The value at `path`, or a private marker when a key is missing (Jinja's Undefined)."""
    for key in path:
        # A key that is also a dict method (`items`) means the method to Jinja: let it decide.
        if not isinstance(value, dict) or key not in value or hasattr(dict, key):
            return _NOT_JSON
        value = value[key]
    return value


class TemplateRenderer:
    """Compiles templates once (LRU cache) and renders them with HA's variables."""

    def __init__(self) -> None:
        self._env = _build_env()
        self._cache: OrderedDict[str, jinja2.Template] = OrderedDict()
        self._valid: set[str] = set()
        self._lock = threading.Lock()

    def compile(self, source: str) -> jinja2.Template:
        """The compiled template for `source`; TemplateError when invalid or too large."""
        if not isinstance(source, str):
            raise TemplateError(f"template must be a string, got {type(source).__name__}")
        with self._lock:
            cached = self._cache.get(source)
            if cached is not None:
                self._cache.move_to_end(source)
                return cached
        if len(source) > MAX_TEMPLATE_CHARS:
            raise TemplateError(f"template of {len(source)} characters is too large")
        try:
            template = self._env.from_string(source)
        except jinja2.TemplateError as exc:
            raise TemplateError(f"invalid template {source[:80]!r}: {exc}") from exc
        with self._lock:
            self._cache[source] = template
            if len(self._cache) > _CACHE_SIZE:
                self._cache.popitem(last=False)
        return template

    def validate(self, source: str) -> None:
        """Syntax check only (parsing is several times cheaper than compiling); TemplateError
        when invalid. Discovery uses it so a config with a broken template is refused."""
        if not isinstance(source, str):
            raise TemplateError(f"template must be a string, got {type(source).__name__}")
        if source in self._valid or source in self._cache:
            return
        if len(source) > MAX_TEMPLATE_CHARS:
            raise TemplateError(f"template of {len(source)} characters is too large")
        try:
            self._env.parse(source)
        except jinja2.TemplateError as exc:
            raise TemplateError(f"invalid template {source[:80]!r}: {exc}") from exc
        with self._lock:
            if len(self._valid) >= _CACHE_SIZE * 4:
                self._valid.clear()
            self._valid.add(source)

    def render(self, source: str, variables: dict[str, Any]) -> str:
        """Render `source` with `variables`; any failure becomes a TemplateError."""
        template = self.compile(source)
        try:
            return render_budgeted(lambda: template.generate(**variables))
        except BudgetExceeded as exc:
            raise TemplateBudgetError(f"template {source[:80]!r} over budget: {exc}") from None
        except Exception as exc:  # a template from the network may fail in any way
            raise TemplateError(f"template {source[:80]!r} failed: {exc}") from exc

    def render_value(self, source: str, payload: str, extra: dict[str, Any] | None = None) -> str:
        """Render a state `value_template`: `value` is the payload text, `value_json` its
        parsed JSON when it is JSON (left undefined otherwise, as in HA)."""
        variables: dict[str, Any] = {"value": payload}
        value_json = parse_json(payload)
        path = _simple_path(source)
        if path is not None and value_json is not _NOT_JSON:
            found = _walk(value_json, path)
            # Scalars render as Jinja would (str()); anything else takes the full path.
            if found is not _NOT_JSON and not isinstance(found, dict | list):
                return str(found).strip()
        if value_json is not _NOT_JSON:
            variables["value_json"] = value_json
        if extra:
            variables.update(extra)
        return self.render(source, variables).strip()

    def render_command(self, source: str, value: Any, extra: dict[str, Any] | None = None) -> str:
        """Render a `*_command_template` with `value` (and e.g. `position`)."""
        variables = {"value": value}
        if extra:
            variables.update(extra)
        return self.render(source, variables)


_NOT_JSON = object()


def parse_json(payload: str) -> Any:
    """The payload parsed as JSON, or a private sentinel when it is not JSON."""
    text = payload.strip()
    if not text or text[0] not in '{["-0123456789tfn':
        return _NOT_JSON
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return _NOT_JSON


def is_json(value: Any) -> bool:
    return value is not _NOT_JSON


renderer = TemplateRenderer()
