"""`acl.accounts` profiles without a broker: config shape, clashes, generated lines and the
ownership trees (the broker side is tests/test_firmware_profiles.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from hubagent.cli import main
from hubagent.config import ConfigError, load_config
from hubagent.mqtt.topics import TopicOwnership
from hubagent.security.acl import load_accounts, write_acl_files
from hubagent.security.profiles import account_rules, account_trees

ACCOUNTS = """\
acl:
  accounts:
    - {name: zigbee, profile: zigbee2mqtt}
    - {name: plug, profile: tasmota, base_topic: tasmota_01DEF1, node_ids: ["01DEF1"]}
    - {name: kitchen, profile: esphome}
    - {name: robot, profile: valetudo}
"""


def _cfg(tmp_path: Path, text: str = ACCOUNTS):
    path = tmp_path / "hubagent.yaml"
    path.write_text(text, encoding="utf-8")
    return load_config(path, env={})


def test_acl_without_home_creates_the_listed_accounts(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    write_acl_files(cfg, tmp_path / "out", homes=[])
    accounts = load_accounts(tmp_path / "out" / "accounts.yaml")
    assert set(accounts.devices) == {"zigbee", "plug", "kitchen", "robot"}
    acl = (tmp_path / "out" / "acl").read_text()
    assert "user zigbee\ntopic readwrite zigbee2mqtt/#\n" in acl
    assert "topic deny homeassistant/+/kitchen/+/config" in acl  # the bridge cannot be kitchen
    assert "topic write cmnd/tasmota_01DEF1/#" in acl  # the hub commands the plug
    assert "topic read cmnd/tasmota_01DEF1/#" in acl  # the plug reads its commands
    passwd = (tmp_path / "out" / "passwd").read_text()
    assert {line.split(":")[0] for line in passwd.splitlines()} >= {"zigbee", "plug", "hubagent"}


def test_listed_node_ids_close_the_bridges_wildcard(tmp_path: Path) -> None:
    cfg = _cfg(
        tmp_path,
        "acl:\n  accounts:\n    - {name: zigbee, profile: zigbee2mqtt, "
        "base_topic: z2m, node_ids: ['0x00158d0001234567']}\n",
    )
    (rule,) = account_rules(cfg)
    assert "topic readwrite homeassistant/+/0x00158d0001234567/+/config" in rule.device_lines
    assert not any("+/+/+/config" in line for line in rule.device_lines)
    assert rule.tree.prefixes == ("z2m",) and not rule.tree.open_nodes


@pytest.mark.parametrize(
    ("accounts", "problem"),
    [
        ("[{name: a, profile: homey}]", "not known"),
        ("[{name: 'a b', profile: esphome}]", "name"),
        ("[{name: a, profile: esphome, base_topic: 'x/#'}]", "no wildcards"),
        ("[{name: a, profile: esphome, base_topic: hubagent}]", "not under"),
        ("[{name: a, profile: esphome, base_topic: homeassistant/x}]", "not under"),
        ("[{name: a, profile: esphome}, {name: a, profile: valetudo}]", "used twice"),
        ("[{name: hubagent, profile: esphome}]", "the hub's"),
        (
            "[{name: a, profile: esphome, base_topic: zigbee2mqtt}, {name: z, profile: zigbee2mqtt}]",
            "share topics",
        ),
        (
            "[{name: a, profile: esphome, node_ids: [x]}, {name: b, profile: valetudo, node_ids: [x]}]",
            "claimed",
        ),
        ("[{name: a, profile: esphome, base_topic: home/kitchen}]", "overlaps home/"),
        ("[{name: a, profile: esphome, node_ids: ['a/b']}]", "node id"),
    ],
)
def test_clashes_are_one_line_config_errors(tmp_path: Path, accounts: str, problem: str) -> None:
    cfg = _cfg(tmp_path, f"acl:\n  accounts: {accounts}\n")
    with pytest.raises(ConfigError, match=problem):
        account_rules(cfg)


def test_cli_reports_a_bad_profile_in_one_line(tmp_path: Path, capsys) -> None:
    path = tmp_path / "hubagent.yaml"
    path.write_text("acl:\n  accounts: [{name: a, profile: homey}]\n", encoding="utf-8")
    assert main(["acl", "-c", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("hubagent: acl.accounts[0].profile 'homey'") and "\n" not in err


def test_ownership_by_tree_attribution(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    own = TopicOwnership("home", frozenset({"lamp"}), account_trees(cfg, ["lamp"]))
    z2m_cfg = {"command_topic": "zigbee2mqtt/bulb/set", "state_topic": "zigbee2mqtt/bulb"}
    tasmota_cfg = {"command_topic": "cmnd/tasmota_01DEF1/POWER"}
    # The bridge announces any unclaimed node (IEEE addresses); only its own tree.
    assert own.foreign_problem("0x00158d0001234567", z2m_cfg) is None
    assert "belongs to account 'plug'" in own.foreign_problem("0x00158d0001234567", tasmota_cfg)
    # Legacy Tasmota: node-less, attributed by the MAC6 object-id prefix.
    assert own.foreign_problem(None, tasmota_cfg, "01DEF1_RL_1") is None
    assert "belongs to account 'zigbee'" in own.foreign_problem(None, z2m_cfg, "01DEF1_RL_1")
    assert "names no account's node id" in own.foreign_problem(None, tasmota_cfg, "BEEF00_RL_1")
    # A home-file device account stays in home/<account>/ and cannot name firmware trees.
    assert own.foreign_problem("lamp", {"command_topic": "home/lamp/set"}) is None
    assert "belongs to account 'zigbee'" in own.foreign_problem("lamp", z2m_cfg)
    assert "belongs to account 'robot'" in own.foreign_problem(
        "kitchen", {"command_topic": "valetudo/robot/x/set"}
    )
    assert own.foreign_problem("kitchen", {"command_topic": "kitchen/switch/relay/command"}) is None


def test_two_open_bridges_are_told_apart_by_node_pattern(tmp_path: Path, caplog) -> None:
    cfg = _cfg(
        tmp_path,
        "acl:\n  accounts:\n    - {name: zigbee, profile: zigbee2mqtt}\n"
        "    - {name: zw, profile: zwave-js-ui}\n",
    )
    own = TopicOwnership("home", frozenset(), account_trees(cfg))
    assert "list node_ids" in caplog.text
    assert (
        own.foreign_problem("nodeID_5", {"command_topic": "zwave/nodeID_5/37/0/targetValue/set"})
        is None
    )
    assert "belongs to account 'zw'" in own.foreign_problem(
        "0x00158d0001234567", {"command_topic": "zwave/nodeID_5/37/0/targetValue/set"}
    )
    assert "several accounts" in own.foreign_problem("kitchen_light", {"command_topic": "x/set"})


def test_a_home_device_of_the_same_name_is_the_firmware_account(tmp_path: Path) -> None:
    """Tasmota 12+ no longer announces itself: its entity goes into a home file with explicit
    topics, and its account keeps the Tasmota profile."""
    home = tmp_path / "home.yaml"
    home.write_text(
        "name: H\ndevices:\n  - id: switch.plug\n    name: Plug\n    mqtt:\n"
        "      command_topic: cmnd/tasmota_01DEF1/POWER\n      state_topic: stat/tasmota_01DEF1/POWER\n"
        "  - id: light.lamp\n    name: Lamp\n",
        encoding="utf-8",
    )
    cfg = _cfg(tmp_path)
    write_acl_files(cfg, tmp_path / "out", homes=[str(home)])
    acl = (tmp_path / "out" / "acl").read_text()
    assert (
        "Device accounts: lamp\n" in acl and "user plug\ntopic write stat/tasmota_01DEF1/#" in acl
    )
    assert len(account_trees(cfg, ["plug", "lamp"])) == 4
    with pytest.raises(ConfigError, match="hub's or a requester's"):
        account_rules(_cfg(tmp_path, "acl:\n  accounts: [{name: requester, profile: esphome}]\n"))


def test_accounts_file_keeps_passwords_across_runs(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    write_acl_files(cfg, tmp_path / "out", homes=[])
    first = yaml.safe_load((tmp_path / "out" / "accounts.yaml").read_text())["devices"]
    write_acl_files(cfg, tmp_path / "out", homes=[])
    assert yaml.safe_load((tmp_path / "out" / "accounts.yaml").read_text())["devices"] == first
