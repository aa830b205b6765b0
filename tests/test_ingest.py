"""The ingest worker: device messages in arrival order on their own thread, bounded."""

from __future__ import annotations

import logging
import threading

import pytest

from hubagent.mqtt.ingest import IngestWorker


def test_messages_are_handled_in_order_off_the_callers_thread() -> None:
    seen: list[tuple[str, bytes, bool, str]] = []
    worker = IngestWorker(lambda t, p, r: seen.append((t, p, r, threading.current_thread().name)))
    worker.start()
    try:
        for i in range(1000):
            worker.submit(f"home/x/{i % 3}", str(i).encode(), i == 0)
        assert worker.wait_idle(10)
    finally:
        worker.stop()
    assert [int(p) for _, p, _, _ in seen] == list(range(1000))
    assert seen[0][2] is True and {name for *_, name in seen} == {"mqtt-ingest"}


def test_a_full_queue_drops_counts_and_logs_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    gate = threading.Event()
    worker = IngestWorker(lambda *_: gate.wait(10), max_messages=10, max_bytes=1_000_000)
    worker.start()
    try:
        for _ in range(100):
            worker.submit("home/x/state", b"1")
        assert worker.dropped >= 89 and worker.backlog <= 11
    finally:
        gate.set()
        worker.stop()
    assert len([r for r in caplog.records if "backlog full" in r.getMessage()]) == 1


def test_a_failing_handler_does_not_stop_the_worker() -> None:
    handled: list[bytes] = []

    def handle(topic: str, payload: bytes, retained: bool) -> None:
        if payload == b"boom":
            raise RuntimeError("handler bug")
        handled.append(payload)

    worker = IngestWorker(handle)
    worker.start()
    try:
        for payload in (b"1", b"boom", b"2"):
            worker.submit("home/x/state", payload)
        assert worker.wait_idle(5)
    finally:
        worker.stop()
    assert handled == [b"1", b"2"]
