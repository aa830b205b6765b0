"""ESPHome-style simulated switch and lock: abbreviated discovery keys, plain-text state."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from hubagent.sim.base import ORIGIN, SimDevice
from hubagent.sim.values import BadCommand, parse_on_off


@dataclass
class EspSwitch(SimDevice):
    """An ESPHome/Tasmota-style switch: default schema, plain ON/OFF, abbreviated keys."""

    component: ClassVar[str] = "switch"
    plain_state: ClassVar[bool] = True

    def initial_state(self) -> dict[str, Any]:
        return {"state": "ON" if self.initial.get("state") == "on" else "OFF"}

    def esp_config(self) -> dict[str, Any]:
        """Common ESPHome keys: abbreviated, named entity, `avty_t` with its defaults."""
        dev = self.device_block()
        cfg: dict[str, Any] = {
            "name": self.name,
            "obj_id": self.account,
            "def_ent_id": self.entity_id,
            "uniq_id": f"sim_{self.account}_{self.component}",
            "avty_t": self.availability_topic,
            "stat_t": self.state_topic,
            "cmd_t": self.command_topic,
            "dev": {
                "ids": dev["identifiers"],
                "name": dev["name"],
                "sw": dev["sw_version"],
                "mdl": dev["model"],
                "mf": dev["manufacturer"],
            },
            "o": dict(ORIGIN),
        }
        if self.device_class:
            cfg["dev_cla"] = self.device_class
        return cfg

    def discovery_config(self) -> dict[str, Any]:
        return {**self.esp_config(), "pl_on": "ON", "pl_off": "OFF"}

    def apply(self, thing: str | None, text: str) -> None:
        self.state = {"state": parse_on_off(text, self.state["state"])}

    def ha_state(self) -> dict[str, Any]:
        return {"state": self.state["state"].lower()}


@dataclass
class EspLock(EspSwitch):
    """An ESPHome lock: LOCK/UNLOCK/OPEN commands, LOCKED/UNLOCKED state text."""

    component: ClassVar[str] = "lock"

    def initial_state(self) -> dict[str, Any]:
        return {"state": "UNLOCKED" if self.initial.get("state") == "unlocked" else "LOCKED"}

    def discovery_config(self) -> dict[str, Any]:
        return {
            **self.esp_config(),
            "pl_lock": "LOCK",
            "pl_unlk": "UNLOCK",
            "pl_open": "OPEN",
            "stat_locked": "LOCKED",
            "stat_unlocked": "UNLOCKED",
        }

    def apply(self, thing: str | None, text: str) -> None:
        results = {"LOCK": "LOCKED", "UNLOCK": "UNLOCKED", "OPEN": "UNLOCKED"}
        if text not in results:
            raise BadCommand(f"lock takes LOCK, UNLOCK or OPEN, got {text!r}")
        self.state = {"state": results[text]}

    def ha_state(self) -> dict[str, Any]:
        return {"state": self.state["state"].lower()}
