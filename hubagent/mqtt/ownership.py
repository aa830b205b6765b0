"""The hub's discovery manager with topic ownership for every topic a config names.

`DiscoveryManager` checks only `*command_topic` keys against the announcing account's tree;
a cover's `set_position_topic` (or any other `*_topic`) on the front door's command topic
got through. This subclass applies `TopicOwnership` (hubagent.mqtt.topics) to all of them;
the manager rejects, counts and logs the config once per component with the key and reason.
Firmware accounts (`acl.accounts`) bring their own trees: a zigbee2mqtt bridge's configs may
name `zigbee2mqtt/...`, a Tasmota's `cmnd/<topic>/...`, and neither the other's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from hubagent.home.registry import Registry
from hubagent.mqtt.discovery import DiscoveredComponent, parse_topic
from hubagent.mqtt.state import DiscoveryManager
from hubagent.mqtt.topics import AccountTree, TopicOwnership


class OwnedDiscoveryManager(DiscoveryManager):
    """A `DiscoveryManager` that holds every config topic to its account's tree."""

    def __init__(
        self,
        registry: Registry,
        prefix: str = "homeassistant",
        subscribe: Callable[[str], None] | None = None,
        device_root: str = "home",
        device_accounts: Iterable[str] = (),
        trees: Iterable[AccountTree] = (),
    ) -> None:
        """`device_accounts`: accounts known to be devices (the home files' devices); they
        may name nothing outside `<device_root>/<account>/`, bridges' trees included.
        `trees`: firmware accounts (`hubagent.security.profiles.account_trees`)."""
        super().__init__(registry, prefix, subscribe=subscribe, device_root=device_root)
        self.ownership = TopicOwnership(device_root, frozenset(device_accounts), tuple(trees))

    def _foreign_command_topic(self, topic: str, cmp: DiscoveredComponent) -> str | None:
        parsed = parse_topic(topic, self.prefix)
        node, object_id = (parsed[1], parsed[2]) if parsed else (None, None)
        return self.ownership.foreign_problem(node, cmp.config, object_id)
