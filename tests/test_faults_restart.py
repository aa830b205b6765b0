"""Fault: the hub process is SIGKILLed mid-stream and restarted.

1. A hub process (tests/faultkit.py `serve`: the real Hub, requests on stdin) learns the
   lamp's state, then the broker dies and requests keep coming: each is queued in the
   SQLite outbox. The process is SIGKILLed in the middle of that stream.
2. The broker comes back and the real CLI, `python -m hubagent run -c CONFIG`, starts on
   the same store: it replays the outbox, and the device receives every acknowledged
   command exactly once, in order. SIGTERM stops it cleanly.
3. A third start with no broker at all shows the state restored from the store.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import yaml
from conftest import make_broker_env
from faultkit import STATIC_HOME, Receiver, wait_for, write_home

FAULTKIT = Path(__file__).resolve().parent / "faultkit.py"
STREAM = 40  # requests written before the kill
KILL_AFTER = 25  # replies read before SIGKILL: the rest of the stream is cut off
RUN_CMD = [sys.executable, "-m", "hubagent", "run", "-c"]  # the real CLI


def write_config(path: Path, home: Path, db: Path, mqtt: dict[str, object]) -> Path:
    data = {
        "homes": [str(home)],
        "mqtt": mqtt,
        "llm": {"backend": "none"},
        "policy": {"rate_limit_per_entity": 1000},
        "store": {"path": str(db), "outbox_resume_delay_s": 2.0},
        "http": {"enabled": False},
        "wyoming": {"enabled": False},
    }
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


class Served:
    """The `serve` child: one JSON line in, one out."""

    def __init__(self, config: Path, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(FAULTKIT), "serve", str(config)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        self.first = self.read()

    def read(self) -> dict[str, object]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line, f"hub process ended (rc {self.proc.poll()})"
        return json.loads(line)

    def write(self, request: dict[str, object]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()

    def ask(self, request: dict[str, object]) -> dict[str, object]:
        self.write(request)
        return self.read()


def outbox_rows(db: Path) -> dict[str, str]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return {cid: status for cid, status in conn.execute("SELECT id, status FROM outbox")}


def test_sigkill_mid_stream_loses_and_repeats_nothing(tmp_path: Path) -> None:
    env = make_broker_env(tmp_path / "broker", ["lab_lamp"])
    home = write_home(tmp_path, STATIC_HOME)
    db = tmp_path / "state" / "hub.db"
    mqtt = {
        "host": env.broker.host,
        "port": env.broker.password_port,
        "ca_file": str(env.certs.ca_cert),
        "username": env.accounts.hub_username,
        "client_id": "hubagent-restart",
        "reconnect_min_s": 0.2,
        "reconnect_max_s": 1.0,
    }
    config = write_config(tmp_path / "hubagent.yaml", home, db, mqtt)
    child_env = {
        **os.environ,
        "HUBAGENT_MQTT_PASSWORD": env.accounts.hub_password,
        "HUBAGENT_STORE_KEY": "restart test passphrase",
    }
    device = Receiver(
        env.mqtt_config("lab_lamp"), ("home/lab_lamp/set",), echo_state_topic="home/lab_lamp/state"
    ).start()
    assert device.client is not None
    device.client.publish(
        "home/lab_lamp/state", '{"state": "ON", "brightness": 255}', qos=1, retain=True, timeout=5
    )
    first = Served(config, child_env)
    run_log_file = tmp_path / "run.log"
    run: subprocess.Popen[str] | None = None
    try:
        wait_for(lambda: first.ask({"op": "status"})["states"].get("light.lab_lamp"), timeout=10)
        assert first.ask({"op": "handle", "text": "set the lab lamp to 10%"})["actions"] == 1
        assert device.wait_count(1)
        time.sleep(1.2)  # the write-behind state buffer is flushed every 0.5 s

        env.broker.kill()
        wait_for(lambda: not first.ask({"op": "status"})["connected"])
        for n in range(STREAM):  # all written at once: the hub is still working when killed
            first.write({"op": "handle", "text": f"set the lab lamp to {20 + n}%"})
        acked = [first.read() for _ in range(KILL_AFTER)]
        os.kill(first.proc.pid, signal.SIGKILL)
        assert first.proc.wait(5) == -signal.SIGKILL
        assert all(r["actions"] == 1 and not r["connected"] for r in acked)
        assert [r["pending"] for r in acked] == list(range(1, KILL_AFTER + 1))
        kept = outbox_rows(db)
        pending_after_kill = sum(1 for s in kept.values() if s == "pending")
        # Every acknowledged command is on disk; at most the one in flight more.
        assert KILL_AFTER <= pending_after_kill <= KILL_AFTER + 1

        env.broker.restart()
        assert device.client.wait_connected(10)
        started = time.monotonic()
        run = subprocess.Popen(
            RUN_CMD + [str(config)],
            env=child_env,
            stdout=subprocess.DEVNULL,
            stderr=run_log_file.open("w"),
            text=True,
        )
        assert device.wait_count(1 + pending_after_kill, timeout=20), run_log_file.read_text()
        wait_for(lambda: all(s == "sent" for s in outbox_rows(db).values()), timeout=10)
        replay_s = time.monotonic() - started
        time.sleep(1.0)  # a second copy of anything would arrive now
        run.send_signal(signal.SIGTERM)
        assert run.wait(15) == 0
        run_log = run_log_file.read_text()

        received = [json.loads(p)["brightness"] for p in device.payloads()]
        counts = Counter(received)
        expected = [round((20 + n) * 255 / 100) for n in range(pending_after_kill)]
        print(
            f"\nSIGKILL after {KILL_AFTER}/{STREAM} acked requests: {pending_after_kill} "
            f"pending on disk; `hubagent run` delivered {len(received) - 1} in "
            f"{replay_s:.1f} s (duplicates {sum(n - 1 for n in counts.values())}); "
            f"outbox {Counter(outbox_rows(db).values())}"
        )
        assert received[1:] == expected  # each once, in the order requested
        assert max(counts.values()) == 1
        assert "Traceback" not in run_log

        # Restored from the store: no broker at all this time, the last state is known.
        offline = write_config(
            tmp_path / "offline.yaml", home, db, {**mqtt, "port": 1, "client_id": "offline"}
        )
        third = Served(offline, child_env)
        restored = third.first["states"]["light.lab_lamp"]
        third.proc.kill()
        third.proc.wait(5)
        print(f"restored after restart: {restored}")
        assert restored.get("state") == "on"
        assert restored.get("brightness") == 20 + pending_after_kill - 1
    finally:
        for proc in (first.proc, run):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(5)
        device.stop()
        env.close()
