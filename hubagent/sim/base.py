"""The simulated-device base class: topics, discovery payload and command dispatch.

See `hubagent.sim.devices` for the firmware styles and the home-file `sim:` mapping.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any, ClassVar

from hubagent.sim.values import BadCommand

# The logger keeps the name it had before the split, so log lines read as they always did.
log = logging.getLogger("hubagent.sim.devices")

Message = tuple[str, str]  # (topic, payload)
ORIGIN = {"name": "hubagent-sim", "sw": "0.1.0"}


@dataclass
class SimDevice:
    """One simulated device; subclasses say how its firmware talks."""

    entity_id: str
    name: str
    attributes: dict[str, dict[str, Any]] = field(default_factory=dict)
    initial: dict[str, Any] = field(default_factory=dict)  # home-file state (percent, kelvin)
    device_class: str | None = None
    sim: dict[str, Any] = field(default_factory=dict)
    discovery_prefix: str = "homeassistant"
    root: str = "home"
    state: dict[str, Any] = field(default_factory=dict)  # the firmware's own state

    component: ClassVar[str] = ""
    plain_state: ClassVar[bool] = False  # state topic carries text, not JSON
    main_command: ClassVar[bool] = True  # listens on `<root>/<account>/set`

    def __post_init__(self) -> None:
        self.state = self.initial_state()

    # Topics -------------------------------------------------------------------------
    @property
    def account(self) -> str:
        return self.entity_id.split(".", 1)[1]

    @property
    def base(self) -> str:
        return f"{self.root}/{self.account}"

    @property
    def state_topic(self) -> str:
        return f"{self.base}/state"

    @property
    def command_topic(self) -> str:
        return f"{self.base}/set"

    @property
    def availability_topic(self) -> str:
        return f"{self.base}/availability"

    def topic_for(self, thing: str) -> str:
        return f"{self.base}/{thing}/set"

    @property
    def discovery_topic(self) -> str:
        return f"{self.discovery_prefix}/{self.component}/{self.account}/{self.account}/config"

    def command_topics(self) -> list[str]:
        """Every topic the device subscribes to for commands."""
        main = [self.command_topic] if self.main_command else []
        return main + [self.topic_for(t) for t in self.things()]

    def things(self) -> tuple[str, ...]:
        """`<thing>`s of its secondary command topics `<root>/<account>/<thing>/set`."""
        return ()

    # Discovery ----------------------------------------------------------------------
    def device_block(self) -> dict[str, Any]:
        return {
            "identifiers": [f"hubagent_sim_{self.account}"],
            "name": self.name,
            "manufacturer": self.sim.get("manufacturer", "hubagent"),
            "model": self.sim.get("model", f"Simulated {self.component}"),
            "sw_version": str(self.sim.get("sw_version", "1.0.0")),
        }

    def discovery_config(self) -> dict[str, Any]:
        """The retained discovery payload, as this device's firmware would publish it."""
        cfg: dict[str, Any] = {
            "name": None,  # zigbee2mqtt: the entity takes the device's name
            "object_id": self.account,
            "default_entity_id": self.entity_id,
            "unique_id": f"sim_{self.account}_{self.component}",
            "device": self.device_block(),
            "origin": dict(ORIGIN),
            "availability": [{"topic": self.availability_topic}],
            "state_topic": self.state_topic,
        }
        if self.device_class:
            cfg["device_class"] = self.device_class
        if self.main_command:
            cfg["command_topic"] = self.command_topic
        cfg.update(self.extra_config())
        return cfg

    def extra_config(self) -> dict[str, Any]:
        return {}

    def discovery_message(self) -> Message:
        return self.discovery_topic, json.dumps(self.discovery_config(), sort_keys=True)

    # State and commands -------------------------------------------------------------
    def initial_state(self) -> dict[str, Any]:
        return {}

    def state_messages(self) -> list[Message]:
        """The state message(s) the device publishes (retained) now."""
        if self.plain_state:
            return [(self.state_topic, str(self.state.get("state", "")))]
        return [(self.state_topic, json.dumps(self.state, sort_keys=True))]

    def handle_command(self, topic: str, payload: bytes) -> list[Message]:
        """Apply one command; returns the state messages to publish ([] when rejected)."""
        thing = None
        if topic != self.command_topic or not self.main_command:
            thing = next((t for t in self.things() if self.topic_for(t) == topic), None)
            if thing is None:
                log.warning("%s: command on unknown topic %s ignored", self.entity_id, topic)
                return []
        try:
            text = payload.decode("utf-8").strip()
            self.apply(thing, text)
        except (ValueError, TypeError, ArithmeticError) as exc:  # BadCommand, not UTF-8, NaN
            log.warning("%s: bad command %r on %s ignored: %s", self.entity_id, payload, topic, exc)
            return []
        return self.state_messages()

    def apply(self, thing: str | None, text: str) -> None:
        raise BadCommand("this device takes no commands")

    def tick(self, now: float) -> list[Message]:
        """Advance simulated time; returns state messages when something changed."""
        return []

    def ha_state(self) -> dict[str, Any]:
        """The state in home-file terms (percent, kelvin), for tests and benchmarks."""
        return dict(self.state)
