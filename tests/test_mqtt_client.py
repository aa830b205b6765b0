"""MqttClient against a real mosquitto over TLS: reconnect, handlers, birth/will, publish results."""

from __future__ import annotations

import logging
import os
import queue
import signal
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from dataclasses import replace

import pytest

from hubagent.config import MqttConfig
from hubagent.mqtt.broker import MosquittoBroker, MosquittoNotInstalled
from hubagent.mqtt.client import MqttClient
from hubagent.mqtt.messages import filter_matches as _matches


class Inbox:
    """A handler that collects (topic, payload, retained)."""

    def __init__(self) -> None:
        self.items: queue.Queue[tuple[str, bytes, bool]] = queue.Queue()

    def __call__(self, topic: str, payload: bytes, retained: bool) -> None:
        self.items.put((topic, payload, retained))

    def get(self, timeout: float = 3.0) -> tuple[str, bytes, bool]:
        return self.items.get(timeout=timeout)


def _started(cfg: MqttConfig, **kw) -> MqttClient:
    client = MqttClient(cfg, **kw)
    client.start()
    assert client.wait_connected(5), client.last_error
    return client


def _wait(predicate, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


# -- pure ---------------------------------------------------------------------------------


def test_filter_matching_includes_shared_subscriptions() -> None:
    assert _matches("home/+/state", "home/a/state")
    assert not _matches("home/+/state", "home/a/b/state")
    assert _matches("$share/hub/home/#", "home/a/set")
    assert not _matches("$share/hub/home/+/set", "other/a/set")


def test_unknown_protocol_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="mqtt.protocol"):
        MqttClient(MqttConfig(protocol="4"))


def test_missing_ca_file_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(ValueError, match="ca_file"):
        MqttClient(MqttConfig(ca_file=str(tmp_path / "missing.crt")))


def test_dispatch_cache_follows_subscribe_and_unsubscribe() -> None:
    import paho.mqtt.client as paho

    client = MqttClient(MqttConfig(tls=False, port=1))
    first, second = Inbox(), Inbox()

    def deliver(topic: str) -> None:
        message = paho.MQTTMessage(topic=topic.encode())
        message.payload = b"x"
        client._on_message(client._client, None, message)

    client.subscribe("home/+/state", first)
    deliver("home/a/state")  # the topic's handlers are now remembered
    client.subscribe("home/a/#", second)
    deliver("home/a/state")
    assert first.items.qsize() == 2 and second.items.qsize() == 1
    client.unsubscribe("home/+/state", first)
    deliver("home/a/state")
    assert first.items.qsize() == 2 and second.items.qsize() == 2


def test_publish_while_not_connected_fails_cleanly() -> None:
    client = MqttClient(MqttConfig(tls=False, port=1))
    result = client.publish("hubagent/x", "y")
    assert not result.ok and result.reason == "not connected"
    assert client.stats.publish_failures == 1


# -- real broker ----------------------------------------------------------------------------


def test_tls_connect_sets_nodelay_and_publishes_qos1(broker_env) -> None:
    hub = _started(broker_env.mqtt_config(), status_topic=None)
    try:
        sock = hub._client.socket()
        assert sock is not None
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
        assert sock.version() in ("TLSv1.2", "TLSv1.3")
        inbox = Inbox()
        topic = f"hubagent/notify/test/{uuid.uuid4().hex[:6]}"
        assert hub.subscribe(topic, inbox, timeout=3)
        result = hub.publish(topic, b"\x00\x01", qos=1, timeout=3)
        assert result.ok and "0x00" in result.reason
        assert inbox.get() == (topic, b"\x00\x01", False)
        # No subscriber: PUBACK 0x10 is still a success.
        lonely = hub.publish(f"hubagent/notify/nobody/{uuid.uuid4().hex[:6]}", "x", timeout=3)
        assert lonely.ok and "0x10" in lonely.reason
        assert hub.stats.published >= 2 and hub.stats.received >= 1
    finally:
        hub.stop()


def test_properties_reach_message_handlers_and_unsubscribe_stops_them(broker_env) -> None:
    hub = _started(broker_env.mqtt_config(), status_topic=None)
    try:
        got: queue.Queue = queue.Queue()
        plain = Inbox()
        topic = f"hubagent/notify/test/{uuid.uuid4().hex[:6]}"
        assert hub.subscribe_messages(topic, got.put, timeout=3)
        assert hub.subscribe(topic, plain, timeout=3)
        sent = hub.publish(topic, "ping", timeout=3, correlation_data=b"\x01req-7")
        assert sent.ok
        message = got.get(timeout=3)
        assert (message.topic, message.payload, message.correlation_data) == (
            topic,
            b"ping",
            b"\x01req-7",
        )
        assert plain.get()[1] == b"ping"  # both kinds of handler on one filter
        hub.unsubscribe(topic, got.put)
        assert hub.publish(topic, "two", timeout=3).ok
        assert plain.get()[1] == b"two"
        assert got.empty()  # the message handler is gone, the plain one stays
        hub.unsubscribe(topic, plain)
        assert hub.publish(topic, "three", timeout=3).ok
        time.sleep(0.3)
        assert plain.items.empty() and hub.stats.received == 2
    finally:
        hub.stop()


def test_mqtt_311_connects_and_exchanges(broker_env) -> None:
    hub = _started(broker_env.mqtt_config(protocol="3.1.1"), status_topic=None)
    dev = _started(broker_env.mqtt_config("dev_a", protocol="3.1.1"), status_topic=None)
    try:
        inbox = Inbox()
        assert hub.subscribe("home/dev_a/state", inbox, timeout=3)
        assert dev.publish("home/dev_a/state", "on", timeout=3).ok
        assert inbox.get()[1] == b"on"
        # 3.1.1 has no PUBACK reason: a denied QoS 1 publish looks successful, and is dropped.
        denied = dev.publish("home/dev_b/set", "x", timeout=3)
        assert denied.ok
    finally:
        dev.stop()
        hub.stop()


def test_handler_error_is_logged_and_next_message_handled(broker_env, caplog) -> None:
    hub = _started(broker_env.mqtt_config(), status_topic=None)
    seen: queue.Queue[dict] = queue.Queue()

    def strict(topic: str, payload: bytes, retained: bool) -> None:
        import json

        seen.put(json.loads(payload))  # raises on a malformed payload

    topic = f"hubagent/notify/test/{uuid.uuid4().hex[:6]}"
    try:
        assert hub.subscribe(topic, strict, timeout=3)
        with caplog.at_level(logging.WARNING, logger="hubagent.mqtt.client"):
            assert hub.publish(topic, "{not json", timeout=3).ok
            assert hub.publish(topic, '{"ok": 1}', timeout=3).ok
            assert seen.get(timeout=3) == {"ok": 1}
        assert hub.stats.handler_errors == 1
        failures = [r for r in caplog.records if "failed on" in r.getMessage()]
        assert len(failures) == 1 and topic in failures[0].getMessage()
        assert hub.connected
    finally:
        hub.stop()


def test_birth_and_clean_stop_leave_retained_status(broker_env) -> None:
    status = f"hubagent/notify/status-{uuid.uuid4().hex[:6]}"
    watcher = _started(broker_env.mqtt_config("hubagent-2"), status_topic=None)
    inbox = Inbox()
    try:
        assert watcher.subscribe(status, inbox, timeout=3)
        hub = _started(broker_env.mqtt_config(), status_topic=status)
        assert inbox.get()[1] == b"online"
        early = Inbox()
        probe = _started(broker_env.mqtt_config("hubagent-3"), status_topic=None)
        try:
            assert probe.subscribe(status, early, timeout=3)
            assert early.get() == (status, b"online", True)  # retained birth
        finally:
            probe.stop()
        hub.stop()
        assert inbox.get()[1] == b"offline"
        # A late subscriber sees the retained state.
        late = Inbox()
        other = _started(broker_env.mqtt_config("hubagent-3"), status_topic=None)
        try:
            assert other.subscribe(status, late, timeout=3)
            assert late.get() == (status, b"offline", True)
        finally:
            other.stop()
    finally:
        watcher.stop()


def test_last_will_offline_when_the_process_dies(broker_env) -> None:
    status = f"hubagent/notify/status-{uuid.uuid4().hex[:6]}"
    watcher = _started(broker_env.mqtt_config("hubagent-2"), status_topic=None)
    inbox = Inbox()
    cfg = broker_env.mqtt_config()
    script = textwrap.dedent(
        f"""
        import sys, time
        from hubagent.config import MqttConfig
        from hubagent.mqtt.client import MqttClient
        c = MqttClient(MqttConfig(**{cfg.__dict__!r}), status_topic={status!r})
        c.start()
        assert c.wait_connected(10)
        print("up", flush=True)
        time.sleep(60)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert watcher.subscribe(status, inbox, timeout=3)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "up"
        assert inbox.get(5)[1] == b"online"
        os.kill(proc.pid, signal.SIGKILL)  # no DISCONNECT: the broker must send the will
        assert inbox.get(5) == (status, b"offline", False)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        watcher.stop()


def test_reconnects_after_broker_kill_and_restores_subscriptions(fresh_broker) -> None:
    hub = MqttClient(fresh_broker.mqtt_config())
    changes: list[bool] = []
    hub.on_connection_change(changes.append)
    hub.start()
    assert hub.wait_connected(5), hub.last_error
    inbox = Inbox()
    try:
        assert hub.subscribe("home/+/state", inbox, timeout=3)
        fresh_broker.broker.kill()
        assert _wait(lambda: not hub.connected, 5)
        assert not hub.publish("hubagent/x", "y").ok  # a caller's outbox keeps it
        fresh_broker.broker.start()
        assert hub.wait_connected(10), hub.last_error
        assert _wait(lambda: changes == [True, False, True], 2), changes
        assert hub.stats.reconnects == 1
        dev = _started(fresh_broker.mqtt_config("dev_a"), status_topic=None)
        try:
            # The hub re-sent its SUBSCRIBE on connect; publish until it has taken effect.
            received = None
            for _ in range(30):
                assert dev.publish("home/dev_a/state", "back", timeout=2).ok
                try:
                    received = inbox.get(0.1)
                    break
                except queue.Empty:
                    continue
            assert received == ("home/dev_a/state", b"back", False)
        finally:
            dev.stop()
    finally:
        hub.stop()


def test_not_installed_message_says_how_to_install() -> None:
    assert "sudo apt-get install -y mosquitto mosquitto-clients" in str(MosquittoNotInstalled())


def test_broker_in_a_private_folder_starts_and_keeps_ports(broker_env, tmp_path) -> None:
    # pytest's tmp folders are 0700: as root the broker cannot drop to `mosquitto` there
    # and must still start (as root, with a warning) rather than fail on unreadable files.
    broker = MosquittoBroker(
        tmp_path / "b",
        broker_env.certs,
        broker_env.broker.passwd_file,
        broker_env.broker.acl_file,
    )
    with broker:
        ports = (broker.password_port, broker.cert_port)
        cfg = replace(broker_env.mqtt_config(), port=broker.password_port)
        client = _started(cfg, status_topic=None)
        client.stop()
        broker.restart()
        assert (broker.password_port, broker.cert_port) == ports
        assert " running" in broker.log_text()
    assert not broker.running
