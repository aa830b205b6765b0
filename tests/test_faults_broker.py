"""Fault: the broker is killed for 10 s while 1,000 commands are requested.

The hub queues every command in its SQLite outbox; after the broker restarts, the device
reconnects and resubscribes, the hub waits `outbox_resume_delay_s` and replays. Commands
still within their TTL arrive exactly once, the expired ones are reported and never sent.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from pathlib import Path

import pytest
from conftest import make_broker_env
from faultkit import COUNTER_HOME, Receiver, hub_config, wait_for, write_home

from hubagent.act.executor import build_messages
from hubagent.app import Hub
from hubagent.types import Action

OUTAGE_S = 10.0
COMMANDS = 1000
SHORT_TTL_S = 3.0
LONG_TTL_S = 300.0
# Short-TTL commands are only requested in the first 6 s of the outage, so each of them is
# past its TTL before the broker is back (no race with the replay decides the outcome).
SHORT_WINDOW_S = 6.0


def test_broker_outage_keeps_every_live_command_and_drops_the_expired(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    env = make_broker_env(tmp_path / "broker", ["faultnum"])
    home = write_home(tmp_path, COUNTER_HOME)
    # 2 s: the device's reconnect backoff tops out at 1 s; the hub must not replay before
    # the device has resubscribed (on two busy cores 1 s is too tight to prove anything).
    cfg = hub_config(
        env.mqtt_config(), tmp_path / "hub.db", (str(home),), outbox_resume_delay_s=2.0
    )
    device = Receiver(env.mqtt_config("faultnum"), ("home/faultnum/set",)).start()
    hub = Hub(cfg)
    try:
        assert hub.start(wait=10)
        entity = hub.registry.get("number.faultnum")
        assert entity is not None

        env.broker.kill()
        wait_for(lambda: not hub.mqtt.connected)
        killed = time.monotonic()
        short: set[str] = set()
        live: set[str] = set()
        for i in range(COMMANDS):
            # Spread the requests over the outage, as a busy home would.
            target = killed + i * (OUTAGE_S - 0.5) / COMMANDS
            if (delay := target - time.monotonic()) > 0:
                time.sleep(delay)
            is_short = i % 4 == 0 and time.monotonic() - killed < SHORT_WINDOW_S
            (message,) = build_messages(entity, Action(entity.entity_id, "set_value", {"value": i}))
            cid = f"cmd-{i:04d}"
            hub.outbox.send(message, command_id=cid, ttl_s=SHORT_TTL_S if is_short else LONG_TTL_S)
            (short if is_short else live).add(cid)
        assert hub.outbox.pending_count() == COMMANDS
        assert device.payloads() == []
        wait_for(lambda: time.monotonic() - killed >= OUTAGE_S, timeout=OUTAGE_S + 1)
        env.broker.restart()
        restarted = time.monotonic()

        assert device.wait_count(len(live), timeout=30), f"{len(device.payloads())} arrived"
        wait_for(lambda: hub.outbox.pending_count() == 0, timeout=10)
        delivered_s = time.monotonic() - restarted
        time.sleep(1.0)  # anything sent twice would arrive now

        counts = Counter(int(p) for p in device.payloads())
        delivered = {f"cmd-{v:04d}" for v in counts}
        duplicates = {v: n for v, n in counts.items() if n > 1}
        expired_logged = {
            r.args[0]
            for r in caplog.records
            if r.getMessage().startswith("outbox: dropped expired command")
        }
        rows = dict(hub.store.query("SELECT id, status FROM outbox"))
        print(
            f"\nbroker outage {OUTAGE_S:.0f} s: {COMMANDS} requested, {len(live)} live, "
            f"{len(short)} short-TTL; delivered {sum(counts.values())} "
            f"({len(delivered)} unique) {delivered_s:.2f} s after the restart, "
            f"{len(expired_logged)} reported expired, duplicates {len(duplicates)}, "
            f"outbox statuses {Counter(rows.values())}"
        )
        assert not duplicates
        assert delivered == live  # every live command exactly once, none lost
        assert expired_logged == short  # every expired one reported, none delivered
        assert all(rows[c] == "expired" for c in short)
        assert all(rows[c] == "sent" for c in live)
        assert any("expired while offline" in r.getMessage() for r in caplog.records)
        assert hub.health()["outbox_pending"] == 0 and hub.health()["mqtt_connected"]
    finally:
        hub.stop()
        device.stop()
        env.close()
