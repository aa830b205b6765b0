"""Simulated devices: the discovery config, state and command handling of real firmware.

Pure (no MQTT). Each device owns the topics `<root>/<account>/state`, `.../set`,
`.../<thing>/set` and `.../availability`, where the account is the object part of its
entity id (the ACL contract of `hubagent.security.acl`). Two firmware styles are imitated:
zigbee2mqtt (full keys, JSON state, `availability` list) and ESPHome (abbreviated keys,
plain-text state). Home-file values (percent, kelvin) are converted to the device's own
units (0-254 brightness, mireds) the way the real bridge reports them.

A home-file device may carry a `sim:` mapping: `kind` (default: the entity's domain),
`manufacturer`, `model`, `sw_version` (device block); lights: `color_mode` (`xy` or `rgb`);
sensors: `key` (JSON key of the reading), `unit`, `drift` (noise per tick), `digits`.

This module maps kinds to classes and builds devices from home-file entries. The base class
is in `base`, the built-in kinds in `light`, `esp` and `kinds`, conversions in `values`.
"""

from __future__ import annotations

from typing import Any

from hubagent.sim.base import Message, SimDevice
from hubagent.sim.esp import EspLock, EspSwitch
from hubagent.sim.light import JsonLight
from hubagent.sim.values import (
    BadCommand,
    as_number,
    parse_on_off,
    percent_to,
    rgb_to_xy,
    xy_to_rgb,
)

# Re-exported: callers import the device API from this module.
__all__ = [
    "BadCommand",
    "EspLock",
    "EspSwitch",
    "JsonLight",
    "Message",
    "SimDevice",
    "as_number",
    "kinds",
    "make_device",
    "parse_on_off",
    "percent_to",
    "rgb_to_xy",
    "xy_to_rgb",
]


def kinds() -> dict[str, type[SimDevice]]:
    """Simulator class per kind (`sim.kind`, else the entity's domain)."""
    from hubagent.sim import kinds as more  # builds on this module, so imported late

    return {
        "light": JsonLight,
        "switch": EspSwitch,
        "lock": EspLock,
        "cover": more.Cover,
        "climate": more.Climate,
        "fan": more.Fan,
        "sensor": more.Sensor,
        "binary_sensor": more.BinarySensor,
        "vacuum": more.Vacuum,
    }


def make_device(
    raw: dict[str, Any], *, discovery_prefix: str = "homeassistant", root: str = "home"
) -> SimDevice:
    """A simulated device for one home-file device entry (ValueError when unsupported)."""
    entity_id = str(raw.get("id", ""))
    if "." not in entity_id:
        raise ValueError(f"device id must be '<domain>.<name>', got {entity_id!r}")
    sim = raw.get("sim") or {}
    if not isinstance(sim, dict):
        raise ValueError(f"{entity_id}: 'sim' must be a mapping")
    kind = str(sim.get("kind", entity_id.split(".", 1)[0]))
    table = kinds()
    cls = table.get(kind)
    if cls is None:
        raise ValueError(f"{entity_id}: no simulator for '{kind}' (have {', '.join(table)})")
    try:
        return cls(
            entity_id=entity_id,
            name=str(raw.get("name") or entity_id.split(".", 1)[1].replace("_", " ")),
            attributes={k: dict(v or {}) for k, v in (raw.get("attributes") or {}).items()},
            initial=dict(raw.get("state") or {}),
            device_class=raw.get("device_class"),
            sim=dict(sim),
            discovery_prefix=discovery_prefix,
            root=root,
        )
    except (TypeError, ValueError, AttributeError) as exc:  # a malformed entry, not a bug
        raise ValueError(f"{entity_id}: unusable attributes or state: {exc}") from None
