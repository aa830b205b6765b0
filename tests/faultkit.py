"""Shared helpers of the fault tests: a small home, a raw device receiver, waiting, memory.

Every fault test runs the real parts: mosquitto with TLS and ACLs (conftest
`make_broker_env`), SQLite files, the real Hub. Nothing here stands in for any of them.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from hubagent.config import Config, LlmConfig, MqttConfig, PolicyConfig, StoreConfig
from hubagent.mqtt.client import MqttClient

# A light, a lock and a plug, each its own device account (the object part of the id).
SMALL_HOME = """\
name: Fault home
language: en
areas:
  - {id: lab, name: Lab}
  - {id: hallway, name: Hallway, aliases: [hall]}
devices:
  - id: light.lab_lamp
    name: Lab lamp
    area: lab
    attributes:
      brightness: {min: 0, max: 100}
    state: {state: "off", brightness: 100}
  - id: lock.front_door
    name: Front door lock
    aliases: [front door]
    area: hallway
    state: {state: locked}
  - id: switch.lab_plug
    name: Lab plug
    area: lab
    state: {state: "off"}
"""

# One static `number` entity on its own command topic: its executor payload is the value,
# so every command can carry a unique number.
COUNTER_HOME = """\
name: Counter home
language: en
areas: [{id: lab, name: Lab}]
devices:
  - id: number.faultnum
    name: Fault counter
    area: lab
    attributes:
      value: {min: 0, max: 1000000}
    mqtt:
      command_topic: home/faultnum/set
      state_topic: home/faultnum/state
"""


def write_home(directory: Path, text: str = SMALL_HOME, name: str = "home.yaml") -> Path:
    path = Path(directory) / name
    path.write_text(text, encoding="utf-8")
    return path


def wait_for(check: Callable[[], object], timeout: float = 10.0, step: float = 0.02) -> object:
    """Poll `check` until it is truthy; AssertionError naming it after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout} s waiting for {check}")


def hub_config(
    mqtt: MqttConfig,
    db: Path,
    homes: tuple[str, ...],
    *,
    llm: LlmConfig | None = None,
    policy: PolicyConfig | None = None,
    **store: object,
) -> Config:
    """A hub config on the test broker with an encrypted store at `db`."""
    return Config(
        homes=homes,
        mqtt=mqtt,
        llm=llm or LlmConfig(backend="none"),
        policy=policy or PolicyConfig(),
        store=StoreConfig(path=str(db), encryption_key="fault test passphrase", **store),  # type: ignore[arg-type]
    )


@dataclass
class Receiver:
    """A device account's own MQTT client that records what arrives on its topics.

    It resubscribes after every reconnect (MqttClient restores subscriptions), which is
    how a real device keeps receiving across a broker restart without persistence.
    """

    cfg: MqttConfig
    topics: tuple[str, ...]
    echo_state_topic: str | None = None  # publish each command back as the device's state
    messages: list[tuple[str, bytes]] = field(default_factory=list)
    _cond: threading.Condition = field(default_factory=threading.Condition)
    client: MqttClient | None = None

    def start(self, timeout: float = 10.0) -> Receiver:
        self.client = MqttClient(self.cfg, status_topic=None)
        for topic in self.topics:
            self.client.subscribe(topic, self._on_message)
        self.client.start()
        assert self.client.wait_connected(timeout), self.client.last_error
        return self

    def _on_message(self, topic: str, payload: bytes, retained: bool) -> None:
        with self._cond:
            self.messages.append((topic, payload))
            self._cond.notify_all()
        if self.echo_state_topic and self.client is not None:
            self.client.publish(self.echo_state_topic, payload, qos=1, retain=True)

    def wait_count(self, count: int, timeout: float = 10.0) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: len(self.messages) >= count, timeout)

    def payloads(self) -> list[bytes]:
        with self._cond:
            return [p for _, p in self.messages]

    def stop(self) -> None:
        if self.client is not None:
            self.client.stop()


def rss_mb() -> float:
    """Resident memory of this process in MB (Linux /proc)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@contextlib.contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of `size` mounted at `path` (root only); skips the test when not permitted."""
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def fill_disk(directory: Path) -> int:
    """Write a file in `directory` until the filesystem is full; bytes written."""
    written = 0
    chunk = b"\0" * 65536
    with open(directory / "filler", "wb", buffering=0) as fh:
        try:
            while True:
                written += fh.write(chunk)
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
    return written


# A light with its own topics in the home file: known (and its last state restored) at
# start-up, before the broker answers, so a restarted hub shows what the store kept.
STATIC_HOME = """\
name: Restart home
language: en
areas: [{id: lab, name: Lab}]
devices:
  - id: light.lab_lamp
    name: Lab lamp
    area: lab
    attributes:
      brightness: {min: 0, max: 100}
    mqtt:
      command_topic: home/lab_lamp/set
      state_topic: home/lab_lamp/state
      schema: json
"""


def serve(config_path: str) -> int:
    """A real Hub in this process, driven by JSON lines on stdin (the restart fault test).

    Prints one JSON line at start (the states restored from the store, before connecting)
    and one per request: `{"op": "handle", "text": ...}` or `{"op": "status"}`.
    """
    import json
    import sys

    from hubagent.app import Hub
    from hubagent.config import load_config

    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    hub = Hub(load_config(config_path), use_llm=False)

    def status() -> dict[str, object]:
        return {
            "connected": hub.mqtt.connected,
            "pending": hub.outbox.pending_count(),
            "states": {e.entity_id: dict(e.state) for e in hub.registry.all()},
            "pid": os.getpid(),
        }

    print(json.dumps({"ready": True, **status()}), flush=True)
    hub.start()
    for line in sys.stdin:
        request = json.loads(line)
        if request.get("op") == "handle":
            reply = hub.agent.handle(request["text"], requester="fault")
            print(json.dumps({"actions": len(reply.actions), **status()}), flush=True)
        else:
            print(json.dumps(status()), flush=True)
    hub.stop()
    return 0


if __name__ == "__main__":
    import sys

    if len(sys.argv) == 3 and sys.argv[1] == "serve":
        sys.exit(serve(sys.argv[2]))
    sys.exit("usage: python tests/faultkit.py serve CONFIG")
