"""Ingest: state messages per second the hub fully processes vs a bare paho subscriber.

Every simulated device has its own broker account (the production ACL: `bench_NNNN` may only
write `home/bench_NNNN/...`). One publisher *process* holds all device connections and
drives them without network threads (paho writes straight to the socket when no loop runs),
so a handful of threads publish for 1,000 accounts and the publisher never competes for the
subscriber's GIL. Each message carries a fresh value, so every message is a real state change.
Completion is counted, not signalled: the subscriber knows how many messages a burst holds
(QoS 0 over many connections has no cross-connection order, so a sentinel could overtake).
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from hubagent.bench.report import SuiteResult, median, percentile

log = logging.getLogger(__name__)

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


# -- the two subscribers -----------------------------------------------------------------------
class Counter:
    """Counts processed messages; records the processing time of each value (for lag)."""

    def __init__(self) -> None:
        self.count = 0
        self.last = 0.0
        self.times: dict[int, float] = {}
        self.track = False
        self.lock = threading.Lock()

    def hit(self, value: Any = None) -> None:
        now = time.time()
        with self.lock:
            self.count += 1
            self.last = now
            if self.track and value is not None:
                with contextlib.suppress(TypeError, ValueError):
                    self.times[int(float(value))] = now

    def reset(self) -> None:
        with self.lock:
            self.count, self.times = 0, {}

    def wait(self, target: int, idle: float = 3.0, limit: float = 300.0) -> int:
        """Wait for `target` messages; gives up after `idle` s without progress."""
        end = time.monotonic() + limit
        seen, since = -1, time.monotonic()
        while self.count < target and time.monotonic() < end:
            if self.count != seen:
                seen, since = self.count, time.monotonic()
            elif time.monotonic() - since > idle:
                break
            time.sleep(0.002)
        return self.count


class HubSide:
    """A real Hub: discovery -> registry -> Store, counting registry state changes."""

    def __init__(self, broker: Any, devices: list[Device], workdir: Path) -> None:
        from hubagent.app import Hub
        from hubagent.config import Config, LlmConfig, StoreConfig

        cfg = Config(
            mqtt=broker.mqtt_config(client_id=f"hubagent-bench-{uuid.uuid4().hex[:6]}"),
            llm=LlmConfig(backend="none"),
            store=StoreConfig(path=str(workdir / f"hub-{uuid.uuid4().hex[:6]}.db")),
        )
        self.hub = Hub(cfg, use_llm=False)
        self.ids = {d.entity_id for d in devices}
        self.counter = Counter()
        self.hub.registry.subscribe(self._on_change)
        if not self.hub.start(wait=30):
            raise RuntimeError("hub did not connect to the bench broker")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not self.ready():
            time.sleep(0.05)
        if not self.ready():
            raise RuntimeError("hub did not discover the bench devices")
        self.counter.reset()

    def ready(self) -> bool:
        reg = self.hub.registry
        return all((e := reg.get(i)) is not None and e.state for i in self.ids)

    def _on_change(self, kind: str, entity: Any, changed: dict[str, Any]) -> None:
        if kind == "state" and entity.entity_id in self.ids:
            self.counter.hit(entity.state.get("state"))

    def finish(self) -> None:
        self.hub.store.flush()  # "stored" means on disk, not in the write buffer

    def close(self) -> None:
        self.hub.stop()


class BareSide:
    """A bare paho subscriber with the hub's account, TLS, protocol and QoS; it only counts."""

    def __init__(self, broker: Any, n: int) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        cfg = broker.mqtt_config()
        self.counter = Counter()
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bare-{uuid.uuid4().hex[:6]}",
                        protocol=mqtt.MQTTv5)  # fmt: skip
        c.tls_set(ca_certs=cfg.ca_file)
        c.username_pw_set(cfg.username, cfg.password)
        c.on_connect = lambda cl, *_: cl.subscribe("home/+/state", qos=1)
        c.on_message = lambda _c, _u, m: self.counter.hit()
        c.connect(cfg.host, cfg.port, keepalive=60)
        c.loop_start()
        self.client = c
        if self.counter.wait(n, idle=10, limit=30) < n:  # the retained states
            raise RuntimeError("bare subscriber did not receive the retained states")
        self.counter.reset()

    def finish(self) -> None:
        pass

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _burst(side: Any, pub: Publisher, n: int, count: int) -> tuple[float, int, float]:
    """(messages/s processed, messages processed, publisher msg/s) for one burst."""
    side.counter.reset()
    t0 = time.time()
    pub_s = pub.call("burst", n, count, pub.next_seq(count))
    got = side.counter.wait(count)
    side.finish()
    elapsed = max(time.time(), side.counter.last) - t0 if got == count else time.time() - t0
    return got / elapsed, got, count / pub_s if pub_s else 0.0


def _measure(
    side: Any, pub: Publisher, n: int, repeats: int, count: int | None, seconds: float
) -> dict[str, Any]:
    """Median over `repeats` bursts; without `count`, a burst lasts about `seconds`."""
    warm_rate, _, _ = _burst(side, pub, n, 500)  # warm-up: caches, TCP windows, the store
    if count is None:
        count = int(min(max(warm_rate * seconds, 500), 30_000))
    runs = [_burst(side, pub, n, count) for _ in range(repeats)]
    return {
        "msg_per_s": median([r[0] for r in runs]),
        "burst": count,
        "received": [r[1] for r in runs],
        "publisher_msg_per_s": median([r[2] for r in runs]),
        "all": [round(r[0]) for r in runs],
    }


def _llm_busy(runtime: Any, stop: threading.Event, done: list[int]) -> None:
    """Keep the model decoding, as a long LLM request stream would."""
    prompt = (
        "<|im_start|>system\nYou control a smart home.<|im_end|>\n<|im_start|>user\n"
        "Command: dim the hallway lights a bit<|im_end|>\n<|im_start|>assistant\n"
    )
    while not stop.is_set():
        runtime.complete(prompt, None, 24)
        done[0] += 1


def _rate_run(side: HubSide, pub: Publisher, n: int, rate: float, seconds: float,
              runtime: Any | None) -> dict[str, Any]:  # fmt: skip
    """Paced publishing; lag per message and backlog at the end of the window."""
    side.counter.reset()
    side.counter.track = True
    stop, done = threading.Event(), [0]
    busy = None
    if runtime is not None:
        busy = threading.Thread(target=_llm_busy, args=(runtime, stop, done), daemon=True)
        busy.start()
    count = int(rate * seconds)
    seq = pub.next_seq(count)
    sent = pub.call("rate", n, rate, seconds, seq)
    backlog = len(sent) - side.counter.count
    side.counter.wait(len(sent), idle=5)
    stop.set()
    if busy is not None:
        busy.join(30)
    side.counter.track = False
    lags = [(side.counter.times[seq + k] - t) * 1000 for k, t in enumerate(sent)
            if seq + k in side.counter.times]  # fmt: skip
    return {
        "lag_p50_ms": percentile(lags, 50),
        "lag_p99_ms": percentile(lags, 99),
        "lag_max_ms": max(lags) if lags else 0.0,
        "backlog_at_end": backlog,
        "processed": len(lags),
        "published": len(sent),
        "llm_completions": done[0],
    }


def run(broker: Any, *, quick: bool, repeats: int, runtime: Any | None,
        sizes: list[int] | None = None) -> SuiteResult:  # fmt: skip
    """The ingest suite over `broker` (which has accounts for max(sizes) bench devices)."""
    result = SuiteResult("ingest")
    sizes = sizes or ([1, 100] if quick else [1, 100, 1000])
    seconds = 2.0 if quick else 5.0
    devices = make_devices(broker, max(sizes))
    pub = Publisher(broker, devices)
    workdir = Path(tempfile.mkdtemp(prefix="hubagent-bench-"))
    result.details["publisher_connections"] = pub.connected
    try:
        for n in sizes:
            pub.call("announce", n)
            hub = HubSide(broker, devices[:n], workdir)
            try:
                hub_fig = _measure(hub, pub, n, repeats, None, seconds)
                if n == sizes[-1]:
                    rate = {
                        "idle": _rate_run(hub, pub, n, 100, 5 if quick else 10, None),
                        "llm_busy": _rate_run(hub, pub, n, 100, 5 if quick else 10, runtime)
                        if runtime is not None else None,
                    }  # fmt: skip
            finally:
                hub.close()
            bare = BareSide(broker, n)
            try:
                count = hub_fig["burst"]  # the same stream for both
                bare_fig = _measure(bare, pub, n, repeats, count, seconds)
            finally:
                bare.close()
            pub.call("clear", n)
            result.details[f"devices_{n}"] = {"hub": hub_fig, "bare": bare_fig}
            result.add(f"{n} devices: processed", hub_fig["msg_per_s"], "msg/s",
                       baseline=bare_fig["msg_per_s"], baseline_name="bare paho",
                       runs=repeats)  # fmt: skip
            if hub_fig["received"] != bare_fig["received"] or min(hub_fig["received"]) < count:
                result.notes.append(
                    f"{n} devices: counts differ (hub {hub_fig['received']}, "
                    f"bare {bare_fig['received']}, sent {count} per burst)"
                )
        n = sizes[-1]
        result.details["rate_100_per_s"] = rate
        idle, busy = rate["idle"], rate["llm_busy"]
        if busy is not None:
            for key in ("lag_p50_ms", "lag_p99_ms", "backlog_at_end"):
                result.add(f"{n} devices @100 msg/s, LLM busy: {key}", busy[key],
                           "msgs" if key.startswith("backlog") else "ms",
                           baseline=idle[key], baseline_name="LLM idle")  # fmt: skip
            result.notes.append(
                f"@100 msg/s with LLM busy: {busy['processed']}/{busy['published']} processed, "
                f"{busy['llm_completions']} LLM completions ran meanwhile"
            )
        else:
            result.add(f"{n} devices @100 msg/s: lag_p99_ms", idle["lag_p99_ms"], "ms")
            result.notes.append("no model loaded: the LLM-busy rate test was skipped")
        result.notes.append(
            "one broker account per device (production ACL); all device connections in one "
            "publisher process; QoS 0 publish, QoS 1 subscriptions (delivered at QoS 0); "
            "hub = MqttClient -> DiscoveryManager -> Registry -> Store (flushed); "
            "bare = paho MQTT 5 loop_start on home/+/state, counting only"
        )
    finally:
        pub.close()
        shutil.rmtree(workdir, ignore_errors=True)
    return result


if __name__ == "__main__":
    _child_main()
