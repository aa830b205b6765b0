"""The offline outbox on a real SQLite file: order, exactly once, expiry, crash survival."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from hubagent.store.db import Store
from hubagent.store.outbox import Outbox
from hubagent.types import MqttMessage


class FakeLink:
    """A publish function whose connectivity the test controls (the broker is not the subject)."""

    def __init__(self) -> None:
        self.up = False
        self.published: list[MqttMessage] = []

    def __call__(self, msg: MqttMessage) -> bool:
        if self.up:
            self.published.append(msg)
        return self.up


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def msg(i: int) -> MqttMessage:
    return MqttMessage(f"home/light{i}/set", f'{{"state": "ON", "n": {i}}}')


def test_queues_while_disconnected_then_flushes_in_order_once(tmp_path: Path) -> None:
    link = FakeLink()
    with Store(tmp_path / "hub.db") as store:
        outbox = Outbox(store, link)
        ids = [outbox.send(msg(i)) for i in range(5)]
        assert outbox.pending_count() == 5 and link.published == []
        assert outbox.flush().sent == []  # publish returns False: nothing marked sent
        link.up = True
        report = outbox.set_connected(True)
        assert report is not None and report.sent == ids and report.pending == 0
        assert [m.payload for m in link.published] == [msg(i).payload for i in range(5)]
        assert outbox.flush().sent == []  # already sent: never again
        assert len(link.published) == 5
        # Connected: a new command goes straight out.
        new_id = outbox.send(msg(9))
        assert link.published[-1] == msg(9) and outbox.pending_count() == 0
        assert new_id not in ids


def test_stops_at_first_failure_to_keep_order(tmp_path: Path) -> None:
    calls: list[str] = []

    def flaky(m: MqttMessage) -> bool:
        calls.append(m.topic)
        return len(calls) != 2  # the second publish fails (link dropped)

    with Store(tmp_path / "hub.db") as store:
        outbox = Outbox(store, flaky)
        for i in range(3):
            outbox.send(msg(i))
        report = outbox.flush()
        assert len(report.sent) == 1 and report.pending == 2
        report = outbox.flush()
        assert len(report.sent) == 2
        assert calls == ["home/light0/set", "home/light1/set", "home/light1/set", "home/light2/set"]


def test_duplicate_id_ignored(tmp_path: Path) -> None:
    link = FakeLink()
    with Store(tmp_path / "hub.db") as store:
        outbox = Outbox(store, link)
        assert outbox.send(msg(1), command_id="cmd-1") == "cmd-1"
        outbox.send(msg(2), command_id="cmd-1")  # a retry of the same request
        assert outbox.pending_count() == 1
        link.up = True
        outbox.flush()
        outbox.send(msg(1), command_id="cmd-1")  # after it was sent: still ignored
        assert outbox.flush().sent == []
        assert link.published == [msg(1)]


def test_expired_dropped_reported_never_sent(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    link = FakeLink()
    clock = Clock()
    with Store(tmp_path / "hub.db") as store:
        outbox = Outbox(store, link, ttl_s=300, clock=clock)
        old = outbox.send(MqttMessage("home/garage/set", "OPEN"), ttl_s=10)
        fresh = outbox.send(msg(1))
        clock.now += 60
        link.up = True
        with caplog.at_level(logging.WARNING):
            report = outbox.flush()
        assert report.expired == [old] and report.sent == [fresh]
        assert link.published == [msg(1)]
        assert any("home/garage/set" in r.getMessage() for r in caplog.records)
        assert outbox.flush().expired == []  # reported once
        # While disconnected, expired commands are still dropped (behind a blocked one).
        link.up = False
        first = outbox.send(msg(2), ttl_s=1000)
        short = outbox.send(msg(3), ttl_s=5)
        clock.now += 10
        report = outbox.flush()
        assert report.sent == [] and report.expired == [short] and report.pending == 1
        link.up = True
        assert outbox.flush().sent == [first]


def test_survives_process_kill(tmp_path: Path) -> None:
    path = tmp_path / "hub.db"
    script = textwrap.dedent(
        f"""
        import os, signal
        from hubagent.store.db import Store
        from hubagent.store.outbox import Outbox
        from hubagent.types import MqttMessage
        store = Store({str(path)!r})
        outbox = Outbox(store, lambda m: False)
        for i in range(3):
            outbox.send(MqttMessage("home/x/set", str(i)), command_id=f"c{{i}}")
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], timeout=60, capture_output=True)
    assert proc.returncode == -9, proc.stderr.decode()
    link = FakeLink()
    link.up = True
    with Store(path) as store:
        outbox = Outbox(store, link)
        assert outbox.pending_count() == 3
        assert outbox.flush().sent == ["c0", "c1", "c2"]
    assert [m.payload for m in link.published] == ["0", "1", "2"]


def test_degraded_store_keeps_commands_in_memory(tmp_path: Path) -> None:
    path = tmp_path / "hub.db"
    Store(path).close()
    link = FakeLink()
    with Store(path, readonly=True) as store:
        outbox = Outbox(store, link)
        cid = outbox.send(msg(1))
        assert store.degraded and outbox.pending_count() == 1
        link.up = True
        assert outbox.flush().sent == [cid]
        assert outbox.flush().sent == []  # the "sent" mark failed on disk, still not resent
        assert link.published == [msg(1)]


def test_outbox_throughput(tmp_path: Path) -> None:
    link = FakeLink()
    link.up = True
    n = 500
    with Store(tmp_path / "hub.db") as store:
        outbox = Outbox(store, link)
        outbox.set_connected(True)
        start = time.perf_counter()
        for i in range(n):
            outbox.send(msg(i))
        elapsed = time.perf_counter() - start
        print(f"\noutbox: {n / elapsed:,.0f} commands/s (persist, publish, mark sent)")
        assert len(link.published) == n and outbox.pending_count() == 0
    assert n / elapsed > 50


# -- real broker ----------------------------------------------------------------------------


@pytest.mark.broker
def test_outbox_over_real_broker_queues_until_connected(broker_env, tmp_path: Path) -> None:
    """Commands queued while the hub is offline reach a device, in order, once, after connect."""
    from hubagent.mqtt.client import MqttClient

    received: list[str] = []
    got_all = threading.Event()

    def on_command(topic: str, payload: bytes, retained: bool) -> None:
        received.append(payload.decode())
        if len(received) >= 5:
            got_all.set()

    device = MqttClient(broker_env.mqtt_config("dev_a"), status_topic=None)
    device.start()
    hubs: list[MqttClient] = []
    try:
        assert device.wait_connected(10)
        assert device.subscribe("home/dev_a/+/set", on_command, timeout=10)
        path = tmp_path / "hub.db"

        def hub_with_outbox(store: Store) -> tuple[MqttClient, Outbox]:
            hub = MqttClient(broker_env.mqtt_config(), status_topic=None)
            hubs.append(hub)
            outbox = Outbox(store, lambda m: hub.publish(m.topic, m.payload, m.qos, m.retain).ok)
            hub.on_connection_change(outbox.set_connected)
            return hub, outbox

        # Offline: the hub has not connected yet, commands wait in SQLite.
        with Store(path) as store:
            hub, outbox = hub_with_outbox(store)
            for i in range(3):
                outbox.send(MqttMessage("home/dev_a/lamp/set", f"cmd{i}"))
            assert outbox.pending_count() == 3
        # Hub restarts (new process state), queues two more, then connects.
        with Store(path) as store:
            hub, outbox = hub_with_outbox(store)
            for i in range(3, 5):
                outbox.send(MqttMessage("home/dev_a/lamp/set", f"cmd{i}"))
            assert outbox.pending_count() == 5
            hub.start()
            assert hub.wait_connected(10)
            assert got_all.wait(10), received
            assert outbox.pending_count() == 0
            time.sleep(0.3)  # nothing more arrives: each command exactly once
        assert received == [f"cmd{i}" for i in range(5)]
    finally:
        for hub in hubs:
            hub.stop()
        device.stop()
