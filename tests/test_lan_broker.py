"""The broker on the LAN: certificates naming LAN addresses, and the opt-in plain listener
for devices without TLS, on a real mosquitto."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import require_mosquitto
from faultkit import Receiver

from hubagent.config import (
    AclConfig,
    BrokerConfig,
    Config,
    ConfigError,
    DeviceAccountConfig,
    MqttConfig,
    PlainListenerConfig,
)
from hubagent.mqtt.broker import MosquittoBroker, free_port
from hubagent.mqtt.client import MqttClient
from hubagent.mqtt.local import start_local_broker
from hubagent.security.acl import load_accounts, write_account_files
from hubagent.security.certs import init_certs

LAN_IP = "127.0.0.2"  # any 127/8 address is loopback on Linux: a stand-in for 192.168.1.10


def _connects(cfg: MqttConfig, timeout: float = 3.0) -> bool:
    client = MqttClient(cfg, status_topic=None)
    client.start()
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if client.connected:
                return True
            if client.last_error:
                return False
            time.sleep(0.02)
        return False
    finally:
        client.stop()


def test_server_certificate_names_the_lan_address(tmp_path: Path) -> None:
    require_mosquitto()
    cfg = Config()
    certs = init_certs(tmp_path / "certs", hostnames=["hub.local"])
    passwd, acl, accounts_file = write_account_files(cfg, tmp_path / "acl", [])
    workdir = Path(tempfile.mkdtemp(prefix="hubagent-broker-"))
    broker = MosquittoBroker(workdir, certs, passwd, acl, host=LAN_IP)
    broker.start()
    try:
        hub = MqttConfig(
            host=LAN_IP,
            port=broker.password_port,
            ca_file=str(certs.ca_cert),
            password=load_accounts(accounts_file).hub_password,
            reconnect_max_s=1.0,
        )
        assert not _connects(hub)  # the certificate does not name 127.0.0.2: TLS refuses
        again = init_certs(tmp_path / "certs", ips=[LAN_IP])
        assert again.server_status == "reissued" and LAN_IP in again.server_names
        assert "hub.local" in again.server_names  # earlier names are kept
        assert again.ca_cert.read_bytes() == certs.ca_cert.read_bytes()  # same CA
        broker.restart()
        assert _connects(hub)
        assert init_certs(tmp_path / "certs", ips=[LAN_IP]).server_status == "kept"
    finally:
        broker.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def test_ip_flag_refuses_names(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not an IP address"):
        init_certs(tmp_path, ips=["hub.local"])


PLUG = "plug"  # a stock Tasmota: no TLS
KITCHEN = "kitchen"  # an ESP32 ESPHome node: TLS


@pytest.fixture(scope="module")
def plain_env(tmp_path_factory: pytest.TempPathFactory):
    require_mosquitto()
    cfg = Config(
        acl=AclConfig(
            hub_workers=("hubagent-2",),
            accounts=(
                DeviceAccountConfig(PLUG, "tasmota", "tasmota_01DEF1", ("01DEF1",)),
                DeviceAccountConfig(KITCHEN, "esphome"),
            ),
        ),
        broker=BrokerConfig(PlainListenerConfig(free_port(), "127.0.0.1", (PLUG,))),
    )
    env = start_local_broker(tmp_path_factory.mktemp("plain"), ["lamp"], cfg)
    yield env
    env.close()


def test_plain_listener_carries_only_its_accounts(plain_env) -> None:
    env = plain_env
    conf = env.broker.conf_file.read_text()
    assert conf.count("use_username_as_clientid true") == 3  # every listener
    hub = Receiver(env.mqtt_config(), ("stat/tasmota_01DEF1/#",)).start()
    plug = Receiver(env.mqtt_config(PLUG, plain=True), ("cmnd/tasmota_01DEF1/#",)).start()
    try:
        assert plug.client is not None and hub.client is not None
        assert plug.cfg.tls is False
        assert plug.client.publish("stat/tasmota_01DEF1/POWER", "ON", qos=1, timeout=5).ok
        assert hub.wait_count(1)
        assert hub.client.publish("cmnd/tasmota_01DEF1/POWER", "OFF", qos=1, timeout=5).ok
        assert plug.wait_count(1) and plug.messages[0] == ("cmnd/tasmota_01DEF1/POWER", b"OFF")
        # Its own ACL there too: nothing outside its tree.
        denied = plug.client.publish("cmnd/tasmota_01DEF1/POWER", "ON", qos=1, timeout=5)
        assert not denied.ok and "0x87" in denied.reason
        assert not plug.client.publish("kitchen/switch/relay/command", "ON", qos=1, timeout=5).ok
    finally:
        plug.stop()
        hub.stop()


@pytest.mark.parametrize("account", [None, "hubagent-2", "requester", KITCHEN, "lamp"])
def test_nobody_else_logs_in_without_tls(plain_env, account: str | None) -> None:
    """The hub, its workers, requesters and devices not listed cannot use the plain port
    (their passwords are right: only the listener's own password file lacks them)."""
    env = plain_env
    assert not _connects(env.mqtt_config(account, plain=True))
    assert _connects(env.mqtt_config(account))  # the same password over TLS works


def test_acl_warns_loudly_about_the_plain_listener(tmp_path: Path, caplog) -> None:
    caplog.set_level(logging.WARNING)
    acl = AclConfig(accounts=(DeviceAccountConfig(PLUG, "tasmota"),))
    cfg = Config(acl=acl, broker=BrokerConfig(PlainListenerConfig(1883, "0.0.0.0", (PLUG,))))
    paths = write_account_files(cfg, tmp_path / "acl", [])
    assert [p.name for p in paths][3:] == ["passwd-plain", "acl-plain"]
    assert "WITHOUT TLS" in caplog.text and "plug" in caplog.text
    plain_users = (tmp_path / "acl" / "passwd-plain").read_text().splitlines()
    assert [line.split(":")[0] for line in plain_users] == [PLUG]
    assert "user hubagent" not in (tmp_path / "acl" / "acl-plain").read_text()
    # Turned off again: nobody is left in its password file.
    write_account_files(Config(acl=acl), tmp_path / "acl", [])
    assert (tmp_path / "acl" / "passwd-plain").read_text() == ""


def test_plain_listener_refused_config(tmp_path: Path) -> None:
    acl = AclConfig(accounts=(DeviceAccountConfig(PLUG, "tasmota"),))
    for accounts, problem in (
        (("hubagent",), "not a device account"),
        (("requester",), "not a device account"),
        (("nobody",), "not a device account"),
        ((), "is empty"),
    ):
        cfg = Config(acl=acl, broker=BrokerConfig(PlainListenerConfig(1883, "0.0.0.0", accounts)))
        with pytest.raises(ConfigError, match=problem):
            write_account_files(cfg, tmp_path / "acl", [])
    cfg = Config(acl=acl, broker=BrokerConfig(PlainListenerConfig(70000, "0.0.0.0", (PLUG,))))
    with pytest.raises(ConfigError, match="not a TCP port"):
        write_account_files(cfg, tmp_path / "acl", [])


def test_deploy_conf_plain_block_admits_only_listed_devices(tmp_path: Path) -> None:
    """deploy/mosquitto.conf with its commented plain-listener block switched on, fed by
    `hubagent acl`: the listed device logs in without TLS, the hub does not."""
    binary = require_mosquitto()
    root = Path(__file__).resolve().parents[1]
    work = Path(tempfile.mkdtemp(prefix="hubagent-plain-"))
    os.chmod(work, 0o755)
    proc = None
    try:
        acl = AclConfig(accounts=(DeviceAccountConfig(PLUG, "tasmota", "tasmota_01DEF1"),))
        plain_port, tls_port = free_port(), free_port()
        cfg = Config(
            acl=acl, broker=BrokerConfig(PlainListenerConfig(plain_port, "0.0.0.0", (PLUG,)))
        )
        init_certs(work / "certs")
        write_account_files(cfg, work / "acl", [])
        accounts = load_accounts(work / "acl" / "accounts.yaml")
        conf = (root / "deploy" / "mosquitto.conf").read_text()
        block = conf[conf.index("#listener 1883") :]
        conf = conf.replace(block, "\n".join(line.lstrip("#") for line in block.splitlines()))
        conf = conf.replace("/mosquitto/config/", f"{work}/").replace(
            "/mosquitto/data/", f"{work}/"
        )
        conf = conf.replace("listener 8883", f"listener {tls_port} 127.0.0.1")
        conf = conf.replace("listener 1883", f"listener {plain_port} 127.0.0.1")
        conf = conf.replace("log_dest stdout", "log_dest stderr")
        if os.geteuid() == 0:
            conf += "\nuser root\n"
        (work / "mosquitto.conf").write_text(conf)
        proc = subprocess.Popen(
            [binary, "-c", str(work / "mosquitto.conf")], stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", plain_port)):
                break
            time.sleep(0.05)
        plain = MqttConfig(port=plain_port, tls=False, reconnect_max_s=1.0)
        tls = replace(plain, port=tls_port, tls=True, ca_file=str(work / "certs" / "ca.crt"))
        plug_pw = accounts.password(PLUG)
        assert _connects(replace(plain, username=PLUG, password=plug_pw, client_id=PLUG))
        assert not _connects(replace(plain, password=accounts.hub_password))
        assert _connects(replace(tls, password=accounts.hub_password))
    finally:
        if proc is not None:
            proc.kill()
            proc.wait(10)
        shutil.rmtree(work, ignore_errors=True)


def test_certs_cli_says_what_it_did_and_how_to_reissue(tmp_path: Path, capsys) -> None:
    from hubagent.cli import main

    folder = str(tmp_path / "certs")
    assert main(["certs", "init", folder, "--hostname", "hub.local", "--ip", "192.168.1.10"]) == 0
    assert "created the server certificate" in capsys.readouterr().out
    assert main(["certs", "init", folder, "--ip", "192.168.1.10"]) == 0
    out = capsys.readouterr().out
    assert "kept the existing CA and server certificate" in out and "--ip ADDRESS" in out
    assert main(["certs", "init", folder, "--ip", "10.0.0.5"]) == 0
    out = capsys.readouterr().out
    assert "reissued" in out and "hub.local" in out and "restart the broker" in out
    assert main(["certs", "init", folder, "--ip", "hub.local"]) == 2
    assert capsys.readouterr().err.strip() == (
        "hubagent: --ip 'hub.local' is not an IP address (names go to --hostname)"
    )
