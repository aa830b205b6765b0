"""Command value parsing and unit/colour conversion shared by the simulated devices.

Pure helpers: `BadCommand` is what a firmware raises for a payload it rejects.
"""

from __future__ import annotations

import math
from typing import Any


class BadCommand(ValueError):
    """A command payload the firmware rejects (logged, never raised to the caller)."""


def as_number(value: Any, what: str) -> float:
    if isinstance(value, bool):
        raise BadCommand(f"{what} must be a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise BadCommand(f"{what} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise BadCommand(f"{what} must be a finite number, got {value!r}")
    return number


def percent_to(value: Any, top: int) -> int:
    return round(max(0.0, min(100.0, as_number(value, "value"))) * top / 100)


def rgb_to_xy(r: float, g: float, b: float) -> tuple[float, float]:
    """sRGB (0-255) -> CIE xy, the conversion zigbee2mqtt applies for xy bulbs."""

    def lin(c: float) -> float:
        c /= 255
        return ((c + 0.055) / 1.055) ** 2.4 if c > 0.04045 else c / 12.92

    r, g, b = lin(r), lin(g), lin(b)
    x = r * 0.4124 + g * 0.3576 + b * 0.1805
    y = r * 0.2126 + g * 0.7152 + b * 0.0722
    z = r * 0.0193 + g * 0.1192 + b * 0.9505
    total = x + y + z
    if total <= 0:
        return 0.3127, 0.3290  # black has no chromaticity: report D65 white
    return round(x / total, 4), round(y / total, 4)


def xy_to_rgb(x: float, y: float) -> tuple[int, int, int]:
    """CIE xy -> sRGB (0-255) at full brightness."""
    y = max(y, 1e-6)
    big_x, big_z = x / y, (1 - x - y) / y
    r = big_x * 3.2406 - 1.5372 - big_z * 0.4986
    g = -big_x * 0.9689 + 1.8758 + big_z * 0.0415
    b = big_x * 0.0557 - 0.2040 + big_z * 1.0570
    top = max(r, g, b, 1e-6)

    def gam(c: float) -> int:
        c = max(0.0, c / top)
        c = 1.055 * c ** (1 / 2.4) - 0.055 if c > 0.0031308 else 12.92 * c
        return round(max(0.0, min(1.0, c)) * 255)

    return gam(r), gam(g), gam(b)


def parse_on_off(value: Any, current: str) -> str:
    word = str(value).upper()
    if word in ("ON", "OFF"):
        return word
    if word == "TOGGLE":
        return "OFF" if current == "ON" else "ON"
    raise BadCommand(f"state must be ON, OFF or TOGGLE, got {value!r}")
