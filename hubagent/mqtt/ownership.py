"""The hub's discovery manager with topic ownership for every topic a config names.

`DiscoveryManager` checks only `*command_topic` keys against the announcing account's tree;
a cover's `set_position_topic` (or any other `*_topic`) on the front door's command topic
got through. This subclass applies `TopicOwnership` (hubagent.mqtt.topics) to all of them;
the manager rejects, counts and logs the config once per component with the key and reason.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from hubagent.home.registry import Registry
from hubagent.mqtt.discovery import DiscoveredComponent, parse_topic
from hubagent.mqtt.state import DiscoveryManager
from hubagent.mqtt.topics import TopicOwnership


class OwnedDiscoveryManager(DiscoveryManager):
    """A `DiscoveryManager` that holds every config topic to its account's tree."""

    def __init__(
        self,
        registry: Registry,
        prefix: str = "homeassistant",
        subscribe: Callable[[str], None] | None = None,
        device_root: str = "home",
        device_accounts: Iterable[str] = (),
    ) -> None:
        """`device_accounts`: accounts known to be devices (the home files' devices); they
        may name nothing outside `<device_root>/<account>/`, bridges' trees included."""
        super().__init__(registry, prefix, subscribe=subscribe, device_root=device_root)
        self.ownership = TopicOwnership(device_root, frozenset(device_accounts))

    def _foreign_command_topic(self, topic: str, cmp: DiscoveredComponent) -> str | None:
        parsed = parse_topic(topic, self.prefix)
        return self.ownership.foreign_problem(parsed[1] if parsed else None, cmp.config)
