"""Home Assistant MQTT discovery: topic and payload -> normalised config -> `Entity`.

Follows HA's rules: `<prefix>/<component>/[<node_id>/]<object_id>/config`, abbreviated
keys, `~` base-topic expansion, device-based discovery (`device` component with `cmps`
and shared options), removal by an empty payload. Pure functions; the stateful part
(subscriptions, state, availability) lives in `hubagent.mqtt.state.DiscoveryManager`.
"""

from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import dataclass, field
from typing import Any

from hubagent.home.registry import slugify
from hubagent.mqtt.abbreviations import expand_abbreviations
from hubagent.mqtt.capabilities import capabilities
from hubagent.mqtt.templates import TemplateError, renderer
from hubagent.mqtt.topics import reserved_topics_problem
from hubagent.mqtt.validation import (
    NON_ENTITY_PLATFORMS,
    PLATFORMS,
    InvalidConfig,
    validate_component,
    validate_device_discovery,
)
from hubagent.types import Entity

log = logging.getLogger(__name__)

MAX_PAYLOAD_BYTES = 131_072
MAX_STRING_CHARS = 16_384
MAX_TOPIC_CHARS = 1_024
MAX_COMPONENTS = 256

TOPIC_RE = re.compile(
    r"^(?P<component>\w+)/(?:(?P<node_id>[a-zA-Z0-9_-]+)/)?(?P<object_id>[a-zA-Z0-9_-]+)/config$"
)

# HA's platforms (validation.PLATFORMS); triggers and tags only feed automations.
COMPONENTS = PLATFORMS
NON_ENTITY_COMPONENTS = NON_ENTITY_PLATFORMS
_logged_invalid: set[str] = set()  # device-based components already reported (log once)

# Options a device-based config shares with its components (HA's "shared options").
SHARED_OPTIONS = (
    "availability",
    "availability_mode",
    "availability_template",
    "availability_topic",
    "payload_available",
    "payload_not_available",
    "command_topic",
    "state_topic",
    "qos",
    "encoding",
)

_INT_KEYS = frozenset({"qos", "brightness_scale", "speed_range_min", "speed_range_max"})
_INT_KEYS |= {"position_open", "position_closed", "tilt_min", "tilt_max", "white_scale"}
_INT_KEYS |= {"min_mireds", "max_mireds", "min_kelvin", "max_kelvin", "off_delay"}
_INT_KEYS |= {"expire_after", "tilt_opened_value", "tilt_closed_value"}
_FLOAT_KEYS = frozenset({"min", "max", "step", "min_temp", "max_temp", "temp_step"})
_FLOAT_KEYS |= {"precision", "min_humidity", "max_humidity"}
_BOOL_KEYS = frozenset({"retain", "optimistic", "color_temp_kelvin", "brightness"})
_BOOL_KEYS |= {"color_mode", "effect", "enabled_by_default", "force_update", "reports_position"}
_LIST_KEYS = frozenset({"supported_color_modes", "options", "effect_list", "preset_modes"})
_LIST_KEYS |= {"modes", "fan_modes", "swing_modes", "swing_horizontal_modes", "fan_speed_list"}
_LIST_KEYS |= {"supported_features", "available_tones", "event_types"}


class DiscoveryError(ValueError):
    """A discovery message that cannot be used (the manager logs it and carries on)."""


class SchemaRejected(DiscoveryError):
    """A config Home Assistant's platform schema rejects (validation.py)."""


@dataclass
class DiscoveredComponent:
    """One entity config found in a discovery message."""

    key: str  # discovery id: "<node_id> <object_id>[ <component id>]"
    component: str
    config: dict[str, Any]  # normalised: full keys, `~` expanded, shared options merged
    entity: Entity | None  # None for non-entity components (device_automation, tag)


@dataclass
class DiscoveryMessage:
    """What one `.../config` message announces or removes."""

    topic: str
    key: str  # discovery id of the message itself
    components: list[DiscoveredComponent] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)  # component keys to remove
    remove_all: bool = False  # an empty payload: forget everything of this topic
    device_based: bool = False
    invalid: list[tuple[str, str]] = field(default_factory=list)  # (component key, reason)


def parse_topic(topic: str, prefix: str = "homeassistant") -> tuple[str, str | None, str] | None:
    """`(component, node_id, object_id)` of a discovery topic, or None for other topics."""
    if not topic.startswith(prefix + "/"):
        return None
    match = TOPIC_RE.match(topic[len(prefix) + 1 :])
    if match is None:
        return None
    return match["component"], match["node_id"], match["object_id"]


def valid_publish_topic(topic: Any) -> bool:
    """A topic the hub may publish to: a non-empty string without wildcards or NUL."""
    return (
        isinstance(topic, str)
        and 0 < len(topic) <= MAX_TOPIC_CHARS
        and not any(c in topic for c in "+#\x00")
    )


def valid_subscribe_topic(topic: Any) -> bool:
    """A topic filter: wildcards allowed only as whole levels, `#` only last; no NUL."""
    if not isinstance(topic, str) or not 0 < len(topic) <= MAX_TOPIC_CHARS or "\x00" in topic:
        return False
    levels = topic.split("/")
    for i, level in enumerate(levels):
        if ("+" in level or "#" in level) and len(level) > 1:
            return False
        if level == "#" and i != len(levels) - 1:
            return False
    return True


def _expand_base(config: dict[str, Any], base: str) -> None:
    """Replace a leading or trailing `~` in every `*topic` value with `base`."""

    def expand(key: str, value: Any) -> Any:
        if not (isinstance(value, str) and value and key.endswith("topic")):
            return value
        if value[0] == "~":
            value = base + value[1:]
        if value[-1] == "~":
            value = value[:-1] + base
        return value

    for key, value in list(config.items()):
        config[key] = expand(key, value)
    for entry in config.get("availability") or []:
        if isinstance(entry, dict):
            for key, value in list(entry.items()):
                entry[key] = expand(key, value)


def _check_string(value: Any, where: str) -> None:
    if isinstance(value, str):
        if len(value) > MAX_STRING_CHARS:
            raise DiscoveryError(f"{where}: string of {len(value)} characters is too long")
    elif isinstance(value, dict):
        for k, v in value.items():
            _check_string(v, f"{where}.{k}")
    elif isinstance(value, list):
        for v in value:
            _check_string(v, where)


def _coerce(config: dict[str, Any]) -> None:
    """Check and coerce the types of the keys the hub uses; DiscoveryError when wrong."""
    for key, value in list(config.items()):
        if value is None:
            continue
        try:
            if key in _INT_KEYS:
                if isinstance(value, bool):
                    raise TypeError
                config[key] = int(float(value))
            elif key in _FLOAT_KEYS:
                if isinstance(value, bool):
                    raise TypeError
                config[key] = float(value)
                if not math.isfinite(config[key]):
                    raise ValueError
            elif key in _BOOL_KEYS and not isinstance(value, bool):
                if str(value).lower() not in ("true", "false", "1", "0"):
                    raise TypeError
                config[key] = str(value).lower() in ("true", "1")
            elif key in _LIST_KEYS and not isinstance(value, list):
                raise TypeError
        except (TypeError, ValueError, OverflowError):
            raise DiscoveryError(f"option {key!r} has the wrong type: {value!r:.60}") from None
        if key.endswith("template"):
            _check_template(key, value)
        if key.endswith("topic"):
            publish = "command" in key or key in ("set_position_topic", "set_fan_speed_topic")
            ok = valid_publish_topic(value) if publish else valid_subscribe_topic(value)
            if not ok:
                raise DiscoveryError(f"option {key!r} is not a valid topic: {value!r:.60}")
    if isinstance(config.get("schema"), str):  # HA lower-cases the light schema name
        config["schema"] = config["schema"].lower()
    if config.get("qos", 0) not in (0, 1, 2):
        raise DiscoveryError(f"qos must be 0, 1 or 2, got {config['qos']!r}")
    for key in ("name", "unique_id", "object_id", "default_entity_id"):
        value = config.get(key)
        if value is not None and not isinstance(value, str | int | float):
            raise DiscoveryError(f"option {key!r} must be a string")
        if value is not None and key != "name":
            config[key] = str(value)
    if "device" in config and not isinstance(config["device"], dict):
        raise DiscoveryError("option 'device' must be a mapping")
    avty = config.get("availability")
    if avty is not None and not _valid_availability(avty):
        raise DiscoveryError("option 'availability' must be a list of {topic: ...}")
    for entry in avty or []:
        if entry.get("value_template") is not None:
            _check_template("availability.value_template", entry["value_template"])
    if config.get("availability_mode", "latest") not in ("all", "any", "latest"):
        raise DiscoveryError(f"availability_mode {config['availability_mode']!r} is unknown")


def _check_template(key: str, source: Any) -> None:
    """HA rejects a config whose template does not compile; so does the hub."""
    try:
        renderer.validate(source)
    except TemplateError as exc:
        raise DiscoveryError(f"option {key!r}: {exc}") from None


def _valid_availability(avty: Any) -> bool:
    return isinstance(avty, list) and all(
        isinstance(a, dict) and valid_subscribe_topic(a.get("topic")) for a in avty
    )


def _normalise(raw: dict[str, Any], inherited_base: str | None = None) -> dict[str, Any]:
    config = expand_abbreviations(raw)
    base = config.pop("~", inherited_base)
    if base is not None:
        if not isinstance(base, str):
            raise DiscoveryError("`~` must be a string")
        _expand_base(config, base)
    return config


def device_name(config: dict[str, Any]) -> str | None:
    device = config.get("device") or {}
    name = device.get("name") if isinstance(device, dict) else None
    return str(name) if name not in (None, "") else None


def friendly_name(config: dict[str, Any], fallback: str) -> str:
    """The name HA shows: the entity name prefixed by the device name (`has_entity_name`).

    `name: null` means "the device itself"; a name that already starts with the device
    name is kept as it is (HA strips the duplicate prefix).
    """
    dev = device_name(config)
    if "name" in config and config["name"] is None:
        return dev or fallback
    name = config.get("name")
    if name is None or str(name).strip() == "":
        return dev or fallback
    name = str(name).strip()[:255]
    if dev and not name.lower().startswith(dev.lower()):
        return f"{dev} {name}"
    return name


def entity_id_for(component: str, config: dict[str, Any], key: str) -> str:
    """`default_entity_id` (domain forced to the component), else `<component>.<object_id>`,
    else the slug of the friendly name, else of the unique id."""
    wanted = config.get("default_entity_id")
    if wanted:
        return f"{component}.{slugify(str(wanted).split('.', 1)[-1])}"
    if config.get("object_id"):
        return f"{component}.{slugify(str(config['object_id']))}"
    dev = device_name(config)
    if config.get("name") or dev:
        return f"{component}.{slugify(friendly_name(config, ''))}"
    return f"{component}.{slugify(str(config.get('unique_id') or key))}"


def build_entity(component: str, config: dict[str, Any], key: str) -> Entity:
    """The registry entity for a normalised config."""
    entity_id = entity_id_for(component, config, key)
    fallback = entity_id.split(".", 1)[1].replace("_", " ")
    device = config.get("device") if isinstance(config.get("device"), dict) else {}
    mqtt = dict(config)
    mqtt["component"] = component
    if component == "light":
        mqtt.setdefault("schema", "default")
    return Entity(
        entity_id=entity_id,
        name=friendly_name(config, fallback),
        device_class=config.get("device_class")
        if isinstance(config.get("device_class"), str)
        else None,
        attributes=capabilities(component, config),
        mqtt=mqtt,
        source="discovery",
        unique_id=config.get("unique_id"),
        device=dict(device),
    )


def _component(
    component: str, config: dict[str, Any], key: str, prefix: str, bridge: bool
) -> DiscoveredComponent:
    _coerce(config)
    problem = reserved_topics_problem(config, prefix, bridge)
    if problem:  # a device naming the hub's, the broker's or everyone's topics
        raise DiscoveryError(f"component {key!r}: {problem}")
    try:  # what Home Assistant would refuse to set up, the hub does not control either
        validate_component(component, config)
    except InvalidConfig as exc:
        raise SchemaRejected(f"{component} {key!r}: {exc}") from None
    entity = None if component in NON_ENTITY_COMPONENTS else build_entity(component, config, key)
    return DiscoveredComponent(key=key, component=component, config=config, entity=entity)


def parse_message(
    topic: str, payload: bytes | str, prefix: str = "homeassistant"
) -> DiscoveryMessage:
    """Parse one discovery message; DiscoveryError for anything unusable."""
    parts = parse_topic(topic, prefix)
    if parts is None:
        raise DiscoveryError(f"not a discovery topic: {topic[:120]!r}")
    component, node_id, object_id = parts
    key = f"{node_id} {object_id}" if node_id else object_id
    msg = DiscoveryMessage(topic=topic, key=key, device_based=component == "device")
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise DiscoveryError(f"{topic}: payload of {len(payload)} bytes is too large")
    if isinstance(payload, bytes):
        try:
            payload = payload.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DiscoveryError(f"{topic}: payload is not UTF-8") from exc
    if not payload.strip():
        msg.remove_all = True
        return msg
    try:
        raw = json.loads(payload)
    except (ValueError, RecursionError) as exc:
        raise DiscoveryError(f"{topic}: payload is not JSON ({exc})") from exc
    if not isinstance(raw, dict):
        raise DiscoveryError(f"{topic}: payload must be a JSON object")
    _check_string(raw, topic)
    if component == "device":
        _parse_device(msg, raw, prefix, node_id is None)
        return msg
    if component not in PLATFORMS:  # HA does not even subscribe to these
        raise DiscoveryError(f"{topic}: {component!r} is not an MQTT platform of Home Assistant")
    config = _normalise(raw)
    msg.components.append(_component(component, config, key, prefix, node_id is None))
    return msg


def _parse_device(msg: DiscoveryMessage, raw: dict[str, Any], prefix: str, bridge: bool) -> None:
    root = _normalise({k: v for k, v in raw.items() if k not in ("cmps", "components")})
    cmps = raw.get("cmps", raw.get("components"))
    if not isinstance(cmps, dict) or not cmps:
        raise DiscoveryError(f"{msg.topic}: device discovery needs a `cmps` mapping")
    if len(cmps) > MAX_COMPONENTS:
        raise DiscoveryError(f"{msg.topic}: too many components ({len(cmps)})")
    base = raw.get("~") if isinstance(raw.get("~"), str) else None
    parts = {
        cmp_id: _normalise(cmp, base) if isinstance(cmp, dict) else cmp
        for cmp_id, cmp in cmps.items()
    }
    try:  # HA drops the whole message when the device part is wrong
        validate_device_discovery(root, parts)
    except InvalidConfig as exc:
        raise DiscoveryError(f"{msg.topic}: {exc}") from None
    shared = {k: root[k] for k in SHARED_OPTIONS if k in root}
    for cmp_id, cmp in parts.items():
        cmp_key = f"{msg.key} {cmp_id}"
        platform = cmp.pop("platform")
        if not cmp:
            msg.removed.append(cmp_key)  # `{"p": ...}` alone removes the component
            continue
        config = {**shared, **cmp}
        for key in ("device", "origin"):
            if key in root:
                config[key] = root[key]
        try:
            msg.components.append(_component(platform, config, cmp_key, prefix, bridge))
        except SchemaRejected as exc:  # only this component, as HA does; the others stay
            msg.invalid.append((cmp_key, str(exc)))
            if cmp_key not in _logged_invalid and len(_logged_invalid) < 4096:
                _logged_invalid.add(cmp_key)
                log.warning("ignoring component of %s: %s", msg.topic[:200], exc)
