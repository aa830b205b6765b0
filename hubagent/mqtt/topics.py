"""Which topics a discovery config may name (pure rules, shared by discovery and ownership).

Every topic a config names is something the hub will publish to (a command) or store and
act on (a state): a device that names the wrong one steers the hub. So every `*topic` key
of every platform, `availability[].topic` and every `cmps` component is checked after
abbreviations and `~` are expanded:
- anywhere: no wildcards, nothing starting with `$` (the broker's), nothing under the
  hub's own prefix `hubagent/` (requests, responses, notifications) or the discovery
  prefix. One exception: a config announced without a node (which only accounts with
  admin-granted discovery rights can publish, never a device account) may read state
  through `+` levels, as OpenMQTTGateway's RTL_433 sensors do; never through `#`, never
  from the hub's own topics;
- with the generated ACLs (`acl.device_root`): a config announced under node `N` (which
  only account `N`, or an account the admin granted discovery rights, can publish) may
  name topics under `<device_root>/N/` only, never another account's tree; a known device
  account (a device of the home files) may name nothing outside its tree either;
- with firmware accounts (`acl.accounts`, profiles in `hubagent.security.profiles`): a
  config is attributed to the account the ACL lets announce it (its node ids; a bridge
  that may announce any unclaimed node; a legacy Tasmota object id `<MAC6>_...`) and may
  name that account's trees only; a topic in any account's tree may be named only by a
  config attributed to that account.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt

HUB_PREFIX = "hubagent"
REQUEST_TOPIC = f"{HUB_PREFIX}/request"  # served by interfaces.mqtt_request
_HUB_TOPICS = (REQUEST_TOPIC, f"{HUB_PREFIX}/status", f"{HUB_PREFIX}/notify/x")
_READ_KEYS = ("state_topic", "json_attributes_topic")  # keys the hub only subscribes to


def config_topics(config: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """`(key, topic)` for every topic a normalised config names."""
    for key, value in config.items():
        if key.endswith("topic") and isinstance(value, str):
            yield key, value
    avty = config.get("availability")
    for index, entry in enumerate(avty if isinstance(avty, list) else []):
        if isinstance(entry, dict) and isinstance(entry.get("topic"), str):
            yield f"availability[{index}].topic", entry["topic"]


def _under(topic: str, root: str) -> bool:
    return topic == root or topic.startswith(root + "/")


def _wildcard_problem(key: str, topic: str, bridge: bool) -> str | None:
    if "#" in topic:
        return "wildcards are not allowed"
    if "+" not in topic:
        return None
    # Only configs of accounts the admin granted discovery rights (announced without a
    # node: OpenMQTTGateway's RTL_433 sensors read `+/+/RTL_433toMQTT/...`) may read
    # through a `+`, and never from a topic the hub itself serves.
    readable = key.endswith(_READ_KEYS) or key.startswith("availability")
    if not (bridge and readable):
        return "wildcards are not allowed"
    if any(mqtt.topic_matches_sub(topic, own) for own in _HUB_TOPICS):
        return f"the filter would read the hub's own topics under {HUB_PREFIX}/"
    return None


def reserved_problem(
    topic: str, discovery_prefix: str, key: str = "", bridge: bool = False
) -> str | None:
    """Why no config may name `topic` (as `key`) at all, or None. `bridge`: a config
    announced without a node, which device accounts cannot publish."""
    wildcard = _wildcard_problem(key, topic, bridge)
    if wildcard:
        return wildcard
    if topic.startswith("$"):
        return "topics starting with '$' belong to the broker"
    if _under(topic, HUB_PREFIX):
        return f"it lies under the hub's own prefix {HUB_PREFIX}/"
    if _under(topic, discovery_prefix.rstrip("/")):
        return "it lies inside the discovery prefix"
    return None


def reserved_topics_problem(
    config: dict[str, Any], discovery_prefix: str, bridge: bool = False
) -> str | None:
    """`"<key> '<topic>': <reason>"` for the first reserved topic of a config, or None."""
    for key, topic in config_topics(config):
        why = reserved_problem(topic, discovery_prefix, key, bridge)
        if why:
            return f"{key} {topic[:120]!r}: {why}"
    return None


@dataclass(frozen=True)
class AccountTree:
    """What one firmware account owns (built by `hubagent.security.profiles`): its topic
    trees and the discovery node ids the broker lets it announce under."""

    name: str
    prefixes: tuple[str, ...]  # topic trees without wildcards, e.g. ("zigbee2mqtt",)
    node_ids: frozenset[str] = frozenset()
    # The ACL lets it announce under any node no other account claims (a zigbee2mqtt
    # bridge: IEEE addresses are not known in advance); `node_pattern` tells two apart.
    open_nodes: bool = False
    node_pattern: str | None = None
    # Legacy Tasmota discovery has no node: `<prefix>/<comp>/<MAC6>_<object>/config`.
    object_prefixes: tuple[str, ...] = ()

    def owns(self, topic: str) -> bool:
        return any(_under(topic, p) for p in self.prefixes)


_AMBIGUOUS = AccountTree("?", ())


@dataclass(frozen=True)
class TopicOwnership:
    """The account-tree rule for one topic layout (see the module docstring)."""

    device_root: str
    device_accounts: frozenset[str] = frozenset()
    trees: tuple[AccountTree, ...] = ()

    def _tree_of_topic(self, topic: str) -> AccountTree | None:
        best: tuple[int, AccountTree] | None = None
        for tree in self.trees:
            for prefix in tree.prefixes:
                if _under(topic, prefix) and (best is None or len(prefix) > best[0]):
                    best = (len(prefix), tree)
        return best[1] if best else None

    def _attribute(self, node: str | None, object_id: str | None) -> AccountTree | None:
        """The account that (by the generated ACL) alone can announce this node/object."""
        if node is None:
            found = [
                t
                for t in self.trees
                if object_id and any(object_id.startswith(p + "_") for p in t.object_prefixes)
            ]
            return found[0] if len(found) == 1 else (_AMBIGUOUS if found else None)
        named = [t for t in self.trees if node in t.node_ids]
        if named:
            return named[0] if len(named) == 1 else _AMBIGUOUS
        if node in self.device_accounts:
            return None  # a home-file device account: the device_root rule below
        candidates = [t for t in self.trees if t.open_nodes]
        if len(candidates) > 1:  # the broker cannot tell them apart; their id formats can
            candidates = [
                t for t in candidates if t.node_pattern and re.fullmatch(t.node_pattern, node)
            ] or candidates
        if len(candidates) == 1:
            return candidates[0]
        return _AMBIGUOUS if candidates else None

    def foreign_problem(
        self, node: str | None, config: dict[str, Any], object_id: str | None = None
    ) -> str | None:
        """Why a config announced under discovery node `node` (object `object_id`) may not
        use its topics."""
        tree = self._attribute(node, object_id)
        who = repr(node) if node else f"node-less {object_id!r}"
        if tree is _AMBIGUOUS:
            return f"discovery node {who} could come from several accounts (list node_ids)"
        if tree is not None:
            for key, topic in config_topics(config):
                if tree.owns(topic):
                    continue
                other = self._tree_of_topic(topic)
                if other is not None:
                    return f"{key} {topic[:120]!r} belongs to account {other.name!r}, not {tree.name!r}"
                trees = ", ".join(p + "/" for p in tree.prefixes)
                return f"{key} {topic[:120]!r} lies outside account {tree.name!r}'s tree {trees}"
            return None
        if node is None and any(t.object_prefixes for t in self.trees):
            # Legacy Tasmota accounts may publish node-less configs: one naming no known
            # device could come from any of them.
            return f"discovery object {object_id!r} names no account's node id"
        for key, topic in config_topics(config):
            other = self._tree_of_topic(topic)
            if other is not None:
                return f"{key} {topic[:120]!r} belongs to account {other.name!r}, not {who}"
        if not node:
            return None  # node-less configs: only accounts the admin trusts can publish them
        root = self.device_root.strip("/")
        own = f"{root}/{node}"
        for key, topic in config_topics(config):
            if _under(topic, own):
                continue
            if topic.startswith(root + "/"):
                owner = topic[len(root) + 1 :].split("/", 1)[0]
                return f"{key} {topic[:120]!r} belongs to device account {owner!r}, not {node!r}"
            if node in self.device_accounts:
                return f"{key} {topic[:120]!r} lies outside device account {node!r}'s tree {own}/"
        return None
