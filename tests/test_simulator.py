"""The simulator against a real mosquitto (TLS, passwords, ACLs) with the demo home's accounts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from conftest import BrokerEnv, make_broker_env

from hubagent.config import Config
from hubagent.home.homefile import load_home
from hubagent.mqtt.client import MqttClient
from hubagent.security.acl import device_accounts_from_homes
from hubagent.sim.devices import make_device
from hubagent.sim.simulator import (
    Simulator,
    SimulatorError,
    device_mqtt_configs,
    find_accounts_file,
    run_simulator,
)

REPO = Path(__file__).resolve().parents[1]
DEMO_HOME = REPO / "devices" / "demo-home.yaml"
N_DEVICES = len(load_home(DEMO_HOME).raw_devices)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerEnv]:
    accounts = device_accounts_from_homes([DEMO_HOME])
    broker_env = make_broker_env(tmp_path_factory.mktemp("sim"), accounts)
    yield broker_env
    broker_env.close()


class Recorder:
    """The hub's view: every message under the discovery prefix and `home/`."""

    def __init__(self, env: BrokerEnv) -> None:
        self.messages: dict[str, bytes] = {}
        self.log: list[tuple[str, bytes]] = []
        self.cond = threading.Condition()
        self.client = MqttClient(env.mqtt_config(), status_topic=None)
        for topic in ("homeassistant/#", "home/+/state", "home/+/availability"):
            self.client.subscribe(topic, self.on_message)
        self.client.start()
        assert self.client.wait_connected(10)

    def on_message(self, topic: str, payload: bytes, retained: bool) -> None:
        with self.cond:
            self.messages[topic] = payload
            self.log.append((topic, payload))
            self.cond.notify_all()

    def wait(self, predicate, timeout: float = 10.0) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: predicate(self), timeout)

    def count(self, suffix: str) -> int:
        return sum(1 for t in self.messages if t.endswith(suffix))

    def stop(self) -> None:
        self.client.stop()


def test_devices_announce_and_answer_commands(env: BrokerEnv) -> None:
    sim = Simulator(DEMO_HOME, env.mqtt_config, tick_interval=None)
    t0 = time.perf_counter()
    sim.start(timeout=15)
    started_s = time.perf_counter() - t0
    hub = Recorder(env)
    try:
        # Retained discovery, state and availability of every device reach the hub account.
        assert hub.wait(
            lambda r: (
                r.count("/config") >= N_DEVICES
                and r.count("/state") >= N_DEVICES
                and sum(
                    1
                    for t, p in r.messages.items()
                    if t.endswith("/availability") and p == b"online"
                )
                >= N_DEVICES
            )
        ), f"got {len(hub.messages)} topics"
        configs = {
            json.loads(p).get("default_entity_id", json.loads(p).get("def_ent_id"))
            for t, p in hub.messages.items()
            if t.endswith("/config")
        }
        assert configs == set(sim.devices)
        assert json.loads(hub.messages["home/kitchen_ceiling/state"])["state"] == "OFF"

        # The hub account commands a light; the simulated bulb changes and reports back.
        before = len(hub.log)
        t1 = time.perf_counter()
        result = hub.client.publish(
            "home/kitchen_ceiling/set", '{"state": "ON", "brightness": 127}', timeout=5
        )
        assert result.ok, result.reason
        assert hub.wait(
            lambda r: any(
                t == "home/kitchen_ceiling/state" and json.loads(p)["state"] == "ON"
                for t, p in r.log[before:]
            )
        )
        round_trip_ms = (time.perf_counter() - t1) * 1000
        light = sim.device("light.kitchen_ceiling")
        assert light.ha_state()["state"] == "on" and light.ha_state()["brightness"] == 50
        assert sim.wait_received(1)
        assert ("home/kitchen_ceiling/set", b'{"state": "ON", "brightness": 127}') in sim.received

        # A secondary command topic and a bad payload (ignored, the device stays up).
        hub.client.publish("home/living_room_ac/temperature/set", "nonsense", timeout=5)
        hub.client.publish("home/living_room_ac/temperature/set", "20", timeout=5)
        assert hub.wait(
            lambda r: json.loads(r.messages["home/living_room_ac/state"])["temperature"] == 20
        )
        assert sim.device("climate.living_room_ac").ha_state()["temperature"] == 20

        # Something happens in the house: the front door opens.
        sim.set_device_state("binary_sensor.front_door_contact", {"contact": False})
        assert hub.wait(
            lambda r: json.loads(r.messages["home/front_door_contact/state"]) == {"contact": False}
        )
        print(
            f"\nstart {started_s:.2f} s for {N_DEVICES} devices, command round trip {round_trip_ms:.1f} ms"
        )
    finally:
        sim.stop()
    # A clean stop leaves every device `offline` (retained) for the hub.
    assert hub.wait(
        lambda r: all(
            r.messages.get(f"home/{d.account}/availability") == b"offline"
            for d in sim.devices.values()
        )
    )
    hub.stop()


def test_every_simulated_publish_is_allowed_by_the_acl(env: BrokerEnv) -> None:
    """What each device announces passes the broker's ACL (MQTT 5 PUBACK, not 0x87)."""
    denied = []
    for raw in load_home(DEMO_HOME).raw_devices:
        device = make_device(raw)
        client = MqttClient(env.mqtt_config(device.account), status_topic=None)
        client.start()
        try:
            assert client.wait_connected(10), client.last_error
            messages = [device.discovery_message(), *device.state_messages()]
            for topic, payload in [*messages, (device.availability_topic, "online")]:
                result = client.publish(topic, payload, retain=True, timeout=5)
                if not result.ok:
                    denied.append((topic, result.reason))
            # Control: the same account is refused outside its own subtree.
            assert not client.publish("home/not_mine/state", "x", timeout=5).ok
        finally:
            client.stop()
    assert denied == []


def test_devices_announce_again_after_a_broker_restart(env: BrokerEnv) -> None:
    sim = Simulator(DEMO_HOME, env.mqtt_config, tick_interval=None)
    sim.start(timeout=15)
    try:
        # The test broker keeps nothing across a restart (persistence false): the retained
        # discovery the hub sees afterwards exists only because the devices re-announced.
        env.broker.restart()
        time.sleep(0.5)
        hub = Recorder(env)
        try:
            assert hub.wait(
                lambda r: r.count("/config") >= N_DEVICES and r.count("/state") >= N_DEVICES, 15
            ), f"got {hub.count('/config')} configs after the restart"
            assert hub.wait(lambda r: r.messages.get("home/front_door/availability") == b"online")
        finally:
            hub.stop()
    finally:
        sim.stop()


def test_sensors_publish_drift_when_ticked(env: BrokerEnv) -> None:
    sim = Simulator(DEMO_HOME, env.mqtt_config, tick_interval=0.05)
    sim.start(timeout=15)
    hub = Recorder(env)
    try:
        assert hub.wait(lambda r: "home/office_co2/state" in r.messages)
        first = json.loads(hub.messages["home/office_co2/state"])["co2"]
        assert hub.wait(
            lambda r: json.loads(r.messages["home/office_co2/state"])["co2"] != first, 10
        )
    finally:
        sim.stop()
        hub.stop()


def test_run_simulator_until_stopped(env: BrokerEnv, tmp_path: Path) -> None:
    accounts_file = tmp_path / "accounts.yaml"
    accounts_file.write_text(
        yaml.safe_dump(
            {
                "hub": {
                    "username": env.accounts.hub_username,
                    "password": env.accounts.hub_password,
                },
                "devices": env.accounts.devices,
            }
        )
    )
    mqtt = replace(env.mqtt_config(), username=None, password=None)
    cfg = Config(mqtt=mqtt)
    stop = threading.Event()
    codes: list[int] = []
    runner = threading.Thread(
        target=lambda: codes.append(
            run_simulator(
                DEMO_HOME, cfg, str(env.certs.directory), accounts_file=accounts_file, stop=stop
            )
        )
    )
    hub = Recorder(env)
    try:
        runner.start()
        assert hub.wait(
            lambda r: (
                r.messages.get("home/front_door/availability") == b"online"
                and "homeassistant/lock/front_door/front_door/config" in r.messages
            )
        )
    finally:
        stop.set()
        runner.join(15)
    assert codes == [0]
    assert hub.wait(lambda r: r.messages.get("home/front_door/availability") == b"offline")
    hub.stop()


def test_cli_simulate_stops_cleanly_on_sigterm(env: BrokerEnv, tmp_path: Path) -> None:
    config = tmp_path / "hubagent.yaml"
    mqtt = env.mqtt_config()
    config.write_text(
        yaml.safe_dump({"mqtt": {"host": mqtt.host, "port": mqtt.port, "ca_file": mqtt.ca_file}})
    )
    accounts_file = tmp_path / "accounts.yaml"
    accounts_file.write_text(
        yaml.safe_dump(
            {"hub": {"username": "hubagent", "password": "x"}, "devices": env.accounts.devices}
        )
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hubagent",
            "simulate",
            str(DEMO_HOME),
            "--certs",
            str(env.certs.directory),
            "-c",
            str(config),
        ],
        env={**os.environ, "HUBAGENT_ACCOUNTS": str(accounts_file)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith(f"simulating {N_DEVICES} devices"), line + proc.stderr.read()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_clear_errors_for_missing_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HUBAGENT_ACCOUNTS", raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SimulatorError, match="nope.yaml: home file not found"):
        run_simulator(tmp_path / "nope.yaml", Config(), None)
    with pytest.raises(SimulatorError, match="accounts file not found.*hubagent acl"):
        run_simulator(DEMO_HOME, Config(), str(tmp_path / "certs"))


def test_accounts_file_search_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HUBAGENT_ACCOUNTS", raising=False)
    monkeypatch.chdir(tmp_path)
    certs = tmp_path / "deploy" / "certs"
    certs.mkdir(parents=True)
    (certs / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\n")
    beside = tmp_path / "deploy" / "accounts.yaml"
    beside.write_text(
        yaml.safe_dump(
            {"hub": {"username": "hubagent", "password": "h"}, "devices": {"kitchen_ceiling": "pw"}}
        )
    )
    assert find_accounts_file(str(certs)) == beside
    conf_dir = tmp_path / "etc"
    conf_dir.mkdir()
    (conf_dir / "accounts.yaml").write_text(beside.read_text())
    assert (
        find_accounts_file(None, config_path=conf_dir / "hubagent.yaml")
        == conf_dir / "accounts.yaml"
    )
    inside = certs / "accounts.yaml"
    inside.write_text(beside.read_text())
    assert find_accounts_file(str(certs)) == inside
    monkeypatch.setenv("HUBAGENT_ACCOUNTS", str(beside))
    assert find_accounts_file(str(certs)) == beside
    config_for = device_mqtt_configs(Config(), str(certs), beside)
    cfg = config_for("kitchen_ceiling")
    assert (cfg.username, cfg.password) == ("kitchen_ceiling", "pw")
    assert cfg.ca_file == str(certs / "ca.crt") and cfg.client_id == "hubagent-sim-kitchen_ceiling"
    with pytest.raises(KeyError):
        config_for("not_a_device")


def test_devices_without_account_are_skipped_and_bad_logins_are_reported(
    env: BrokerEnv, tmp_path: Path
) -> None:
    home = tmp_path / "small.yaml"
    home.write_text(
        yaml.safe_dump(
            {
                "name": "Small",
                "devices": [
                    {"id": "light.kitchen_ceiling", "attributes": {"brightness": {}}},
                    {"id": "lock.front_door"},
                    {"id": "media_player.telly"},  # no simulator for it: skipped, logged
                ],
            }
        )
    )

    def only_the_light(account: str):
        if account != "kitchen_ceiling":
            raise KeyError(account)
        return env.mqtt_config(account)

    sim = Simulator(home, only_the_light, tick_interval=None)
    assert set(sim.devices) == {"light.kitchen_ceiling", "lock.front_door"}
    sim.start(timeout=10)
    try:
        assert set(sim._clients) == {"light.kitchen_ceiling"}
    finally:
        sim.stop()

    wrong = Simulator(home, lambda a: env.mqtt_config(a, password="wrong"), tick_interval=None)
    with pytest.raises(SimulatorError, match="could connect.*refused"):
        wrong.start(timeout=1.5)
