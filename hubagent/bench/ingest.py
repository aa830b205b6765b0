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

import logging
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from hubagent.bench.publisher import Publisher, _child_main, make_devices
from hubagent.bench.report import SuiteResult, median, percentile
from hubagent.bench.subscribers import BareSide, HubSide

log = logging.getLogger(__name__)


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
