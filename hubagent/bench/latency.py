"""Command latency: request text -> the simulated device receives its MQTT command (TLS),
for the local matcher path and the LLM path, next to a bare MQTT publish -> device receive.

Both sides stop the clock the same way: when the simulator's device handler has appended
the command to `Simulator.received` (its network thread wakes us through a Condition).
"""

from __future__ import annotations

import logging
import shutil
import socket
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hubagent.bench.report import SuiteResult, percentile

log = logging.getLogger(__name__)

DEMO_HOME = Path(__file__).resolve().parents[2] / "devices" / "demo-home.yaml"

# Matcher-covered wording (Home Assistant intent sentences); pairs flip state each time.
LOCAL_SENTENCES = [
    "turn on the kitchen ceiling light",
    "turn off the kitchen ceiling light",
    "set the desk lamp to 40%",
    "set the desk lamp to 60%",
    "turn on the coffee machine",
    "turn off the coffee machine",
    "open the bedroom curtains",
    "close the bedroom curtains",
]
# Wording the matcher does not cover (checked: the cascade hands it to the understander);
# the verb is in the wording, so the model's pick is checked against it. Pairs flip state.
LLM_SENTENCES = [
    "switch off the telly in the lounge thanks",
    "switch on the telly in the lounge thanks",
    "i would like you to switch on the espresso machine",
    "i would like you to switch off the espresso machine",
    "kindly turn off the reading lamp in the living room now",
    "kindly turn on the reading lamp in the living room now",
    "hey turn on the worktop lights in the kitchen right now",
    "hey turn off the worktop lights in the kitchen right now",
]


@dataclass
class Stack:
    """Broker + simulated demo home + hub, shared by the latency and LLM suites."""

    broker: Any
    sim: Any
    hub: Any
    workdir: Path

    def close(self) -> None:
        self.hub.runtime = None  # the runtime is shared with other suites: not ours to close
        self.hub.stop()
        self.sim.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


def start_stack(broker: Any, runtime: Any | None) -> Stack:
    """The demo home simulated on `broker` and a hub (with `runtime`) that discovered it."""
    from hubagent.app import Hub
    from hubagent.config import Config, LlmConfig, PolicyConfig, StoreConfig
    from hubagent.sim.simulator import Simulator

    sim = Simulator(DEMO_HOME, broker.mqtt_config, tick_interval=None)
    sim.start()
    workdir = Path(tempfile.mkdtemp(prefix="hubagent-bench-"))
    cfg = Config(
        homes=(str(DEMO_HOME),),
        mqtt=broker.mqtt_config(client_id=f"hubagent-bench-{uuid.uuid4().hex[:6]}"),
        llm=LlmConfig(backend="none"),
        # The rate limit protects devices from runaway loops; a benchmark is one on purpose.
        policy=PolicyConfig(rate_limit_per_entity=1_000_000),
        store=StoreConfig(path=str(workdir / "hub.db")),
    )
    hub = Hub(cfg, use_llm=False, runtime=runtime)
    if not hub.start(wait=30):
        sim.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        raise RuntimeError("hub did not connect to the bench broker")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if all((e := hub.registry.get(i)) is not None and e.state for i in sim.devices):
            break
        time.sleep(0.05)
    if hub.warmer is not None:
        # The hub warms the model's prompt prefix in the background once discovery settles;
        # measuring while that runs would time the warm-up, not the requests.
        log.info("waiting for the model's prompt-prefix warm-up")
        if not hub.warmer.wait(600):
            log.warning("the prompt-prefix warm-up did not finish within 600 s")
    return Stack(broker, sim, hub, workdir)


def _request(stack: Stack, text: str) -> tuple[float | None, str, int]:
    """(ms until the device received the last command or None, path, commands sent)."""
    before = len(stack.sim.received)
    t0 = time.perf_counter()
    reply = stack.hub.agent.handle(text, requester="bench", channel="bench")
    sent = len(reply.actions)
    path = reply.understanding.path if reply.understanding else "none"
    if not sent or not stack.sim.wait_received(before + sent, timeout=10):
        return None, path, sent
    return (time.perf_counter() - t0) * 1000, path, sent


def _bare_client(broker: Any) -> Any:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    cfg = broker.mqtt_config()
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bare-{uuid.uuid4().hex[:6]}",
                    protocol=mqtt.MQTTv5)  # fmt: skip
    c.tls_set(ca_certs=cfg.ca_file)
    c.username_pw_set(cfg.username, cfg.password)
    c.connect(cfg.host, cfg.port, keepalive=60)
    c.loop_start()
    deadline = time.monotonic() + 10
    while not c.is_connected() and time.monotonic() < deadline:
        time.sleep(0.01)
    # Same as the hub's client: no Nagle delay on small packets.
    c.socket().setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return c


def _bare_round_trip(stack: Stack, client: Any, topic: str, payload: bytes) -> float | None:
    before = len(stack.sim.received)
    t0 = time.perf_counter()
    client.publish(topic, payload, qos=1)
    if not stack.sim.wait_received(before + 1, timeout=10):
        return None
    return (time.perf_counter() - t0) * 1000


def _fresh_sentences(count: int) -> list[str]:
    """`count` matcher-covered sentences, each different ("set the desk lamp to 37%")."""
    lamps = ("desk lamp", "bedside lamp", "floor lamp")
    levels = [n for n in range(1, 100) if n not in (40, 60)]
    return [f"set the {lamps[i % 3]} to {levels[i // 3 % len(levels)]}%" for i in range(count)]


def _summary(ms: list[float]) -> dict[str, float]:
    return {f"p{p}": percentile(ms, p) for p in (50, 95, 99)}


def run(stack: Stack, *, quick: bool, repeats: int, runtime: Any | None) -> SuiteResult:
    """The latency suite; each sentence list is run `repeats` times (after one warm-up pass)."""
    from hubagent.understand.llm import LlmUnderstander

    result = SuiteResult("latency")
    rounds = max(repeats, 3) if quick else repeats * 4
    for text in LOCAL_SENTENCES:  # warm-up: matcher caches, TLS sessions, SQLite pages
        _request(stack, text)
    local: list[float] = []
    paths: dict[str, int] = {}
    for _ in range(rounds):
        for text in LOCAL_SENTENCES:
            ms, path, _ = _request(stack, text)
            paths[path] = paths.get(path, 0) + 1
            if ms is not None and path == "local":
                local.append(ms)
    # Sentences never seen before: no remembered recognition (the repeated ones above hit
    # the matcher's cache, as repeated voice commands do).
    fresh: list[float] = []
    for text in _fresh_sentences(min(len(local), 90)):
        ms, path, _ = _request(stack, text)
        if ms is not None and path == "local":
            fresh.append(ms)
    topic, payload = stack.sim.received[-1]
    client = _bare_client(stack.broker)
    try:
        for _ in range(20):
            _bare_round_trip(stack, client, topic, payload)
        bare = [
            ms
            for _ in range(max(len(local), 50))
            if (ms := _bare_round_trip(stack, client, topic, payload)) is not None
        ]
    finally:
        client.disconnect()
        client.loop_stop()
    base = _summary(bare)
    loc = _summary(local)
    for key in ("p50", "p95", "p99"):
        result.add(f"local path {key}", loc[key], "ms", baseline=base[key],
                   baseline_name="bare MQTT", runs=len(local))  # fmt: skip
    new = _summary(fresh)
    for key in ("p50", "p95"):
        result.add(f"local path, new sentence {key}", new[key], "ms", baseline=base[key],
                   baseline_name="bare MQTT", runs=len(fresh))  # fmt: skip
    result.details.update(local=loc, bare_mqtt=base, local_paths=paths, samples=len(local))
    result.notes.append(
        "local path rows: 8 sentences repeated (the matcher remembers recognitions, as Home "
        "Assistant's default agent does); 'new sentence' rows: each sentence asked once"
    )
    if runtime is None:
        result.notes.append("no model loaded: the LLM-path latency was skipped")
        return result
    # The understander decides most free wording from the registry without the model;
    # always_ask makes every step a model call so this row measures the LLM path.
    cascade = stack.hub.cascade
    saved = cascade.understander
    cascade.understander = LlmUnderstander(stack.hub.registry, runtime, always_ask=True)
    try:
        _request(stack, LLM_SENTENCES[0])  # warm-up: the prompt prefix into the KV cache
        llm_ms: list[float] = []
        llm_paths: dict[str, int] = {}
        reached = 0
        # Model calls are slow on 2 cores: quick runs one on/off pair per device once.
        sentences = LLM_SENTENCES[:4] if quick else LLM_SENTENCES
        for _ in range(1 if quick else repeats):
            for text in sentences:
                ms, path, sent = _request(stack, text)
                llm_paths[path] = llm_paths.get(path, 0) + 1
                if ms is not None and path == "llm":
                    llm_ms.append(ms)
                reached += ms is not None
    finally:
        cascade.understander = saved
    llm = _summary(llm_ms)
    for key in ("p50", "p95", "p99"):
        result.add(f"LLM path {key}", llm[key], "ms", baseline=base[key],
                   baseline_name="bare MQTT", runs=len(llm_ms))  # fmt: skip
    total = sum(llm_paths.values())
    share = llm_paths.get("llm", 0) / total if total else 0.0
    result.details.update(llm=llm, llm_paths=llm_paths, llm_share=share)
    result.notes.append(
        f"LLM row: free-wording sentences the matcher misses, understander with always_ask=True "
        f"(without it the registry/wording rules decide most steps with no model call); "
        f"{share:.0%} of {total} requests took path 'llm'; {reached} reached their device"
    )
    result.notes.append(
        "clock: hub.agent.handle(text) -> simulator device handler received the command "
        "(TLS, QoS 1); bare: paho publish of the same command (hub account) -> same handler"
    )
    return result
