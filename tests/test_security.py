"""Certificates, password hashes, ACL files, and what a real mosquitto enforces with them."""

from __future__ import annotations

import queue
import shutil
import ssl
import stat
import subprocess
import time
import uuid
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from hubagent.config import AclConfig, Config
from hubagent.mqtt.client import MqttClient
from hubagent.security.acl import (
    build_acl,
    device_accounts_from_homes,
    hash_password,
    load_accounts,
    write_account_files,
    write_acl_files,
)
from hubagent.security.certs import init_certs, issue_client_cert

# -- certificates ---------------------------------------------------------------------------


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_init_certs_sans_usages_and_key_modes(tmp_path: Path) -> None:
    paths = init_certs(tmp_path / "c", hostnames=["hub.lan", "192.168.1.5"], clients=["dev_a"])
    server = x509.load_pem_x509_certificate(paths.server_cert.read_bytes())
    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(san.get_values_for_type(x509.DNSName)) == {"localhost", "hub.lan"}
    assert {str(ip) for ip in san.get_values_for_type(x509.IPAddress)} == {
        "127.0.0.1",
        "::1",
        "192.168.1.5",
    }
    eku = server.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in eku
    cert_path, key_path = paths.clients["dev_a"]
    client = x509.load_pem_x509_certificate(cert_path.read_bytes())
    assert client.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "dev_a"
    client_eku = client.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.CLIENT_AUTH in client_eku
    for key in (paths.ca_key, paths.server_key, key_path):
        assert _mode(key) == 0o600
    # The chain verifies with the standard library, hostname included.
    ctx = ssl.create_default_context(cafile=str(paths.ca_cert))
    ctx.load_cert_chain(str(paths.server_cert), str(paths.server_key))  # key matches cert


def test_init_certs_is_idempotent_and_adds_clients(tmp_path: Path) -> None:
    first = init_certs(tmp_path, clients=["a"])
    ca, server, a_cert = (
        first.ca_cert.read_bytes(),
        first.server_cert.read_bytes(),
        first.clients["a"][0].read_bytes(),
    )
    second = init_certs(tmp_path, clients=["a", "b"])
    assert second.ca_cert.read_bytes() == ca
    assert second.server_cert.read_bytes() == server
    assert second.clients["a"][0].read_bytes() == a_cert
    assert set(second.clients) == {"a", "b"}
    # A new hostname reissues only the server certificate, under the same CA.
    third = init_certs(tmp_path, hostnames=["new.lan"])
    assert third.ca_cert.read_bytes() == ca
    assert third.server_cert.read_bytes() != server
    cert, key = issue_client_cert(third, "c")
    assert cert.exists() and _mode(key) == 0o600
    assert issue_client_cert(tmp_path, "c") == (cert, key)


def test_client_name_must_be_a_safe_username(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="invalid client name"):
        init_certs(tmp_path, clients=["home/#"])


# -- password hashes and ACL files ----------------------------------------------------------


def test_hash_password_matches_mosquitto_passwd(tmp_path: Path) -> None:
    tool = shutil.which("mosquitto_passwd")
    if tool is None:
        pytest.skip("mosquitto_passwd not installed")
    passwd = tmp_path / "passwd"
    passwd.touch()
    subprocess.run([tool, "-b", str(passwd), "alice", "s3cret pass"], check=True)
    line = passwd.read_text().strip()
    _user, hashed = line.split(":", 1)
    _, kind, iterations, salt_b64, _digest = hashed.split("$")
    assert kind == "7"
    import base64

    ours = hash_password("s3cret pass", base64.b64decode(salt_b64), int(iterations))
    assert ours == hashed


def test_hash_password_uses_random_salts() -> None:
    a, b = hash_password("x"), hash_password("x")
    assert a != b and a.startswith("$7$101$") and b.startswith("$7$101$")


def test_build_acl_contract() -> None:
    text = build_acl(Config(), ["dev_a"])
    lines = {line.strip() for line in text.splitlines()}
    for expected in (
        "user hubagent",
        "topic read homeassistant/#",
        "topic read home/+/state",
        "topic write home/+/set",
        "topic write home/+/+/set",
        "topic read hubagent/request",
        "topic readwrite hubagent/response/#",
        "topic readwrite hubagent/notify/#",
        "topic write homeassistant/status",
        "topic read zigbee2mqtt/#",
        "pattern write home/%u/state",
        "pattern write home/%u/availability",
        "pattern write home/%u/attributes",
        "pattern write homeassistant/+/%u/+/config",
        "pattern read home/%u/set",
        "pattern read home/%u/+/set",
        "user dev_a",
        "topic read homeassistant/status",
        "user requester",
        "topic write hubagent/request",
        "topic read hubagent/response/requester/#",
    ):
        assert expected in lines, expected
    # Only requester accounts may publish requests; the hub never asks itself.
    assert text.count("topic write hubagent/request") == 1
    assert "readwrite hubagent/#" not in text
    # A further hub worker gets the hub's rights under its own login.
    workers = build_acl(Config(acl=AclConfig(hub_workers=("hubagent-2",))), ["dev_a"])
    section = workers.split("user hubagent-2\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert "topic read hubagent/request" in section and "topic write home/+/set" in section
    # Devices never get a readwrite or a wildcard write outside their own subtree.
    assert not any(line.startswith("pattern readwrite") for line in lines)


def test_accounts_from_homes_and_stable_passwords(tmp_path: Path) -> None:
    home = tmp_path / "home.yaml"
    home.write_text(
        yaml.safe_dump(
            {
                "name": "t",
                "devices": [
                    {"id": "light.kitchen_ceiling"},
                    {"id": "lock.front_door"},
                    {"id": "switch.kitchen_ceiling"},  # same object part: one account
                ],
            }
        )
    )
    assert device_accounts_from_homes([home]) == ["kitchen_ceiling", "front_door"]
    out = tmp_path / "out"
    written = write_acl_files(Config(), out, homes=[str(home)])
    assert [p.name for p in written] == ["passwd", "acl", "accounts.yaml"]
    assert all(_mode(p) == 0o600 for p in written)
    first = load_accounts(out / "accounts.yaml")
    assert set(first.devices) == {"kitchen_ceiling", "front_door"}
    assert first.hub_username == "hubagent" and len(first.hub_password) >= 24
    passwd_users = [line.split(":")[0] for line in (out / "passwd").read_text().splitlines()]
    assert passwd_users == ["hubagent", "requester", "kitchen_ceiling", "front_door"]
    assert set(first.requesters) == {"requester"} and first.password("requester")
    # Re-running keeps every password.
    write_acl_files(Config(), out, homes=[str(home)])
    assert load_accounts(out / "accounts.yaml") == first
    # Secrets are never in the ACL file.
    assert first.hub_password not in (out / "acl").read_text()


def test_load_accounts_rejects_garbage(tmp_path: Path) -> None:
    bad = tmp_path / "accounts.yaml"
    bad.write_text("hub: [1, 2]\n")
    with pytest.raises(ValueError, match="'hub' needs"):
        load_accounts(bad)


# -- what the real broker enforces ----------------------------------------------------------


class Inbox:
    """A handler that collects (topic, payload, retained) for assertions."""

    def __init__(self) -> None:
        self.items: queue.Queue[tuple[str, bytes, bool]] = queue.Queue()

    def __call__(self, topic: str, payload: bytes, retained: bool) -> None:
        self.items.put((topic, payload, retained))

    def get(self, timeout: float = 3.0) -> tuple[str, bytes, bool]:
        return self.items.get(timeout=timeout)

    def empty_after(self, seconds: float) -> bool:
        time.sleep(seconds)
        return self.items.empty()


def _refused(client: MqttClient, timeout: float = 3.0) -> bool:
    """Whether the client saw a failure (and is not connected) within `timeout`."""
    deadline = time.monotonic() + timeout
    while client.last_error is None and time.monotonic() < deadline:
        time.sleep(0.02)
    return client.last_error is not None and not client.connected


def _client(cfg, **kw) -> MqttClient:
    client = MqttClient(cfg, status_topic=None, **kw)
    client.start()
    return client


@pytest.fixture
def hub(broker_env):
    client = _client(broker_env.mqtt_config())
    assert client.wait_connected(5), client.last_error
    yield client
    client.stop()


@pytest.fixture
def dev_a(broker_env):
    client = _client(broker_env.mqtt_config("dev_a"))
    assert client.wait_connected(5), client.last_error
    yield client
    client.stop()


def test_tls_password_login_and_device_to_hub_flow(broker_env, hub, dev_a) -> None:
    inbox = Inbox()
    assert hub.subscribe("home/+/state", inbox, timeout=3)
    result = dev_a.publish("home/dev_a/state", '{"state": "on"}', timeout=3)
    assert result.ok, result.reason
    assert inbox.get() == ("home/dev_a/state", b'{"state": "on"}', False)
    # And the command direction: the hub writes dev_a's set topic, dev_a reads it.
    commands = Inbox()
    assert dev_a.subscribe("home/dev_a/set", commands, timeout=3)
    assert hub.publish("home/dev_a/set", "ON", timeout=3).ok
    assert commands.get()[1] == b"ON"


def test_certificate_listener_uses_cn_as_username(broker_env, hub) -> None:
    inbox = Inbox()
    assert hub.subscribe("home/dev_b/state", inbox, timeout=3)
    dev_b = _client(broker_env.mqtt_config("dev_b", cert_auth=True))
    try:
        assert dev_b.wait_connected(5), dev_b.last_error
        assert dev_b.publish("home/dev_b/state", "x", timeout=3).ok
        assert inbox.get()[0] == "home/dev_b/state"
        # The identity is dev_b: dev_a's subtree is closed to it.
        assert not dev_b.publish("home/dev_a/state", "spoof", timeout=3).ok
    finally:
        dev_b.stop()


def test_client_certificate_from_another_ca_is_rejected(broker_env, tmp_path: Path) -> None:
    rogue = init_certs(tmp_path / "rogue", clients=["dev_a"])
    cert, key = rogue.clients["dev_a"]
    cfg = broker_env.mqtt_config("dev_a", cert_auth=True, cert_file=str(cert), key_file=str(key))
    log_before = len(broker_env.broker.log_text())
    client = _client(cfg)
    try:
        assert _refused(client)
    finally:
        client.stop()
    assert "certificate verify failed" in broker_env.broker.log_text()[log_before:]


def test_server_certificate_checked_by_client(broker_env, tmp_path: Path) -> None:
    other = init_certs(tmp_path / "other")
    client = _client(broker_env.mqtt_config(ca_file=str(other.ca_cert)))
    try:
        assert _refused(client)
    finally:
        client.stop()


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_wrong_password_is_refused(broker_env, protocol: str) -> None:
    client = _client(broker_env.mqtt_config("dev_a", password="wrong", protocol=protocol))
    try:
        assert _refused(client)
        assert "refused" in client.last_error
        # MQTT 5: 0x87 Not authorized; 3.1.1: return code 5, mapped by paho to 0x87 too.
        assert "0x87" in client.last_error or "0x86" in client.last_error
    finally:
        client.stop()


def test_device_cannot_command_another_device(broker_env, hub, dev_a) -> None:
    dev_b = _client(broker_env.mqtt_config("dev_b"))
    try:
        assert dev_b.wait_connected(5)
        inbox = Inbox()
        assert dev_b.subscribe("home/dev_b/set", inbox, timeout=3)
        denied = dev_a.publish("home/dev_b/set", "UNLOCK", qos=1, timeout=3)
        assert not denied.ok and "0x87" in denied.reason
        assert dev_a.connected  # MQTT 5: denied, not disconnected
        assert inbox.empty_after(0.5)
        # The same topic works for the hub, proving the subscriber was listening.
        assert hub.publish("home/dev_b/set", "LOCK", timeout=3).ok
        assert inbox.get()[1] == b"LOCK"
    finally:
        dev_b.stop()


def test_device_cannot_read_another_devices_commands(broker_env, hub, dev_a) -> None:
    spy = Inbox()
    own = Inbox()
    # Subscribing is granted by mosquitto; the ACL filters at delivery.
    assert dev_a.subscribe("home/dev_b/set", spy, timeout=3)
    assert dev_a.subscribe("home/dev_a/set", own, timeout=3)
    assert hub.publish("home/dev_b/set", "secret", timeout=3).ok
    assert hub.publish("home/dev_a/set", "mine", timeout=3).ok
    assert own.get()[1] == b"mine"
    assert spy.empty_after(0.3)


def test_device_cannot_spoof_discovery_of_another(broker_env, hub, dev_a) -> None:
    tag = uuid.uuid4().hex[:6]
    ok = dev_a.publish(f"homeassistant/light/dev_a/{tag}/config", "{}", timeout=3)
    assert ok.ok, ok.reason
    spoof = dev_a.publish(f"homeassistant/light/dev_b/{tag}/config", "{}", timeout=3)
    assert not spoof.ok and "0x87" in spoof.reason


def test_reload_adds_a_device_account_without_restart(fresh_broker) -> None:
    acl_dir = fresh_broker.broker.acl_file.parent
    hub = _client(fresh_broker.mqtt_config())
    try:
        assert hub.wait_connected(5)
        write_account_files(fresh_broker.config, acl_dir, ["dev_a", "dev_b", "dev_new"])
        accounts = load_accounts(acl_dir / "accounts.yaml")
        assert accounts.devices["dev_a"] == fresh_broker.accounts.devices["dev_a"]
        fresh_broker.broker.reload()
        cfg = replace(
            fresh_broker.mqtt_config("dev_a"),
            username="dev_new",
            password=accounts.devices["dev_new"],
        )
        new = _client(cfg)
        try:
            assert new.wait_connected(5), new.last_error
            assert new.publish("home/dev_new/state", "on", timeout=3).ok
            assert not new.publish("home/dev_a/state", "spoof", timeout=3).ok
        finally:
            new.stop()
        assert hub.connected  # a reload keeps existing sessions
    finally:
        hub.stop()


def test_only_requester_accounts_may_publish_requests(broker_env, hub, dev_a) -> None:
    """The broker is the gate: the hub account (whose publishes a device config could aim
    at the request topic) and device accounts get PUBACK 0x87; a requester gets through and
    reads only its own reply tree."""
    inbox = Inbox()
    assert hub.subscribe("hubagent/request", inbox, timeout=3)
    for client in (hub, dev_a):
        denied = client.publish("hubagent/request", '{"text": "unlock"}', timeout=3)
        assert not denied.ok and "0x87" in denied.reason, denied.reason
    requester = _client(broker_env.mqtt_config("requester"))
    try:
        assert requester.wait_connected(5), requester.last_error
        assert requester.publish("hubagent/request", '{"text": "hi"}', timeout=3).ok
        assert inbox.get()[:2] == ("hubagent/request", b'{"text": "hi"}')
        assert inbox.empty_after(0.2)
        replies = Inbox()
        assert requester.subscribe("hubagent/response/#", replies, timeout=3)
        assert hub.publish("hubagent/response/someone/1", "x", timeout=3).ok
        assert hub.publish("hubagent/response/requester/1", "mine", timeout=3).ok
        assert replies.get()[:2] == ("hubagent/response/requester/1", b"mine")
        assert replies.empty_after(0.2)
    finally:
        requester.stop()
    # And the hub's own client refuses it before the broker is asked (MQTT 3.1.1 gets no 0x87).
    hub.refuse_publish("hubagent/request")
    assert "own input topic" in hub.publish("hubagent/request", "x", timeout=3).reason
