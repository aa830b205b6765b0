"""Fault: the broker is killed for ~10 s while HTTP commands stream in, through the real stack.

Simulated devices (their own accounts, TLS, a reconnect backoff slower than the hub's) and
the hub with its HTTP API on a real mosquitto. The broker dies mid-stream and comes back
without its retained messages (no persistence). Every command the API acknowledged must
reach its device exactly once, or be reported as expired in the reply / audit log; none may
be lost because the hub replayed it before the device had resubscribed.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

from conftest import make_broker_env
from faultkit import hub_config, wait_for, write_home

from hubagent.act.executor import build_messages
from hubagent.app import Hub
from hubagent.config import HttpConfig, PolicyConfig, WyomingConfig
from hubagent.interfaces.server import Interfaces
from hubagent.sim.simulator import Simulator
from hubagent.types import Action

LAMPS_HOME = """\
name: Delivery home
language: en
areas: [{id: lab, name: Lab}]
devices:
  - id: light.lamp_a
    name: Lamp A
    area: lab
    attributes: {brightness: {min: 0, max: 100}}
    state: {state: "on", brightness: 50}
  - id: light.lamp_b
    name: Lamp B
    area: lab
    attributes: {brightness: {min: 0, max: 100}}
    state: {state: "on", brightness: 50}
"""
LAMPS = ("light.lamp_a", "light.lamp_b")
COMMANDS = 150
INTERVAL_S = 0.1  # the stream lasts 15 s
KILL_AT = 30  # commands sent before the broker dies
OUTAGE_S = 10.0


def post(url: str, token: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def test_broker_restart_during_http_commands_delivers_each_once(tmp_path: Path) -> None:
    env = make_broker_env(tmp_path / "broker", ["lamp_a", "lamp_b"])
    home = write_home(tmp_path, LAMPS_HOME)
    cfg = replace(
        hub_config(env.mqtt_config(), tmp_path / "hub.db", (str(home),)),
        policy=PolicyConfig(rate_limit_per_entity=10_000),
        http=HttpConfig(port=0, token="delivery-token"),
        wyoming=WyomingConfig(enabled=False),
    )

    def device_config(account: str) -> Any:
        # Devices back off longer than the hub: they come back seconds after it does.
        return replace(env.mqtt_config(account), reconnect_min_s=1.0, reconnect_max_s=8.0)

    sim = Simulator(home, device_config, tick_interval=None)
    sim.start()
    hub = Hub(cfg)
    interfaces = Interfaces(hub)
    try:
        assert hub.start(wait=10)
        wait_for(lambda: all(hub.registry.get(e) and hub.registry.get(e).mqtt for e in LAMPS))
        url = interfaces.start()["http"] + "/api/actions"
        expected: dict[str, list[str]] = {}  # payload -> its reply
        replies: list[dict[str, Any]] = []
        killer: threading.Thread | None = None
        started = time.monotonic()
        for i in range(COMMANDS):
            if i == KILL_AT:

                def outage() -> None:
                    env.broker.kill()
                    time.sleep(OUTAGE_S)
                    env.broker.restart()

                killer = threading.Thread(target=outage)
                killer.start()
            entity = LAMPS[i % 2]
            value = 1 + i // 2  # unique per lamp: 1..75 %
            action = Action(entity, "set_brightness", {"brightness": value})
            (message,) = build_messages(hub.registry.get(entity), action)
            reply = post(url, "delivery-token", {"actions": [action.to_dict()]})
            replies.append(reply)
            assert reply["actions"], reply
            expected.setdefault(f"{message.topic} {message.payload}", []).append(reply["reply"])
            if (delay := started + (i + 1) * INTERVAL_S - time.monotonic()) > 0:
                time.sleep(delay)
        assert killer is not None
        killer.join(30)

        def arrived() -> Counter[str]:
            return Counter(f"{t} {p.decode()}" for t, p in sim.received)

        deadline = time.monotonic() + 40
        while time.monotonic() < deadline and (
            sum(min(1, arrived()[k]) for k in expected) < len(expected)
            or hub.outbox.pending_count()
        ):
            time.sleep(0.1)
        time.sleep(1.5)  # a second copy of anything would arrive now
        counts = arrived()
        lost = [k for k in expected if counts[k] == 0]
        twice = [k for k in expected if counts[k] > 1]
        queued = sum(1 for r in replies if "queued" in r["reply"])
        print(
            f"\nbroker down {OUTAGE_S:.0f} s during {COMMANDS} HTTP commands: "
            f"{sum(counts[k] for k in expected)} delivered, {len(lost)} lost, "
            f"{len(twice)} twice; {queued} replies said queued; "
            f"{hub.mqtt.stats.reconnects} hub reconnects"
        )
        assert not lost, lost[:5]
        assert not twice, twice[:5]
    finally:
        interfaces.stop()
        hub.stop()
        sim.stop()
        env.close()


LAMP_A_HOME = LAMPS_HOME.split("  - id: light.lamp_b")[0]
LAMP_B_HOME = (
    LAMPS_HOME.split("devices:\n")[0]
    + "devices:\n  - id: light.lamp_b"
    + (LAMPS_HOME.split("  - id: light.lamp_b")[1])
)


def test_command_for_an_absent_device_waits_then_is_reported_expired(tmp_path: Path) -> None:
    env = make_broker_env(tmp_path / "broker", ["lamp_a", "lamp_b"])
    home_a = write_home(tmp_path, LAMP_A_HOME, "a.yaml")
    home_b = write_home(tmp_path, LAMP_B_HOME, "b.yaml")
    cfg = replace(
        hub_config(env.mqtt_config(), tmp_path / "hub.db", (), outbox_ttl_s=3.0),
        http=HttpConfig(port=0, token="delivery-token"),
        wyoming=WyomingConfig(enabled=False),
    )
    sim_a = Simulator(home_a, env.mqtt_config, tick_interval=None)
    sim_b = Simulator(home_b, env.mqtt_config, tick_interval=None)
    sim_a.start()
    sim_b.start()
    hub = Hub(cfg)
    interfaces = Interfaces(hub)
    try:
        assert hub.start(wait=10)
        wait_for(lambda: all(hub.registry.get(e) and hub.registry.get(e).mqtt for e in LAMPS))
        url = interfaces.start()["http"] + "/api/actions"
        sim_b.stop()  # says "offline" (retained) as it goes
        wait_for(lambda: not hub.registry.get("light.lamp_b").available)

        def brightness(entity: str, value: int) -> dict[str, Any]:
            action = {"entity": entity, "action": "set_brightness", "args": {"brightness": value}}
            return post(url, "delivery-token", {"actions": [action]})

        present = brightness("light.lamp_a", 33)
        absent = brightness("light.lamp_b", 44)
        print(f"\nreplies: {present['reply']!r} / {absent['reply']!r}")
        assert "queued" not in present["reply"] and sim_a.wait_received(1)
        assert absent["reply"].startswith("Lamp B is not reachable right now")
        assert "queued" in absent["reply"] and "Set the" not in absent["reply"]
        assert absent["actions"]  # accepted: it will go when the lamp is back in time
        wait_for(lambda: hub.outbox.pending_count() == 0, timeout=8)
        expired = [e for e in hub.store.audit_entries(20) if e.decision == "expired"]
        assert len(expired) == 1 and expired[0].understood["entity"] == "light.lamp_b"
        assert expired[0].requester == "http" and "TTL" in expired[0].reason
        sim_b.start()  # back after the TTL: the expired command is not sent late
        time.sleep(1.5)
        assert sim_b.received == []
    finally:
        interfaces.stop()
        hub.stop()
        sim_a.stop()
        sim_b.stop()
        env.close()
