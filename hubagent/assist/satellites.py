"""Satellites know their room: satellite/device id -> area.

From the `satellites:` map of the config, completed (never overridden) by Home Assistant's
device registry when the bridge is on, so a satellite in the kitchen saying "turn on the
lights" means the kitchen's lights.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

from hubagent.home.registry import Registry


class Satellites:
    """Thread-safe id -> area map; ids as HA sends them (device id or satellite entity)."""

    def __init__(self, configured: Mapping[str, str] | None = None) -> None:
        self._configured = {str(k): str(v) for k, v in (configured or {}).items()}
        self._learned: dict[str, str] = {}
        self._lock = threading.Lock()

    def learn(self, found: Mapping[str, str]) -> None:
        """Areas read from Home Assistant; the config's entries win."""
        with self._lock:
            self._learned = {str(k): str(v) for k, v in found.items() if v}

    def area(self, satellite: str | None) -> str | None:
        """The area (as configured: id or name) of a satellite, or None."""
        if not satellite:
            return None
        with self._lock:
            return self._configured.get(satellite) or self._learned.get(satellite)

    def area_id(self, registry: Registry, satellite: str | None, spoken: str | None) -> str | None:
        """The registry area id for a request: the area the interface named, else the
        satellite's; None when neither is a known area."""
        for name in (spoken, self.area(satellite)):
            if name:
                found = registry.find_area(name)
                if found is not None:
                    return found.id
        return None

    def to_dict(self) -> dict[str, str]:
        with self._lock:
            return {**self._learned, **self._configured}
