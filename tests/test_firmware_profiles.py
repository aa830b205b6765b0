"""Real firmware topic layouts through a real mosquitto with the ACL `hubagent acl` writes
for `acl.accounts` profiles, and the real hub's ownership checks on top.

zigbee2mqtt 2.12.1 and Tasmota 9.5.0 discovery payloads come from the public benchmark slice
(`../shared/benchmarks/mqtt-discovery-dev`, skipped without it); ESPHome and Valetudo
layouts from tests/fixtures/firmware (written from their documented conventions).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from conftest import require_mosquitto
from faultkit import Receiver, hub_config, wait_for

from hubagent.app import Hub
from hubagent.config import AclConfig, Config, DeviceAccountConfig
from hubagent.mqtt.local import LocalBroker, start_local_broker
from hubagent.types import Action

BENCH = Path(__file__).resolve().parents[2] / "shared" / "benchmarks" / "mqtt-discovery-dev"
FIXTURES = Path(__file__).parent / "fixtures" / "firmware"
Z2M = "z2m"
ESPHOME = "livingroom"
VALETUDO = "rockrobo"
TASMOTA_A = "tasmota_01DEF1"  # FullTopic %prefix%/%topic%/
TASMOTA_B = "tasmota_00FF8D"  # FullTopic %topic%/%prefix%/ (as in the captured payloads)

pytestmark = pytest.mark.skipif(not BENCH.exists(), reason="needs ../shared/benchmarks")


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def _payload(row: dict) -> dict:
    payload = row["payload"]
    return json.loads(payload) if isinstance(payload, str) else payload


def _tasmota_account(row: dict) -> DeviceAccountConfig:
    """The account a captured Tasmota config came from: its %topic%, FullTopic and MAC6."""
    payload = _payload(row)
    first, second = payload["avty_t"].split("/")[:2]
    topic, base = (second, second) if first == "tele" else (first, f"{first}/%prefix%")
    object_id = row["topic"].split("/")[2]
    return DeviceAccountConfig(topic, "tasmota", base, (object_id.split("_")[0],))


@dataclass
class Layout:
    """Every replayed config with the account that publishes it."""

    configs: list[tuple[str, str, dict]]  # (account, topic, payload)
    accounts: list[DeviceAccountConfig]

    def owner_of(self, topic: str) -> str:
        for account, _disc, payload in self.configs:
            if topic in _topics(payload):
                return account
        raise KeyError(topic)


def _topics(payload: dict) -> set[str]:
    found = {v for k, v in payload.items() if k.endswith(("_t", "topic")) and isinstance(v, str)}
    for entry in payload.get("availability") or payload.get("avty") or []:
        found.add(entry.get("topic") or entry.get("t"))
    return found


def _layout() -> Layout:
    rows = _rows(BENCH / "discovery.jsonl")
    configs: list[tuple[str, str, dict]] = []
    tasmota: dict[str, DeviceAccountConfig] = {}
    for row in rows:
        if not row["topic"].startswith("homeassistant/"):
            continue  # z2m's test of a custom discovery prefix: the hub reads one prefix
        if row["firmware"].startswith("zigbee2mqtt"):
            configs.append((Z2M, row["topic"], _payload(row)))
        elif row["firmware"].startswith("Tasmota"):
            account = _tasmota_account(row)
            tasmota.setdefault(account.name, account)
            configs.append((account.name, row["topic"], _payload(row)))
    for name, account in ((ESPHOME, "esphome"), (VALETUDO, "valetudo")):
        configs += [(name, r["topic"], r["payload"]) for r in _rows(FIXTURES / f"{account}.jsonl")]
    accounts = [
        DeviceAccountConfig(Z2M, "zigbee2mqtt"),
        *tasmota.values(),
        DeviceAccountConfig(ESPHOME, "esphome"),
        DeviceAccountConfig(VALETUDO, "valetudo"),
    ]
    return Layout(configs, accounts)


def _command_tree(account: DeviceAccountConfig) -> str:
    """The filter a device of this account subscribes to for its commands."""
    if account.profile == "tasmota":
        base = account.base_topic or account.name
        full = base if "%prefix%" in base else f"%prefix%/{base}"
        return full.replace("%prefix%", "cmnd") + "/#"
    return {"zigbee2mqtt": "zigbee2mqtt/#", "valetudo": f"valetudo/{account.name}/#"}.get(
        account.profile, f"{account.name}/#"
    )


def _availability(payload: dict) -> list[tuple[str, str]]:
    """(topic, payload) that marks the config's device available."""
    found = []
    if "avty_t" in payload:
        found.append((payload["avty_t"], payload.get("pl_avail", "online")))
    for entry in payload.get("availability") or []:
        text = (
            '{"state": "online"}' if "value_json" in entry.get("value_template", "") else "online"
        )
        found.append((entry["topic"], text))
    return found


@dataclass
class Stack:
    env: LocalBroker
    hub: Hub
    layout: Layout
    devices: dict[str, Receiver]
    watcher: Receiver  # a hub worker account subscribed to everything it may read


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    require_mosquitto()
    tmp = tmp_path_factory.mktemp("firmware")
    layout = _layout()
    acl = AclConfig(hub_workers=("hubagent-2",), accounts=tuple(layout.accounts))
    env = start_local_broker(tmp / "broker", [], Config(acl=acl))
    command_trees = {a.name: _command_tree(a) for a in layout.accounts}
    devices = {n: Receiver(env.mqtt_config(n), (t,)).start() for n, t in command_trees.items()}
    watcher = Receiver(env.mqtt_config("hubagent-2"), ("#",)).start()
    cfg = replace(hub_config(env.mqtt_config(), tmp / "hub.db", ()), acl=acl)
    hub = Hub(cfg, use_llm=False)
    assert hub.start(wait=10)
    yield Stack(env, hub, layout, devices, watcher)
    hub.stop()
    watcher.stop()
    for device in devices.values():
        device.stop()
    env.close()


def _publish(device: Receiver, topic: str, payload: object, retain: bool = False) -> str | None:
    """None when the broker accepted the publish (QoS 1, MQTT 5), else the reason."""
    assert device.client is not None
    text = payload if isinstance(payload, str) else json.dumps(payload)
    result = device.client.publish(topic, text, qos=1, retain=retain, timeout=5)
    return None if result.ok else result.reason


def test_discovery_states_and_commands_of_real_layouts(stack: Stack) -> None:
    hub, layout = stack.hub, stack.layout
    for account, topic, payload in layout.configs:
        assert _publish(stack.devices[account], topic, payload, retain=True) is None, topic
    # Discovery reaches the hub: every config accepted (a refused one would be counted).
    wait_for(lambda: stack.watcher.wait_count(len(layout.configs), 0.01))
    settled = wait_for(lambda: _settled(hub), timeout=20)
    assert settled
    counters = dict(hub.discovery.counters)
    assert counters["rejected"] == 0, counters
    assert counters["configs"] >= len(layout.configs) - 2, counters  # 257 of 258 measured

    # States reach the hub: every state and availability topic, from its own account.
    before = len(stack.watcher.messages)
    states = sorted({(a, t) for a, _d, p in layout.configs for t in _topics(p)})
    states = [(a, t) for a, t in states if not _is_command(t)]
    for account, topic in states:
        assert _publish(stack.devices[account], topic, "{}") is None, (account, topic)
    assert stack.watcher.wait_count(before + len(states)), len(stack.watcher.messages) - before
    online = {(a, t, text) for a, _d, p in layout.configs for t, text in _availability(p)}
    for account, topic, text in sorted(online):
        assert _publish(stack.devices[account], topic, text) is None, (account, topic)
    bulb = next(
        e for e in hub.registry.all() if e.mqtt.get("command_topic") == "zigbee2mqtt/bulb_color/set"
    )
    _publish(stack.devices[Z2M], "zigbee2mqtt/bulb_color", {"state": "ON", "brightness": 254})
    wait_for(lambda: hub.registry.get(bulb.entity_id).state.get("state") == "on")

    # Commands reach those topics: every command topic of the conformance slice, published
    # with the hub's rights, arrives at the owning account (and at no other).
    commands = [r for r in _rows(BENCH / "commands.jsonl") if r["firmware"] != "n/a"]
    expected: dict[str, int] = {}
    for row in commands:
        topic = row["expected_command_topic"]
        owner = layout.owner_of(topic)
        result = hub.mqtt.publish(topic, json.dumps(row["expected_payload"]), qos=1, timeout=5)
        assert result.ok, (topic, result.reason)
        expected[owner] = expected.get(owner, 0) + 1
    for owner, count in expected.items():
        assert stack.devices[owner].wait_count(count), owner
    assert sum(expected.values()) >= 150

    # And through the hub itself: turn on every discovered light and switch.
    targets = [e for e in hub.registry.all() if e.domain in ("light", "switch", "vacuum")]
    sent = {d: len(r.messages) for d, r in stack.devices.items()}
    for entity in targets:
        verb = "start" if entity.domain == "vacuum" else "turn_on"
        reply = hub.agent.execute([Action(entity.entity_id, verb)], requester="t", channel="test")
        assert reply.actions, (entity.entity_id, reply.to_dict())
    per_owner: dict[str, int] = {}
    for entity in targets:
        owner = layout.owner_of(entity.mqtt["command_topic"])
        per_owner[owner] = per_owner.get(owner, 0) + 1
    for owner, count in per_owner.items():
        assert stack.devices[owner].wait_count(sent[owner] + count), owner
    assert {ESPHOME, VALETUDO, Z2M, TASMOTA_A, TASMOTA_B} <= set(per_owner)


def _is_command(topic: str) -> bool:
    return topic.endswith(("/set", "/command")) or "cmnd" in topic.split("/")


def _settled(hub: Hub) -> bool:
    before = dict(hub.discovery.counters)
    time.sleep(0.3)
    return before == dict(hub.discovery.counters) and before.get("configs", 0) > 0


# (account, topic): the broker refuses each (PUBACK 0x87): writes into another tree, and
# discovery under another account's node.
BROKER_PIVOTS = [
    (TASMOTA_A, "zigbee2mqtt/bulb_color/set"),
    (TASMOTA_A, "zigbee2mqtt/bridge/request/permit_join"),
    (TASMOTA_A, "homeassistant/light/0x000b57fffec6a5b3/light/config"),
    (TASMOTA_A, "cmnd/tasmota_0B34A1/POWER"),
    (TASMOTA_A, "tele/tasmota_0B34A1/STATE"),
    (TASMOTA_A, "tasmota_00FF8D/cmnd/POWER"),
    (TASMOTA_A, "cmnd/tasmota_01DEF1/POWER"),  # its own command topic is the hub's to write
    (Z2M, "cmnd/tasmota_01DEF1/POWER"),
    (Z2M, "homeassistant/switch/01DEF1_RL_1/config"),  # node-less: legacy Tasmota only
    (Z2M, f"homeassistant/switch/{TASMOTA_A}/relay/config"),  # other accounts' nodes: denied
    (Z2M, f"homeassistant/switch/{ESPHOME}/relay/config"),
    (Z2M, f"homeassistant/vacuum/{VALETUDO}/x/config"),
    (Z2M, "homeassistant/switch/hubagent/x/config"),
    (Z2M, f"home/{ESPHOME}/state"),
    (ESPHOME, "valetudo/rockrobo/BasicControlCapability/operation/set"),
    (ESPHOME, "homeassistant/switch/0x000b57fffec6a5b3/x/config"),
    (VALETUDO, f"{ESPHOME}/switch/relay/command"),
    (VALETUDO, "hubagent/request"),
]


@pytest.mark.parametrize(("account", "topic"), BROKER_PIVOTS)
def test_cross_account_pivots_are_refused_by_the_broker(
    stack: Stack, account: str, topic: str
) -> None:
    reason = _publish(stack.devices[account], topic, {"state": "ON"})
    assert reason is not None and "0x87" in reason, (account, topic, reason)


def test_bridge_announces_new_ieee_nodes_and_devices_read_only_their_own(stack: Stack) -> None:
    z2m = stack.devices[Z2M]
    # A device paired tomorrow: its node id is not known when the ACL is written.
    assert _publish(z2m, "homeassistant/light/0x00158d0001234567/light/config", "{}") is None
    # Reads: a Tasmota account subscribed to the bridge's tree sees nothing of it.
    spy = Receiver(stack.env.mqtt_config(TASMOTA_A), ("zigbee2mqtt/#", "cmnd/#")).start()
    try:
        assert _publish(z2m, "zigbee2mqtt/bulb_color", {"state": "OFF"}) is None
        assert stack.hub.mqtt.publish("cmnd/tasmota_0B34A1/POWER", "ON", timeout=5).ok
        assert stack.hub.mqtt.publish("cmnd/tasmota_01DEF1/POWER", "ON", timeout=5).ok
        assert spy.wait_count(1)
        time.sleep(0.3)
        assert [t for t, _p in spy.messages] == ["cmnd/tasmota_01DEF1/POWER"]
    finally:
        spy.stop()


# (account, discovery topic, config, expected reason): configs the broker lets the account
# publish, naming topics of another account's tree; the hub refuses each.
OWNERSHIP_PIVOTS = [
    (
        Z2M,
        "homeassistant/switch/0x00000000000000aa/evil/config",
        {"name": "Evil", "cmd_t": "cmnd/tasmota_01DEF1/POWER"},
        "belongs to account 'tasmota_01DEF1', not 'z2m'",
    ),
    (
        Z2M,
        "homeassistant/switch/0x00000000000000ab/evil/config",
        {"name": "Evil", "cmd_t": f"{ESPHOME}/switch/relay/command"},
        f"belongs to account '{ESPHOME}'",
    ),
    (
        TASMOTA_A,
        "homeassistant/switch/01DEF1_evil/config",
        {"name": "Evil", "cmd_t": "zigbee2mqtt/bulb_color/set", "uniq_id": "01DEF1_evil"},
        "belongs to account 'z2m', not 'tasmota_01DEF1'",
    ),
    (
        TASMOTA_A,
        "homeassistant/switch/AAAAAA_evil/config",
        {"name": "Evil", "cmd_t": "cmnd/tasmota_01DEF1/POWER"},
        "names no account's node id",
    ),
    (
        ESPHOME,
        f"homeassistant/vacuum/{ESPHOME}/evil/config",
        {"name": "Evil", "cmd_t": "valetudo/rockrobo/BasicControlCapability/operation/set"},
        "belongs to account 'rockrobo'",
    ),
    (
        VALETUDO,
        f"homeassistant/switch/{VALETUDO}/evil/config",
        {"name": "Evil", "cmd_t": "valetudo/other/x/set"},
        "lies outside account 'rockrobo'",
    ),
]


def test_configs_naming_another_accounts_tree_are_refused_by_the_hub(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="hubagent")
    hub = stack.hub
    rejected = hub.discovery.counters["rejected"]
    for account, topic, config, _reason in OWNERSHIP_PIVOTS:
        assert _publish(stack.devices[account], topic, config) is None, topic
    wait_for(lambda: hub.discovery.counters["rejected"] >= rejected + len(OWNERSHIP_PIVOTS))
    assert not [e for e in hub.registry.all() if e.name and "Evil" in e.name]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    for _account, topic, _config, reason in OWNERSHIP_PIVOTS:
        about = [w for w in warnings if topic in w]
        assert about and reason in about[0], (topic, reason, about)
