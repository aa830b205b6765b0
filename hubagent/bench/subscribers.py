"""The ingest bench's two subscribers: a real Hub and a bare paho client, each counting."""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from hubagent.bench.publisher import Device


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
