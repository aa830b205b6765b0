"""Home Assistant 2025.4 MQTT discovery schemas, as data: what HA rejects, the hub rejects.

Written from HA's `components/mqtt/*.py` platform schemas (required keys, value ranges,
"use together" rules, enumerations). A config HA would refuse to set up must not become a
device the hub controls: the hub would otherwise send commands to something Home Assistant
itself ignores. Configs arrive normalised (full key names, `~` expanded, types coerced by
`discovery._coerce`); each check raises `InvalidConfig` naming the key and the reason.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# HA's SUPPORTED_COMPONENTS: there is no MQTT media_player, timer, ... platform.
PLATFORMS = _words(
    "alarm_control_panel binary_sensor button camera climate cover device_automation "
    "device_tracker event fan humidifier image lawn_mower light lock notify number scene "
    "siren select sensor switch tag text update vacuum valve water_heater"
)
NON_ENTITY_PLATFORMS = frozenset({"device_automation", "tag"})

_REQUIRED: dict[str, tuple[str, ...]] = {
    "alarm_control_panel": ("command_topic", "state_topic"),
    "binary_sensor": ("state_topic",),
    "button": ("command_topic",),
    "camera": ("topic",),
    "device_automation": ("automation_type", "device", "subtype", "topic", "type"),
    "event": ("state_topic", "event_types"),
    "fan": ("command_topic",),
    "humidifier": ("command_topic", "target_humidity_command_topic"),
    "light": ("command_topic",),
    "lock": ("command_topic",),
    "notify": ("command_topic",),
    "number": ("command_topic",),
    "scene": ("command_topic",),
    "select": ("command_topic", "options"),
    "sensor": ("state_topic",),
    "siren": ("command_topic",),
    "switch": ("command_topic",),
    "tag": ("topic",),
    "text": ("command_topic",),
    "update": ("state_topic",),
}
# vol.Inclusive groups: all of them or none.
_TOGETHER: dict[str, tuple[tuple[str, ...], ...]] = {
    "climate": (("preset_mode_command_topic", "preset_modes"),),
    "fan": (("preset_mode_command_topic", "preset_modes"),),
    "humidifier": (("modes", "mode_command_topic"),),
}
# Options that only make sense with another one (cover's validate_options and friends).
_NEEDS: dict[str, tuple[tuple[str, str], ...]] = {
    "cover": (
        ("set_position_topic", "position_topic"),
        ("value_template", "state_topic"),
        ("position_template", "position_topic"),
        ("set_position_template", "set_position_topic"),
        ("tilt_command_template", "tilt_command_topic"),
        ("tilt_status_template", "tilt_status_topic"),
    ),
    "climate": (("target_humidity_state_topic", "target_humidity_command_topic"),),
}

# Device classes of the platforms whose lists stay put. Sensor, number and binary_sensor
# classes are not checked: their lists grow every release (zigbee2mqtt 2.12.1 already
# announces `temperature_delta`, newer than 2025.4) and the class only changes display.
_DEVICE_CLASSES: dict[str, frozenset[str]] = {
    "cover": _words("awning blind curtain damper door garage gate shade shutter window"),
    "switch": frozenset({"outlet", "switch"}),
    "button": frozenset({"identify", "restart", "update"}),
    "valve": frozenset({"water", "gas"}),
    "event": frozenset({"doorbell", "button", "motion"}),
    "update": frozenset({"firmware"}),
    "humidifier": frozenset({"humidifier", "dehumidifier"}),
}
_ENUMS: dict[str, dict[str, frozenset[Any]]] = {
    "light": {
        "schema": frozenset({"basic", "json", "template"}),
        "on_command_type": frozenset({"first", "last", "brightness"}),
    },
    "climate": {"precision": frozenset({0.1, 0.5, 1.0}), "temperature_unit": frozenset("CF")},
    "water_heater": {
        "precision": frozenset({0.1, 0.5, 1.0}),
        "temperature_unit": frozenset("CF"),
    },
    "sensor": {
        "state_class": frozenset({"measurement", "measurement_angle", "total", "total_increasing"})
    },
    "text": {"mode": frozenset({"text", "password"})},
    "number": {"mode": frozenset({"auto", "box", "slider"})},
    "device_tracker": {"source_type": frozenset({"gps", "router", "bluetooth", "bluetooth_le"})},
    "camera": {"image_encoding": frozenset({"b64"})},
    "image": {"image_encoding": frozenset({"b64"})},
    "device_automation": {"automation_type": frozenset({"trigger"})},
}
_FEATURE_LISTS: dict[str, frozenset[str]] = {
    "vacuum": _words(
        "start pause stop return_home fan_speed battery status send_command locate clean_spot"
    ),
    "alarm_control_panel": _words(
        "arm_home arm_away arm_night arm_vacation arm_custom_bypass trigger"
    ),
}
# (key, smallest value) for HA's cv.positive_int / vol.Range(min=...) options.
_MINIMUM: dict[str, tuple[tuple[str, float], ...]] = {
    "light": (
        ("brightness_scale", 1),
        ("white_scale", 1),
        ("min_mireds", 0),
        ("max_mireds", 0),
        ("min_kelvin", 0),
        ("max_kelvin", 0),
        ("flash_time_long", 0),
        ("flash_time_short", 0),
    ),
    "fan": (("speed_range_min", 0), ("speed_range_max", 0)),
    "humidifier": (("min_humidity", 0), ("max_humidity", 0)),
    "climate": (("min_humidity", 0), ("max_humidity", 0)),
    "number": (("step", 0.001),),
    "text": (("min", 0), ("max", 0)),
    "sensor": (("expire_after", 0), ("suggested_display_precision", 0)),
    "binary_sensor": (("expire_after", 0), ("off_delay", 0)),
    "update": (("display_precision", 0),),
}
_COLOR_MODES = _words("onoff brightness color_temp hs xy rgb rgbw rgbww white")


class InvalidConfig(ValueError):
    """A discovery config Home Assistant 2025.4 would refuse; the message names the key."""


def _missing(config: dict[str, Any], key: str) -> bool:
    return config.get(key) is None


def _number(config: dict[str, Any], key: str, default: float) -> float:
    value = config.get(key, default)
    try:
        return float(value if value is not None else default)
    except (TypeError, ValueError):
        raise InvalidConfig(f"option {key!r} must be a number, got {value!r:.40}") from None


def _check_device(device: Any, where: str = "device") -> None:
    """HA's MQTT_ENTITY_DEVICE_INFO_SCHEMA: a mapping with identifiers or connections."""
    if not isinstance(device, dict):
        raise InvalidConfig(f"option {where!r} must be a mapping")
    ids, conns = device.get("identifiers"), device.get("connections")
    if not ids and not conns:
        raise InvalidConfig(f"{where} needs at least one of 'identifiers' or 'connections'")
    for conn in conns if isinstance(conns, list) else [conns] if conns else []:
        if not (isinstance(conn, list | tuple) and len(conn) == 2):
            raise InvalidConfig(f"{where}.connections entries must be [type, id] pairs")


def _check_origin(origin: Any) -> None:
    """HA's MQTT_ORIGIN_INFO_SCHEMA: a mapping with a name."""
    if not isinstance(origin, dict) or origin.get("name") in (None, ""):
        raise InvalidConfig("origin ('o') needs a 'name'")


def _check_common(platform: str, config: dict[str, Any]) -> None:
    if "device" in config and config["device"] is not None:
        _check_device(config["device"])
    if "origin" in config and config["origin"] is not None:
        _check_origin(config["origin"])
    if "availability" in config and "availability_topic" in config:
        raise InvalidConfig("options 'availability' and 'availability_topic' are exclusive")
    category = config.get("entity_category")
    if category is not None and category not in ("config", "diagnostic"):
        raise InvalidConfig(f"entity_category {category!r} is not config or diagnostic")


def _check_light(config: dict[str, Any]) -> None:
    schema = str(config.get("schema", "basic")).lower()
    if schema == "template":
        for key in ("command_on_template", "command_off_template"):
            if _missing(config, key):
                raise InvalidConfig(f"template light: required option {key!r} is missing")
    modes = config.get("supported_color_modes")
    if schema == "json" and modes is not None:
        modes = modes if isinstance(modes, list) else [modes]
        unique = set(map(str, modes))
        bad = sorted(unique - _COLOR_MODES)
        exclusive = ("onoff" in unique or "brightness" in unique) and len(unique) > 1
        white = "white" in unique and not unique & {"hs", "xy", "rgb", "rgbw", "rgbww"}
        if not unique or bad or exclusive or white or len(unique) != len(modes):
            raise InvalidConfig(f"supported_color_modes {modes!r:.80} is not a valid set")


def _check_reset(key: str, default: str, options_key: str) -> Callable[[dict[str, Any]], None]:
    def check(config: dict[str, Any]) -> None:
        if str(config.get(key, default)) in map(str, config.get(options_key) or []):
            raise InvalidConfig(f"{options_key} must not contain {key} ({default!r} by default)")

    return check


def _check_range(
    low_key: str, high_key: str, low: float, high: float, strict: bool
) -> Callable[[dict[str, Any]], None]:
    def check(config: dict[str, Any]) -> None:
        a, b = _number(config, low_key, low), _number(config, high_key, high)
        if a > b or (strict and a == b):
            sign = ">" if strict else ">="
            raise InvalidConfig(f"{high_key} ({b:g}) must be {sign} {low_key} ({a:g})")

    return check


def _check_fan(config: dict[str, Any]) -> None:
    if _number(config, "speed_range_min", 1) == 0:
        raise InvalidConfig("speed_range_min must be > 0")
    _check_range("speed_range_min", "speed_range_max", 1, 100, True)(config)
    _check_reset("payload_reset_preset_mode", "None", "preset_modes")(config)


def _check_humidity(low: float, high: float) -> Callable[[dict[str, Any]], None]:
    def check(config: dict[str, Any]) -> None:
        _check_range("min_humidity", "max_humidity", low, high, True)(config)
        if _number(config, "max_humidity", high) > 100:
            raise InvalidConfig("max_humidity must be <= 100")

    return check


def _check_climate(config: dict[str, Any]) -> None:
    if "none" in map(str, config.get("preset_modes") or []):
        raise InvalidConfig("preset_modes must not include the preset mode 'none'")
    _check_humidity(30, 99)(config)


def _check_text(config: dict[str, Any]) -> None:
    _check_range("min", "max", 0, 255, False)(config)
    if _number(config, "max", 255) > 255:
        raise InvalidConfig("text max length must be <= 255")


def _check_valve(config: dict[str, Any]) -> None:
    keys = ("payload_open", "payload_close", "state_open", "state_closed")
    if config.get("reports_position") and any(k in config for k in keys):
        raise InvalidConfig(f"a valve that reports a position cannot set any of {keys}")


def _check_sensor(config: dict[str, Any]) -> None:
    state_class = config.get("state_class")
    if "last_reset_value_template" in config and state_class != "total":
        raise InvalidConfig("last_reset_value_template needs state_class 'total'")
    options = config.get("options")
    if options is None:
        return
    if not options:
        raise InvalidConfig("an empty options list is not allowed")
    if state_class or config.get("unit_of_measurement"):
        raise InvalidConfig("options cannot be used with state_class or unit_of_measurement")
    if config.get("device_class") != "enum":
        raise InvalidConfig("options need device_class 'enum'")


def _check_image(config: dict[str, Any]) -> None:
    topics = [k for k in ("image_topic", "url_topic") if k in config]
    if len(topics) != 1:
        raise InvalidConfig("an image needs exactly one of image_topic or url_topic")
    if "content_type" in config and "url_topic" in config:
        raise InvalidConfig("content_type cannot be used with url_topic")


def _check_tracker(config: dict[str, Any]) -> None:
    if _missing(config, "state_topic") and _missing(config, "json_attributes_topic"):
        raise InvalidConfig("a device tracker needs state_topic or json_attributes_topic")


_CROSS: dict[str, tuple[Callable[[dict[str, Any]], None], ...]] = {
    "light": (_check_light,),
    "fan": (_check_fan,),
    "humidifier": (
        _check_humidity(0, 100),
        _check_reset("payload_reset_mode", "None", "modes"),
    ),
    "climate": (_check_climate,),
    "number": (_check_range("min", "max", 1, 100, False),),
    "text": (_check_text,),
    "valve": (_check_valve,),
    "sensor": (_check_sensor,),
    "image": (_check_image,),
    "device_tracker": (_check_tracker,),
}


def _check_values(platform: str, config: dict[str, Any]) -> None:
    device_class = config.get("device_class")
    allowed = _DEVICE_CLASSES.get(platform)
    if (
        allowed is not None
        and device_class is not None
        and str(device_class).lower() not in allowed
    ):
        raise InvalidConfig(f"device_class {device_class!r:.40} is not a {platform} class")
    for key, values in _ENUMS.get(platform, {}).items():
        value = config.get(key)
        if isinstance(value, str) and key in ("schema", "temperature_unit"):
            value = value.lower() if key == "schema" else value.upper()
        if value is not None and value not in values:
            raise InvalidConfig(f"{key} {value!r:.40} is not one of {sorted(values)}")
    features = config.get("supported_features")
    if platform in _FEATURE_LISTS and features is not None:
        features = features if isinstance(features, list) else [features]
        bad = [f for f in features if f not in _FEATURE_LISTS[platform]]
        if bad:
            raise InvalidConfig(f"supported_features {bad!r:.60} unknown to a {platform}")
    for key, least in _MINIMUM.get(platform, ()):
        if key in config and config[key] is not None and _number(config, key, 0) < least:
            raise InvalidConfig(f"{key} must be >= {least:g}, got {config[key]!r:.20}")


def validate_component(platform: str, config: dict[str, Any]) -> None:
    """Raise InvalidConfig when HA 2025.4 would reject this normalised `platform` config."""
    if platform not in PLATFORMS:
        raise InvalidConfig(f"{platform!r} is not an MQTT discovery platform of Home Assistant")
    if platform == "device_automation" and config.get("device") is not None:
        _check_device(config["device"])
    if platform not in NON_ENTITY_PLATFORMS:
        _check_common(platform, config)
    for key in _REQUIRED.get(platform, ()):
        if _missing(config, key):
            raise InvalidConfig(f"{platform}: required option {key!r} is missing")
    for group in _TOGETHER.get(platform, ()):
        present = [k for k in group if k in config]
        if present and len(present) != len(group):
            raise InvalidConfig(f"options {' and '.join(group)} must be used together")
    for key, needed in _NEEDS.get(platform, ()):
        if key in config and needed not in config:
            raise InvalidConfig(f"option {key!r} must be set together with {needed!r}")
    _check_values(platform, config)
    for check in _CROSS.get(platform, ()):
        check(config)


def validate_device_discovery(root: dict[str, Any], components: dict[str, Any]) -> None:
    """HA's DEVICE_DISCOVERY_SCHEMA for a `device` config: device, origin and per
    component a known platform (`p`) and, for entities, a `unique_id`."""
    if "device" not in root:
        raise InvalidConfig("device discovery needs a 'device' ('dev') mapping")
    _check_device(root["device"])
    if "origin" not in root:
        raise InvalidConfig("device discovery needs an origin ('o') with a 'name'")
    _check_origin(root["origin"])
    for cmp_id, cmp in components.items():
        if not isinstance(cmp, dict):
            raise InvalidConfig(f"component {cmp_id!r} must be a mapping")
        platform = cmp.get("platform")
        if platform not in PLATFORMS:
            raise InvalidConfig(f"component {cmp_id!r}: platform ('p') {platform!r:.40} unknown")
        if platform not in NON_ENTITY_PLATFORMS and len(cmp) > 1 and _missing(cmp, "unique_id"):
            raise InvalidConfig(f"component {cmp_id!r}: 'unique_id' is required")
