"""ACL profiles for real firmware: the topic tree each device account owns, its ACL lines and
the hub's, and the `AccountTree` the hub's ownership checks use (`acl.accounts`).

| profile | tree (default `base_topic`) | discovery node ids |
| --- | --- | --- |
| generic | `<device_root>/<name>/` | `<name>` |
| zigbee2mqtt | `zigbee2mqtt/` (one bridge account for every Zigbee device) | any node no other account claims (IEEE addresses), or `node_ids` |
| tasmota | `cmnd/ stat/ tele/<topic>/` (`%prefix%` in `base_topic` for other FullTopics), `tasmota/discovery/<mac>/` | legacy `<MAC6>_...` object ids from `node_ids` |
| esphome | `<name>/` (the node's `topic_prefix`) | `node_ids` or `<name>` |
| valetudo | `valetudo/<name>/` | `node_ids` or `<name>` |
| zwave-js-ui | `zwave/` | any unclaimed node, or `node_ids` |

Every account may also announce under its own name (the ACL's `%u` pattern). A bridge that
may announce any unclaimed node gets `topic deny` lines for every node another account
claims (mosquitto checks denials before grants), so it cannot speak for them.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from hubagent.config import Config, ConfigError, DeviceAccountConfig
from hubagent.mqtt.topics import HUB_PREFIX, AccountTree

log = logging.getLogger(__name__)

PROFILES = ("generic", "zigbee2mqtt", "tasmota", "esphome", "valetudo", "zwave-js-ui")
OPEN_NODE_PROFILES = ("zigbee2mqtt", "zwave-js-ui")
# How two bridges that may both announce unclaimed nodes are told apart by the hub.
NODE_PATTERNS = {
    # devices (IEEE addresses), groups ("zigbee2mqtt" in decimal ASCII + id), the bridge
    "zigbee2mqtt": r"0x[0-9A-Za-z]+|1221051039810110150109113116116_\w+|bridge(_\w+)?",
    "zwave-js-ui": r"nodeID_\d+",
}
_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_NODE_RE = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
_TOPIC_RE = re.compile(r"^[^+#$\x00\s][^+#\x00]*$")


@dataclass(frozen=True)
class AccountRules:
    """One firmware account: its ACL lines, the hub's lines for it, its tree."""

    account: DeviceAccountConfig
    device_lines: tuple[str, ...]
    hub_lines: tuple[str, ...]
    tree: AccountTree


def _where(index: int) -> str:
    return f"acl.accounts[{index}]"


def _base(acct: DeviceAccountConfig, cfg: Config) -> str:
    defaults = {
        "generic": f"{cfg.acl.device_root}/{acct.name}",
        "zigbee2mqtt": "zigbee2mqtt",
        "tasmota": acct.name,
        "esphome": acct.name,
        "valetudo": f"valetudo/{acct.name}",
        "zwave-js-ui": "zwave",
    }
    return (acct.base_topic or defaults[acct.profile]).strip("/")


def _check(index: int, acct: DeviceAccountConfig, cfg: Config) -> None:
    where = _where(index)
    if not _NAME_RE.match(acct.name):
        raise ConfigError(f"{where}.name {acct.name!r}: use letters, digits, '_' or '-' (max 64)")
    if acct.profile not in PROFILES:
        raise ConfigError(
            f"{where}.profile {acct.profile!r} is not known (allowed: {', '.join(PROFILES)})"
        )
    base = _base(acct, cfg)
    reserved = (HUB_PREFIX, cfg.mqtt.discovery_prefix.strip("/"))
    if (
        not base
        or not _TOPIC_RE.match(base)
        or any(base == r or base.startswith(r + "/") for r in reserved)
    ):
        raise ConfigError(
            f"{where}.base_topic {base!r}: no wildcards, no '$', not under {' or '.join(reserved)}/"
        )
    for node in acct.node_ids:
        if not _NODE_RE.match(node):
            raise ConfigError(f"{where}.node_ids: {node!r} is not a discovery node id")


def _tasmota_trees(base: str) -> dict[str, str]:
    """`cmnd`/`stat`/`tele` trees of a Tasmota FullTopic (`%prefix%/<topic>` by default)."""
    full = base if "%prefix%" in base else f"%prefix%/{base}"
    return {p: full.replace("%prefix%", p).strip("/") for p in ("cmnd", "stat", "tele")}


def _discovery_lines(
    acct: DeviceAccountConfig, disc: str, claimed: set[str], access: str = "write"
) -> list[str]:
    if acct.profile in OPEN_NODE_PROFILES and not acct.node_ids:
        # IEEE addresses of devices paired later are not known now: any node, minus those
        # another account may announce under (denials win over grants in mosquitto).
        others = sorted(claimed - {acct.name})
        return [
            f"topic {access} {disc}/+/+/+/config",
            *(f"topic deny {disc}/+/{node}/+/config" for node in others),
        ]
    return [f"topic {access} {disc}/+/{node}/+/config" for node in acct.node_ids]


def _set_topics(base: str, depths: range, tail: tuple[str, ...]) -> list[str]:
    return [f"topic write {base}{'/+' * d}/{t}" for d in depths for t in tail]


def _rules(acct: DeviceAccountConfig, cfg: Config, claimed: set[str]) -> AccountRules:
    disc = cfg.mqtt.discovery_prefix.strip("/")
    base = _base(acct, cfg)
    nodes = frozenset({acct.name, *([] if acct.profile == "tasmota" else acct.node_ids)})
    device: list[str] = []
    hub: list[str] = []
    prefixes: tuple[str, ...] = (base,)
    open_nodes = acct.profile in OPEN_NODE_PROFILES and not acct.node_ids
    object_prefixes: tuple[str, ...] = ()
    if acct.profile == "generic":
        if base != f"{cfg.acl.device_root}/{acct.name}":  # the default is the `%u` patterns
            device = [f"topic write {base}/{t}" for t in ("state", "availability", "attributes")]
            device += [f"topic read {base}/set", f"topic read {base}/+/set"]
            hub = [f"topic read {base}/{t}" for t in ("state", "availability", "attributes")]
            hub += [f"topic write {base}/set", f"topic write {base}/+/set"]
        device += _discovery_lines(acct, disc, claimed)
    elif acct.profile == "tasmota":
        trees = _tasmota_trees(base)
        discovery = [f"tasmota/discovery/{node}" for node in acct.node_ids]
        prefixes = (*trees.values(), *discovery)
        # Legacy discovery (SetOption19 1) has no node level: object ids start with the
        # MAC's last 6 hex digits, which the hub uses to tell devices apart.
        object_prefixes = tuple(dict.fromkeys(n[-6:] for n in acct.node_ids))
        device = [
            f"topic write {trees['stat']}/#",
            f"topic write {trees['tele']}/#",
            f"topic read {trees['cmnd']}/#",
            *(f"topic write {d}/#" for d in discovery),
            *([f"topic write {disc}/+/+/config"] if acct.node_ids else []),
        ]
        hub = [
            f"topic read {trees['stat']}/#",
            f"topic read {trees['tele']}/#",
            *(f"topic read {d}/#" for d in discovery),
            f"topic write {trees['cmnd']}/#",
        ]
    else:
        device = [f"topic readwrite {base}/#"]
        device += _discovery_lines(acct, disc, claimed, "readwrite")
        hub = [f"topic read {base}/#"]
        if acct.profile == "zigbee2mqtt":  # <friendly name (may hold '/')>/set[/<attribute>]
            hub += _set_topics(base, range(1, 4), ("set", "set/+"))
        elif acct.profile == "esphome":  # <component>/<object>[/<attribute>]/command
            hub += _set_topics(base, range(2, 4), ("command",))
        elif acct.profile == "valetudo":  # Homie: <node>/<property>/set
            hub += _set_topics(base, range(2, 3), ("set",))
        else:  # zwave-js-ui: [<location>/]<node>/<class>/<endpoint>/<property>[/<key>]/set
            hub += _set_topics(base, range(1, 7), ("set",))
    device.append(f"topic read {disc}/status")
    tree = AccountTree(
        acct.name,
        prefixes,
        nodes,
        open_nodes=open_nodes,
        node_pattern=NODE_PATTERNS.get(acct.profile) if open_nodes else None,
        object_prefixes=object_prefixes,
    )
    return AccountRules(acct, tuple(device), tuple(hub), tree)


def _overlap(a: str, b: str) -> bool:
    return a == b or a.startswith(b + "/") or b.startswith(a + "/")


def account_rules(
    cfg: Config, other_accounts: list[str] | tuple[str, ...] = ()
) -> list[AccountRules]:
    """Rules for every account of `acl.accounts`; ConfigError for a clash. `other_accounts`:
    every other login (home-file devices, hub, workers, requesters): bridges may not
    announce under their names."""
    accounts = list(cfg.acl.accounts)
    names: set[str] = set()
    claimed: set[str] = set(other_accounts)
    roles = {cfg.acl.hub_account, *cfg.acl.hub_workers, *cfg.acl.requesters}
    for index, acct in enumerate(accounts):
        if acct.name in roles:
            raise ConfigError(f"{_where(index)}.name {acct.name!r} is the hub's or a requester's")
    owner: dict[str, str] = {}
    for index, acct in enumerate(accounts):
        _check(index, acct, cfg)
        # A home-file device of the same name is this account (its entity declared with
        # explicit topics, e.g. a Tasmota 12+ plug, which no longer announces itself).
        if acct.name in names:
            raise ConfigError(f"{_where(index)}.name {acct.name!r} is used twice")
        names.add(acct.name)
        # Tasmota's node_ids are object-id prefixes of node-less configs, not nodes.
        nodes = {acct.name} if acct.profile == "tasmota" else {acct.name, *acct.node_ids}
        for node in nodes:
            if owner.setdefault(node, acct.name) != acct.name:
                raise ConfigError(
                    f"{_where(index)}: node id {node!r} is claimed by {owner[node]!r} too"
                )
            claimed.add(node)
    rules = [_rules(acct, cfg, claimed) for acct in accounts]
    root = cfg.acl.device_root.strip("/")
    seen: list[tuple[str, str]] = []
    for rule in rules:
        for prefix in rule.tree.prefixes:
            if rule.account.profile != "generic" and _overlap(prefix, root):
                raise ConfigError(f"account {rule.account.name!r}: {prefix}/ overlaps {root}/")
            for other, taken in seen:
                if other != rule.account.name and _overlap(prefix, taken):
                    raise ConfigError(
                        f"accounts {other!r} and {rule.account.name!r} share topics ({taken}/, {prefix}/)"
                    )
            seen.append((rule.account.name, prefix))
    bridges = [r.account.name for r in rules if r.tree.open_nodes]
    if len(bridges) > 1:
        log.warning(
            "accounts %s may each announce any unclaimed discovery node: the broker cannot "
            "keep them apart (the hub tells them apart by node id pattern); list node_ids",
            ", ".join(bridges),
        )
    return rules


def account_trees(
    cfg: Config, other_accounts: list[str] | tuple[str, ...] = ()
) -> tuple[AccountTree, ...]:
    """The trees the hub's ownership checks use (`OwnedDiscoveryManager(trees=...)`)."""
    return tuple(rule.tree for rule in account_rules(cfg, other_accounts))
