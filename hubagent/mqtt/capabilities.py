"""What a discovered entity can do (capabilities) and the unit conversions HA applies.

`capabilities()` turns a normalised discovery config into `Entity.attributes`, named as the
verbs expect them (types.VERB_CAPABILITY). The conversion helpers (brightness scales,
ranged speeds, positions, colours) follow Home Assistant's `util.color` / `util.percentage`
so the executor publishes exactly what HA would and state parsing reads it back.
"""

from __future__ import annotations

import colorsys
import math
from typing import Any

DEFAULT_MIN_KELVIN = 2000
DEFAULT_MAX_KELVIN = 6535
COLOR_MODES = ("hs", "xy", "rgb", "rgbw", "rgbww")

# HA defaults per platform (components/mqtt/*.py).
CLIMATE_MODES = ["auto", "off", "cool", "heat", "dry", "fan_only"]
CLIMATE_FAN_MODES = ["auto", "low", "medium", "high"]
CLIMATE_SWING_MODES = ["on", "off"]

# A few CSS colour names (HA resolves `color_name` with the CSS3 table).
COLOR_NAMES: dict[str, tuple[int, int, int]] = {
    "red": (255, 0, 0),
    "green": (0, 128, 0),
    "lime": (0, 255, 0),
    "blue": (0, 0, 255),
    "yellow": (255, 255, 0),
    "orange": (255, 165, 0),
    "purple": (128, 0, 128),
    "violet": (238, 130, 238),
    "pink": (255, 192, 203),
    "magenta": (255, 0, 255),
    "fuchsia": (255, 0, 255),
    "cyan": (0, 255, 255),
    "aqua": (0, 255, 255),
    "turquoise": (64, 224, 208),
    "teal": (0, 128, 128),
    "white": (255, 255, 255),
    "warm white": (255, 214, 170),
    "gold": (255, 215, 0),
    "brown": (165, 42, 42),
    "indigo": (75, 0, 130),
    "navy": (0, 0, 128),
    "lavender": (230, 230, 250),
    "salmon": (250, 128, 114),
    "coral": (255, 127, 80),
    "crimson": (220, 20, 60),
    "amber": (255, 191, 0),
}


# -- conversions (HA util.color / util.percentage) ---------------------------------------
def states_in_range(low: float, high: float) -> float:
    return high - low + 1


def percentage_to_ranged_value(low: float, high: float, percentage: float) -> float:
    """0-100 % -> a device speed in [low, high] (HA `percentage_to_ranged_value`)."""
    return states_in_range(low, high) * percentage / 100


def ranged_value_to_percentage(low: float, high: float, value: float) -> int:
    return int(value * 100 // states_in_range(low, high))


def brightness_to_value(low: float, high: float, brightness: float) -> float:
    """0-255 brightness -> device scale [low, high] (HA `brightness_to_value`)."""
    return brightness * states_in_range(low, high) / 255 + (low - 1)


def value_to_brightness(low: float, high: float, value: float) -> int:
    return round((value - (low - 1)) * 255 / states_in_range(low, high))


def percent_to_255(percent: float) -> int:
    """HA turns `brightness_pct` into 0-255 with `round(pct * 255 / 100)`."""
    return round(float(percent) * 255 / 100)


def kelvin_to_mired(kelvin: float) -> int:
    return math.floor(1_000_000 / kelvin)


def mired_to_kelvin(mired: float) -> int:
    return math.floor(1_000_000 / mired)


def rgb_to_hs(rgb: tuple[int, int, int]) -> tuple[float, float]:
    h, s, _ = colorsys.rgb_to_hsv(*(c / 255 for c in rgb))
    return round(h * 360, 3), round(s * 100, 3)


def hs_to_rgb(h: float, s: float) -> tuple[int, int, int]:
    r, g, b = colorsys.hsv_to_rgb(h / 360, s / 100, 1.0)
    return round(r * 255), round(g * 255), round(b * 255)


def rgb_to_xy(rgb: tuple[int, int, int]) -> tuple[float, float]:
    """sRGB -> CIE xy through Wide RGB D65, as HA's `color_RGB_to_xy`."""
    if sum(rgb) == 0:
        return 0.0, 0.0

    def gamma(c: float) -> float:
        c /= 255
        return ((c + 0.055) / 1.055) ** 2.4 if c > 0.04045 else c / 12.92

    r, g, b = (gamma(c) for c in rgb)
    x = r * 0.664511 + g * 0.154324 + b * 0.162028
    y = r * 0.283881 + g * 0.668433 + b * 0.047685
    z = r * 0.000088 + g * 0.072310 + b * 0.986039
    total = x + y + z
    return round(x / total, 3), round(y / total, 3)


def xy_to_rgb(x: float, y: float) -> tuple[int, int, int]:
    """CIE xy -> sRGB at full brightness, as HA's `color_xy_to_RGB`."""
    y = y or 1e-11
    big_x, big_z = x / y, (1 - x - y) / y
    r = big_x * 1.656492 - 0.354851 - big_z * 0.255038
    g = -big_x * 0.707196 + 1.655397 + big_z * 0.036152
    b = big_x * 0.051713 - 0.121364 + big_z * 1.011530

    def gamma(c: float) -> float:
        return max(0.0, 12.92 * c if c <= 0.0031308 else 1.055 * c ** (1 / 2.4) - 0.055)

    channels = [gamma(c) for c in (r, g, b)]
    top = max(channels)
    if top > 1:
        channels = [c / top for c in channels]
    return int(channels[0] * 255), int(channels[1] * 255), int(channels[2] * 255)


def parse_color(value: Any) -> tuple[int, int, int] | None:
    """A colour name, `#rrggbb`, `[r, g, b]` or `{"r","g","b"}` -> rgb, else None."""
    if isinstance(value, str):
        text = value.strip().lower()
        if text in COLOR_NAMES:
            return COLOR_NAMES[text]
        compact = text.replace(" ", "")
        for name, rgb in COLOR_NAMES.items():
            if name.replace(" ", "") == compact:
                return rgb
        if text.startswith("#") and len(text) == 7:
            try:
                return tuple(int(text[i : i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]
            except ValueError:
                return None
        return None
    if isinstance(value, dict) and all(k in value for k in "rgb"):
        value = [value["r"], value["g"], value["b"]]
    if isinstance(value, list | tuple) and len(value) == 3:
        try:
            r, g, b = (max(0, min(255, int(c))) for c in value)
        except (TypeError, ValueError):
            return None
        return r, g, b
    return None


# -- capabilities ---------------------------------------------------------------------
def kelvin_range(config: dict[str, Any]) -> tuple[int, int]:
    """(min, max) colour temperature in kelvin from min/max_kelvin or min/max_mireds."""
    low, high = config.get("min_kelvin"), config.get("max_kelvin")
    if low is None and config.get("max_mireds"):
        low = mired_to_kelvin(config["max_mireds"])
    if high is None and config.get("min_mireds"):
        high = mired_to_kelvin(config["min_mireds"])
    return int(low or DEFAULT_MIN_KELVIN), int(high or DEFAULT_MAX_KELVIN)


def light_color_modes(config: dict[str, Any]) -> list[str]:
    """The light's supported colour modes (declared, or implied by its command topics)."""
    modes = config.get("supported_color_modes")
    if isinstance(modes, list) and modes:
        return [str(m) for m in modes]
    found = [m for m in (*COLOR_MODES, "color_temp") if config.get(f"{m}_command_topic")]
    if config.get("schema") == "json":
        found += [m for m in ("rgb", "xy", "hs", "color_temp") if config.get(m) is True]
    if config.get("schema") == "template":
        if config.get("red_template"):
            found.append("rgb")
        if config.get("color_temp_template"):
            found.append("color_temp")
    return found


def light_has_brightness(config: dict[str, Any]) -> bool:
    schema = config.get("schema", "default")
    modes = light_color_modes(config)
    if any(m not in ("onoff", "white") for m in modes):
        return True
    if schema == "json":
        return bool(config.get("brightness"))
    if schema == "template":
        return bool(config.get("brightness_template"))
    return (
        bool(config.get("brightness_command_topic"))
        or config.get("on_command_type") == "brightness"
    )


def _light(config: dict[str, Any], attrs: dict[str, dict[str, Any]]) -> None:
    modes = light_color_modes(config)
    if light_has_brightness(config):
        attrs["brightness"] = {"min": 0, "max": 100, "unit": "%"}
    if "color_temp" in modes:
        low, high = kelvin_range(config)
        attrs["color_temp"] = {"min": low, "max": high, "unit": "K"}
    color = [m for m in modes if m in COLOR_MODES]
    if color:
        attrs["color"] = {"modes": color}
    effects = [str(e) for e in config.get("effect_list") or []]
    schema = config.get("schema", "basic")
    # HA: a basic light sends effects from its list to effect_command_topic; a JSON light
    # with `effect: true` sends any effect; a template light has one when it lists them.
    basic = schema not in ("json", "template") and bool(config.get("effect_command_topic"))
    if schema == "json" and config.get("effect") is True:
        attrs["effect"] = {"options": effects} if effects else {}
    elif effects and (schema == "template" or basic):
        attrs["effect"] = {"options": effects}


def _options(config: dict[str, Any], key: str, default: list[str] | None = None) -> list[str]:
    value = config.get(key, default)
    return [str(v) for v in value] if isinstance(value, list) else list(default or [])


def _climate(config: dict[str, Any], attrs: dict[str, dict[str, Any]]) -> None:
    unit = config.get("temperature_unit") or "C"
    fahrenheit = str(unit).upper().endswith("F")
    low = config.get("min_temp", 44.6 if fahrenheit else 7.0)
    high = config.get("max_temp", 95.0 if fahrenheit else 35.0)
    step = config.get("temp_step", 1.0)
    if config.get("temperature_command_topic"):
        attrs["temperature"] = {"min": low, "max": high, "step": step, "unit": f"°{unit[-1]}"}
    if config.get("temperature_low_command_topic") or config.get("temperature_high_command_topic"):
        attrs["target_temp_range"] = {"min": low, "max": high, "step": step}
    if config.get("mode_command_topic"):
        attrs["hvac_mode"] = {"options": _options(config, "modes", CLIMATE_MODES)}
    if config.get("fan_mode_command_topic"):
        attrs["fan_mode"] = {"options": _options(config, "fan_modes", CLIMATE_FAN_MODES)}
    if config.get("swing_mode_command_topic"):
        attrs["swing_mode"] = {"options": _options(config, "swing_modes", CLIMATE_SWING_MODES)}
    if config.get("preset_mode_command_topic") and config.get("preset_modes"):
        attrs["preset_mode"] = {"options": _options(config, "preset_modes")}
    if config.get("target_humidity_command_topic"):
        attrs["humidity"] = {
            "min": config.get("min_humidity", 30.0),
            "max": config.get("max_humidity", 99.0),
            "step": 1,
            "unit": "%",
        }


# HA's MQTT vacuum features when the config lists none (DEFAULT_SERVICES).
VACUUM_DEFAULT_FEATURES = ("start", "stop", "return_home", "battery", "clean_spot")


def _vacuum(config: dict[str, Any], attrs: dict[str, dict[str, Any]]) -> None:
    features = config.get("supported_features")
    features = features if isinstance(features, list) else VACUUM_DEFAULT_FEATURES
    speeds = _options(config, "fan_speed_list")
    if speeds and "fan_speed" in features and config.get("set_fan_speed_topic"):
        attrs["fan_speed"] = {"options": speeds}
    if "locate" in features and config.get("command_topic"):
        attrs["locate"] = {}


def capabilities(component: str, config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """`Entity.attributes` for a normalised discovery config of `component`."""
    attrs: dict[str, dict[str, Any]] = {}
    if component == "light":
        _light(config, attrs)
    elif component == "climate":
        _climate(config, attrs)
    elif component == "fan":
        if config.get("percentage_command_topic"):
            low = config.get("speed_range_min", 1)
            high = config.get("speed_range_max", 100)
            step = 100 / max(1, high - low + 1)
            attrs["percentage"] = {"min": 0, "max": 100, "step": round(step, 3), "unit": "%"}
        if config.get("preset_mode_command_topic") and config.get("preset_modes"):
            attrs["preset_mode"] = {"options": _options(config, "preset_modes")}
        if config.get("oscillation_command_topic"):
            attrs["oscillation"] = {"options": [True, False]}
        if config.get("direction_command_topic"):
            attrs["direction"] = {"options": ["forward", "reverse"]}
    elif component in ("cover", "valve"):
        if config.get("set_position_topic") or (
            component == "valve" and config.get("reports_position")
        ):
            attrs["position"] = {"min": 0, "max": 100, "unit": "%"}
        if config.get("tilt_command_topic"):
            attrs["tilt"] = {"min": 0, "max": 100, "unit": "%"}
    elif component == "humidifier":
        if config.get("target_humidity_command_topic"):
            attrs["humidity"] = {
                "min": config.get("min_humidity", 0.0),
                "max": config.get("max_humidity", 100.0),
                "step": 1,
                "unit": "%",
            }
        if config.get("mode_command_topic") and config.get("modes"):
            attrs["mode"] = {"options": _options(config, "modes")}
    elif component == "select":
        attrs["option"] = {"options": _options(config, "options")}
    elif component == "number":
        attrs["value"] = {
            "min": config.get("min", 1.0),
            "max": config.get("max", 100.0),
            "step": config.get("step", 1.0),
        }
        if config.get("unit_of_measurement"):
            attrs["value"]["unit"] = str(config["unit_of_measurement"])
    elif component == "text":
        attrs["value"] = {"min": config.get("min", 0), "max": config.get("max", 255)}
    elif component == "siren":  # HA: volume and duration are supported unless turned off
        if config.get("available_tones"):
            attrs["tone"] = {"options": _options(config, "available_tones")}
        if config.get("support_volume_set", True) is not False:
            attrs["volume"] = {"min": 0, "max": 100, "unit": "%"}
        if config.get("support_duration", True) is not False:
            attrs["duration"] = {"min": 0, "unit": "s"}
    elif component == "vacuum":
        _vacuum(config, attrs)
    elif component == "media_player" and (
        config.get("volume_command_topic") or config.get("volumeset_topic")
    ):
        attrs["volume"] = {"min": 0, "max": 100, "unit": "%"}
    return attrs
