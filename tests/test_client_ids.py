"""Client ids bound to accounts (issue 14, attack 4), on a real mosquitto.

Measured before the fix: a device account connecting with the hub's client id kicked the hub
8 times in 3 s (each reconnect kicks the other side back). The generated broker config now
has `use_username_as_clientid true`, so the client id a login asks for is ignored.
"""

from __future__ import annotations

import logging
import time

import pytest

from hubagent.mqtt.client import MqttClient
from hubagent.mqtt.takeover import SESSION_TAKEN_OVER, TakeoverWatch


def _started(cfg) -> MqttClient:
    client = MqttClient(cfg, status_topic=None)
    client.start()
    assert client.wait_connected(5), client.last_error
    return client


def test_a_device_using_the_hubs_client_id_does_not_kick_the_hub(broker_env) -> None:
    hub = _started(broker_env.mqtt_config(client_id="hubagent"))
    received: list[bytes] = []
    victim = MqttClient(broker_env.mqtt_config("dev_b", client_id="dev_b"), status_topic=None)
    victim.subscribe("home/dev_b/set", lambda t, p, r: received.append(p))
    victim.start()
    assert victim.wait_connected(5)
    attackers = [
        _started(broker_env.mqtt_config("dev_a", client_id="hubagent")),
        _started(broker_env.mqtt_config("dev_a", cert_auth=True, client_id="dev_b")),
    ]
    try:
        time.sleep(2)  # unbound, the hub was kicked ~3 times a second
        for n in range(5):
            assert hub.publish("home/dev_b/set", f"LOCK {n}", timeout=3).ok
        deadline = time.monotonic() + 3
        while len(received) < 5 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert received == [f"LOCK {n}".encode() for n in range(5)]
        assert hub.connected and hub.stats.reconnects == 0
        assert victim.connected and victim.stats.reconnects == 0
        assert not hub.takeover.warned
    finally:
        for client in (*attackers, victim, hub):
            client.stop()


def test_a_second_login_of_the_same_account_is_reported_once(
    broker_env, caplog: pytest.LogCaptureFixture
) -> None:
    """With client ids bound to usernames, the only way left to lose the session is a
    second process on the same account; the hub says so once instead of a log line per kick."""
    caplog.set_level(logging.WARNING, logger="hubagent.mqtt.client")
    first = _started(broker_env.mqtt_config("hubagent-3"))
    second = MqttClient(broker_env.mqtt_config("hubagent-3"), status_topic=None)
    second.start()
    try:
        deadline = time.monotonic() + 10
        while not (first.takeover.warned and second.takeover.warned):
            assert time.monotonic() < deadline, (first.takeover, second.takeover)
            time.sleep(0.05)
        kicked = time.time()
        time.sleep(1)  # they keep kicking each other; the error is not repeated
    finally:
        second.stop()
        first.stop()
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 2, errors  # one per client
    assert all("session taken over" in e and "'hubagent-3'" in e for e in errors)
    assert first.takeover.suspected >= 3 and second.takeover.suspected >= 3
    # After the error, the kicks are no longer a warning each.
    after = [r for r in caplog.records if r.levelno == logging.WARNING and r.created > kicked]
    assert after == [], [r.getMessage() for r in after]


def test_takeover_watch_counts_only_short_connections() -> None:
    watch = TakeoverWatch(threshold=3, window_s=60, short_s=10)
    for t in (0, 100, 200, 300):  # long-lived connections lost (broker restarts)
        watch.connected(t)
        assert watch.disconnected(0x80, t + 50) is None
    assert watch.suspected == 0
    answers = []
    for t in (1000, 1001, 1002, 1003):
        watch.connected(t)
        answers.append(watch.disconnected(0x80, t + 0.3))
    assert answers[:2] == [None, None] and answers[2] and answers[3] is None  # once
    explicit = TakeoverWatch()
    explicit.connected(0)
    assert "0x8E" in (explicit.disconnected(SESSION_TAKEN_OVER, 3600) or "")
