"""The ingest bench's devices and the publisher process that drives all their connections.

See `hubagent.bench.ingest` for the design; the child process is started as
`python -m hubagent.bench.ingest`, whose `__main__` runs `_child_main` from here.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
import uuid
from dataclasses import asdict, dataclass
from typing import Any

ACCOUNT = "bench_{:04d}"


@dataclass
class Device:
    account: str
    password: str
    entity_id: str
    state_topic: str
    availability_topic: str
    discovery_topic: str
    discovery_payload: str


def bench_accounts(n: int) -> list[str]:
    return [ACCOUNT.format(i) for i in range(n)]


def make_devices(broker: Any, n: int) -> list[Device]:
    """Simulated temperature sensors (the simulator's own zigbee2mqtt-style sensor)."""
    from hubagent.sim.devices import make_device

    out = []
    for account in bench_accounts(n):
        raw = {
            "id": f"sensor.{account}",
            "name": account.replace("_", " "),
            "device_class": "temperature",
            "state": {"state": 20},
            "sim": {"key": "temperature", "unit": "°C"},
        }
        dev = make_device(raw)
        topic, payload = dev.discovery_message()
        out.append(
            Device(
                account,
                broker.accounts.password(account),
                dev.entity_id,
                dev.state_topic,
                dev.availability_topic,
                topic,
                payload,
            )  # fmt: skip
        )
    return out


# -- the publisher process -------------------------------------------------------------------
def _publisher(conn: Any, host: str, port: int, ca: str, devices: list[Device]) -> None:
    """Child process: connect every device, then obey commands from the pipe."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    clients = []
    for d in devices:
        c = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"{d.account}-{uuid.uuid4().hex[:6]}"
        )
        c.tls_set(ca_certs=ca)
        c.username_pw_set(d.account, d.password)
        c.connect(host, port, keepalive=900)
        clients.append(c)
    deadline = time.monotonic() + 60
    for c in clients:
        while not c.is_connected() and time.monotonic() < deadline:
            c.loop(0.05)
    conn.send(sum(c.is_connected() for c in clients))

    def drain(n: int) -> None:
        for c in clients[:n]:
            while c.want_write():
                c.loop_write()

    def pub(i: int, topic: str, payload: str, retain: bool = False) -> None:
        clients[i].publish(topic, payload, qos=0, retain=retain)

    while True:
        cmd, *args = conn.recv()
        if cmd == "stop":
            for c in clients:
                c.disconnect()
            conn.send("bye")
            return
        n = args[0]
        if cmd == "announce":
            for i, d in enumerate(devices[:n]):
                pub(i, d.discovery_topic, d.discovery_payload, True)
                pub(i, d.availability_topic, "online", True)
                pub(i, d.state_topic, json.dumps({"temperature": -1 - i}), True)
            drain(n)
            conn.send("ok")
        elif cmd == "clear":
            for i, d in enumerate(devices[:n]):
                for topic in (d.discovery_topic, d.availability_topic, d.state_topic):
                    pub(i, topic, "", True)
            drain(n)
            conn.send("ok")
        elif cmd == "burst":  # as fast as the broker takes it
            count, seq = args[1], args[2]
            t0 = time.perf_counter()
            for k in range(count):
                i = k % n
                pub(i, devices[i].state_topic, f'{{"temperature": {seq + k}}}')
            drain(n)
            conn.send(time.perf_counter() - t0)
        elif cmd == "rate":  # paced: `rate` messages per second for `seconds`
            rate, seconds, seq = args[1], args[2], args[3]
            sent: list[float] = []
            start = time.time()
            for k in range(int(rate * seconds)):
                delay = start + k / rate - time.time()
                if delay > 0:
                    time.sleep(delay)
                i = k % n
                sent.append(time.time())
                pub(i, devices[i].state_topic, f'{{"temperature": {seq + k}}}')
                if k % 50 == 0:
                    drain(n)
            drain(n)
            conn.send(sent)


class _Lines:
    """JSON lines over a pair of text streams (the child's stdin/stdout)."""

    def __init__(self, rd: Any, wr: Any) -> None:
        self.rd, self.wr = rd, wr

    def send(self, obj: Any) -> None:
        self.wr.write(json.dumps(obj) + "\n")
        self.wr.flush()

    def recv(self) -> Any:
        line = self.rd.readline()
        if not line:
            raise EOFError("publisher pipe closed")
        return json.loads(line)


def _child_main() -> None:
    """`python -m hubagent.bench.ingest`: the publisher process."""
    conn = _Lines(sys.stdin, sys.stdout)
    init = conn.recv()
    devices = [Device(**d) for d in init["devices"]]
    _publisher(conn, init["host"], init["port"], init["ca"], devices)


class Publisher:
    """Handle on the publisher process (a plain subprocess: no multiprocessing re-import)."""

    def __init__(self, broker: Any, devices: list[Device]) -> None:
        cfg = broker.mqtt_config()
        self.proc = subprocess.Popen(
            # ingest's `__main__` runs `_child_main` (the entry point it always had)
            [sys.executable, "-m", "hubagent.bench.ingest"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.conn = _Lines(self.proc.stdout, self.proc.stdin)
        self.conn.send(
            {
                "host": cfg.host,
                "port": cfg.port,
                "ca": cfg.ca_file,
                "devices": [asdict(d) for d in devices],
            }  # fmt: skip
        )
        self.connected = self.conn.recv()
        self.seq = 0

    def call(self, *cmd: Any) -> Any:
        self.conn.send(list(cmd))
        return self.conn.recv()

    def next_seq(self, count: int) -> int:
        seq, self.seq = self.seq, self.seq + count
        return seq

    def close(self) -> None:
        with contextlib.suppress(OSError, EOFError, ValueError):
            self.call("stop")
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
