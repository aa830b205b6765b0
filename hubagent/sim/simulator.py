"""The MQTT side of the simulated devices: one connection per device account.

Each device connects with its own account (the ACL only lets it touch its own topics),
announces itself like real firmware (retained discovery, retained state, `online`
availability with an `offline` last will) and answers commands with state messages. It
announces again on every reconnect and whenever Home Assistant's status topic says
`online`, so a broker without persistence gets everything back after a restart.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from types import FrameType
from typing import Any

from hubagent.config import Config, MqttConfig
from hubagent.home.homefile import load_home
from hubagent.mqtt.client import MqttClient
from hubagent.security.acl import load_accounts
from hubagent.sim.devices import Message, SimDevice, make_device

log = logging.getLogger(__name__)

ACCOUNTS_ENV = "HUBAGENT_ACCOUNTS"


class SimulatorError(ValueError):
    """A simulator that cannot run; the message is one line for the terminal."""


class Simulator:
    """Simulated devices from a home file, each speaking MQTT with its own account."""

    def __init__(
        self,
        home_path: Path,
        mqtt_config_for: Callable[[str], MqttConfig],
        *,
        device_root: str = "home",
        tick_interval: float | None = 5.0,
    ) -> None:
        self.home_path = Path(home_path)
        self.mqtt_config_for = mqtt_config_for
        self.tick_interval = tick_interval
        self.home = load_home(self.home_path)  # HomeFileError names file and entry
        self.devices: dict[str, SimDevice] = {}
        for raw in self.home.raw_devices:
            try:
                device = make_device(raw, root=device_root)
            except ValueError as exc:
                log.warning("%s: %s; device skipped", self.home_path, exc)
                continue
            if device.entity_id in self.devices:
                log.warning("%s: %s listed twice; first kept", self.home_path, device.entity_id)
                continue
            self.devices[device.entity_id] = device
        self.received: list[tuple[str, bytes]] = []  # every command, in arrival order
        self._received_cond = threading.Condition()
        self._state_lock = threading.Lock()  # devices change in network and tick threads
        self._clients: dict[str, MqttClient] = {}
        self._announced: dict[str, threading.Event] = {}
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> None:
        """Connect every device and wait until each has announced itself.

        Devices that cannot connect within `timeout` are logged and keep retrying in the
        background; SimulatorError when none connects at all.
        """
        self._stop.clear()
        for device in self.devices.values():
            try:
                cfg = self.mqtt_config_for(device.account)
            except (KeyError, ValueError) as exc:
                log.warning("%s: no MQTT account (%s); device skipped", device.entity_id, exc)
                continue
            device.discovery_prefix = cfg.discovery_prefix
            self._clients[device.entity_id] = self._connect(device, cfg)
        if not self._clients:
            raise SimulatorError(f"{self.home_path}: no device has an MQTT account")
        deadline = time.monotonic() + timeout
        late = [
            entity_id
            for entity_id, event in self._announced.items()
            if not event.wait(max(0.0, deadline - time.monotonic()))
        ]
        if len(late) == len(self._clients):
            client = next(iter(self._clients.values()))
            reason = client.last_error or "no answer"
            self.stop()
            raise SimulatorError(
                f"no simulated device could connect to {client.cfg.host}:{client.cfg.port}: "
                f"{reason}"
            )
        for entity_id in late:
            client = self._clients[entity_id]
            log.warning("%s: not connected yet (%s)", entity_id, client.last_error or "no answer")
        if self.tick_interval:
            self._ticker = threading.Thread(target=self._tick_loop, name="sim-tick", daemon=True)
            self._ticker.start()
        log.info("%d simulated devices online", len(self._clients) - len(late))

    def stop(self) -> None:
        """Say `offline` (retained) for every device and disconnect."""
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join(timeout=2.0)
            self._ticker = None
        for client in self._clients.values():
            client.stop()
        self._clients.clear()
        self._announced.clear()

    def __enter__(self) -> Simulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- queries for tests and benchmarks ------------------------------------------------

    def device(self, entity_id: str) -> SimDevice:
        """The simulated device with this entity id (KeyError when there is none)."""
        return self.devices[entity_id]

    def client(self, entity_id: str) -> MqttClient:
        """A device's own connection. The broker binds client ids to accounts, so a test
        that plays the device compromised speaks through this one (a second login of the
        account would kick it)."""
        return self._clients[entity_id]

    def wait_received(self, count: int, timeout: float = 5.0) -> bool:
        """Wait until at least `count` commands arrived in total."""
        with self._received_cond:
            return self._received_cond.wait_for(lambda: len(self.received) >= count, timeout)

    def set_device_state(self, entity_id: str, values: dict[str, Any]) -> None:
        """Change a device's own state from outside (a door opens) and publish it."""
        device = self.devices[entity_id]
        with self._state_lock:
            device.state.update(values)
            messages = device.state_messages()
        client = self._clients.get(entity_id)
        if client is not None:
            self._publish(client, messages)

    def tick(self, now: float | None = None) -> None:
        """Advance every device's simulated time once and publish what changed."""
        now = time.time() if now is None else now
        for entity_id, client in list(self._clients.items()):
            device = self.devices[entity_id]
            with self._state_lock:
                messages = device.tick(now)
            self._publish(client, messages)

    # -- internals -----------------------------------------------------------------------

    def _connect(self, device: SimDevice, cfg: MqttConfig) -> MqttClient:
        # The client's status topic is the device's availability: `online` retained on
        # connect, `offline` as last will and on a clean stop.
        client = MqttClient(cfg, status_topic=device.availability_topic)
        announced = self._announced[device.entity_id] = threading.Event()

        def on_command(topic: str, payload: bytes, retained: bool) -> None:
            with self._received_cond:
                self.received.append((topic, payload))
                self._received_cond.notify_all()
            with self._state_lock:
                messages = device.handle_command(topic, payload)
            self._publish(client, messages)

        def on_ha_status(topic: str, payload: bytes, retained: bool) -> None:
            if payload.strip().lower() == b"online":
                self._announce(device, client)

        def on_connection(up: bool) -> None:
            if up:
                self._announce(device, client)
                announced.set()

        for topic in device.command_topics():
            client.subscribe(topic, on_command)
        client.subscribe(f"{cfg.discovery_prefix}/status", on_ha_status)
        client.on_connection_change(on_connection)
        client.start()
        return client

    def _announce(self, device: SimDevice, client: MqttClient) -> None:
        with self._state_lock:
            messages = [device.discovery_message(), *device.state_messages()]
        self._publish(client, messages)

    def _publish(self, client: MqttClient, messages: list[Message]) -> None:
        for topic, payload in messages:
            result = client.publish(topic, payload, qos=1, retain=True)
            if not result.ok:
                log.warning("publish to %s failed: %s", topic, result.reason)

    def _tick_loop(self) -> None:
        assert self.tick_interval
        while not self._stop.wait(self.tick_interval):
            try:
                self.tick()
            except Exception:  # a bug in one device must not stop the others' telemetry
                log.exception("simulated device tick failed")


def find_accounts_file(
    certs_dir: str | None,
    explicit: str | Path | None = None,
    config_path: str | Path | None = None,
) -> Path:
    """Where `accounts.yaml` (from `hubagent acl`) is, first match wins.

    Order: `explicit`, `$HUBAGENT_ACCOUNTS`, `<certs>/accounts.yaml`,
    `<certs>/../accounts.yaml`, `<folder of the config file>/accounts.yaml`,
    `./accounts.yaml` (where `hubagent acl` writes by default).
    """
    candidates: list[Path] = []
    if explicit:
        candidates.append(Path(explicit))
    elif os.environ.get(ACCOUNTS_ENV):
        candidates.append(Path(os.environ[ACCOUNTS_ENV]))
    else:
        if certs_dir:
            candidates += [
                Path(certs_dir) / "accounts.yaml",
                Path(certs_dir).parent / "accounts.yaml",
            ]
        if config_path:
            candidates.append(Path(config_path).parent / "accounts.yaml")
        candidates.append(Path("accounts.yaml"))
    for path in candidates:
        if path.is_file():
            return path
    looked = ", ".join(str(p) for p in candidates)
    raise SimulatorError(
        f"accounts file not found (looked in {looked}); write it with `hubagent acl --out DIR "
        f"--home HOME` or set {ACCOUNTS_ENV}"
    )


def device_mqtt_configs(
    cfg: Config, certs_dir: str | None, accounts_file: Path
) -> Callable[[str], MqttConfig]:
    """`account -> MqttConfig`: the configured broker, the account's name and password."""
    accounts = load_accounts(accounts_file)
    ca_file = cfg.mqtt.ca_file
    if ca_file is None and certs_dir and (Path(certs_dir) / "ca.crt").is_file():
        ca_file = str(Path(certs_dir) / "ca.crt")

    def config_for(account: str) -> MqttConfig:
        return replace(
            cfg.mqtt,
            username=account,
            password=accounts.devices[account],
            client_id=f"hubagent-sim-{account}",
            ca_file=ca_file,
            cert_file=None,
            key_file=None,
        )

    return config_for


def run_simulator(
    home: Path,
    cfg: Config,
    certs_dir: str | None,
    *,
    accounts_file: str | Path | None = None,
    config_path: str | Path | None = None,
    stop: threading.Event | None = None,
) -> int:
    """`hubagent simulate HOME --certs DIR`: run the devices until Ctrl-C or SIGTERM.

    Device passwords come from `accounts.yaml`, found by `find_accounts_file`; the broker
    address, TLS and discovery prefix from `cfg.mqtt` (username: the device's account).
    """
    home = Path(home)
    if not home.is_file():
        raise SimulatorError(f"{home}: home file not found")
    accounts_path = find_accounts_file(certs_dir, accounts_file, config_path)
    sim = Simulator(
        home, device_mqtt_configs(cfg, certs_dir, accounts_path), device_root=cfg.acl.device_root
    )
    stop = stop or threading.Event()
    previous: dict[int, object] = {}
    if threading.current_thread() is threading.main_thread():

        def on_signal(signum: int, frame: FrameType | None) -> None:
            stop.set()

        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, on_signal)
    try:
        sim.start()
        print(
            f"simulating {len(sim.devices)} devices from {home} on "
            f"{cfg.mqtt.host}:{cfg.mqtt.port} (accounts {accounts_path}); Ctrl-C stops",
            flush=True,
        )
        while not stop.wait(0.5):  # a timed wait keeps the main thread responsive to signals
            pass
    finally:
        sim.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
    log.info("simulator stopped")
    return 0
