"""Fault: the store's disk is full, or the store is read-only, while the hub runs.

The hub must keep controlling devices and say loudly that it cannot persist:
`health()["store_degraded"]` is True and the log carries one STORE DEGRADED line. The
store lives on a real tmpfs of its own (root only; skipped elsewhere).
"""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import BrokerEnv, make_broker_env
from faultkit import fill_disk, hub_config, tmpfs, wait_for, write_home

from hubagent.app import Hub
from hubagent.sim.simulator import Simulator


@pytest.fixture(scope="module")
def home_env(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Path, BrokerEnv, Simulator]]:
    tmp = tmp_path_factory.mktemp("disk")
    home = write_home(tmp)
    env = make_broker_env(tmp / "broker", ["lab_lamp", "front_door", "lab_plug"])
    sim = Simulator(home, env.mqtt_config, tick_interval=None)
    sim.start()
    yield home, env, sim
    sim.stop()
    env.close()


def start_hub(home: Path, env: BrokerEnv, sim: Simulator, db: Path) -> Hub:
    hub = Hub(hub_config(env.mqtt_config(), db, (str(home),)))
    assert hub.start(wait=10)
    wait_for(lambda: all(hub.registry.get(e) and hub.registry.get(e).state for e in sim.devices))
    return hub


def degraded_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "STORE DEGRADED" in r.getMessage()]


def test_full_disk_keeps_control_and_says_so(
    home_env: tuple[Path, BrokerEnv, Simulator],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    home, env, sim = home_env
    caplog.set_level(logging.INFO, logger="hubagent")
    with tmpfs(tmp_path / "disk", "4m") as disk:
        hub = start_hub(home, env, sim, disk / "hub.db")
        try:
            assert not hub.health()["store_degraded"]
            filled = fill_disk(disk)
            reply = hub.agent.handle("turn on the lab lamp", requester="t")
            assert [a.entity for a in reply.actions] == ["light.lab_lamp"]
            wait_for(lambda: sim.device("light.lab_lamp").ha_state()["state"] == "on")
            wait_for(lambda: hub.registry.get("light.lab_lamp").state.get("state") == "on")
            health = hub.health()
            lines = degraded_lines(caplog)
            print(
                f"\nfull disk: filled {filled / 1e6:.1f} MB; health {health}; "
                f"reason {hub.store.degraded_reason!r}; {len(lines)} STORE DEGRADED line(s)"
            )
            assert health["store_degraded"] and "full" in hub.store.degraded_reason
            assert health["mqtt_connected"] and health["outbox_pending"] == 0
            assert lines and "free disk space" in lines[0]
            # More requests keep working and do not repeat the loud line for the same error.
            received = len(sim.received)
            for i in range(5):
                text = f"turn {'on' if i % 2 == 0 else 'off'} the lab plug"
                assert hub.agent.handle(text, requester="t").actions
            assert sim.wait_received(received + 5)
            assert len(degraded_lines(caplog)) == len(lines)
            # The audit of what happened while degraded is still answered (from memory).
            assert hub.store.audit_entries(limit=1)[0].text == text

            (disk / "filler").unlink()  # space is back: the next write recovers
            reply = hub.agent.handle("turn off the lab lamp", requester="t")
            assert reply.actions
            wait_for(lambda: not hub.health()["store_degraded"])
        finally:
            hub.stop()


def test_read_only_store_keeps_control_and_says_so(
    home_env: tuple[Path, BrokerEnv, Simulator],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    home, env, sim = home_env
    caplog.set_level(logging.INFO, logger="hubagent")
    with tmpfs(tmp_path / "ro", "8m") as disk:
        first = start_hub(home, env, sim, disk / "hub.db")
        first.stop()  # a store with a schema, a key and states, then the disk turns read-only
        done = subprocess.run(
            ["mount", "-o", "remount,ro", str(disk)], capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        hub = start_hub(home, env, sim, disk / "hub.db")
        try:
            reply = hub.agent.handle("turn on the lab plug", requester="t")
            assert [a.entity for a in reply.actions] == ["switch.lab_plug"]
            wait_for(lambda: sim.device("switch.lab_plug").ha_state()["state"] == "on")
            health = hub.health()
            lines = degraded_lines(caplog)
            print(
                f"\nread-only store: health {health}; reason {hub.store.degraded_reason!r}; "
                f"{len(lines)} STORE DEGRADED line(s)"
            )
            assert health["store_degraded"] and health["mqtt_connected"]
            assert lines
        finally:
            hub.stop()


def test_audit_of_requests_during_a_full_disk_is_kept(
    home_env: tuple[Path, BrokerEnv, Simulator], tmp_path: Path
) -> None:
    """80 requests while the disk is full: every one of them is in the audit log once space
    is back, also after a restart (72 of 80 were lost before); health counts the held ones."""
    home, env, sim = home_env
    with tmpfs(tmp_path / "audit", "4m") as disk:
        db = disk / "hub.db"
        hub = start_hub(home, env, sim, db)
        try:
            fill_disk(disk)
            texts = [f"turn {'on' if i % 2 == 0 else 'off'} the lab plug" for i in range(80)]
            for text in texts:
                hub.agent.handle(text, requester="disk")  # executed or rate-limited: audited
            held = hub.health()["audit_pending"]
            assert hub.health()["store_degraded"] and held > 0
            (disk / "filler").unlink()
            wait_for(lambda: hub.health()["audit_pending"] == 0)
            print(f"\naudit: {held} of 80 entries held in memory while the disk was full")
        finally:
            hub.stop()
        hub = Hub(hub_config(env.mqtt_config(), db, (str(home),)))
        try:
            entries = [e for e in hub.store.audit_entries(limit=1000) if e.requester == "disk"]
            assert [e.text for e in reversed(entries)] == texts
        finally:
            hub.stop()
