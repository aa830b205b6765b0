"""Offline proof: broker, simulated devices, the hub and the real model in a network
namespace that has nothing but loopback (`unshare -n`, root only; skipped elsewhere).

The child first shows that the internet is unreachable (connect to 1.1.1.1:443 fails at
once with ENETUNREACH), then serves one request through the model path and checks that the
simulated device received the command.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent

CHILD = r"""
import errno, json, os, socket, subprocess, sys, tempfile, time
from pathlib import Path

subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
# `ip` asks the kernel for this namespace's links (/sys/class/net shows the mounter's).
links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, check=True)
interfaces = sorted(line.split(":")[1].strip().split("@")[0] for line in links.stdout.splitlines())
probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
probe.settimeout(5)
t0 = time.monotonic()
try:
    probe.connect(("1.1.1.1", 443))
    internet = "reachable"
except OSError as exc:
    internet = errno.errorcode.get(exc.errno, str(exc.errno))
probe_ms = (time.monotonic() - t0) * 1000
probe.close()

from faultkit import hub_config, wait_for, write_home
from hubagent.app import Hub
from hubagent.config import LlmConfig
from hubagent.mqtt.local import start_local_broker
from hubagent.sim.simulator import Simulator

tmp = Path(tempfile.mkdtemp(prefix="hubagent-offline-"))
home = write_home(tmp)
env = start_local_broker(tmp / "broker", ["lab_lamp", "front_door", "lab_plug"])
sim = Simulator(home, env.mqtt_config, tick_interval=None)
sim.start()
hub = Hub(hub_config(env.mqtt_config(), tmp / "hub.db", (str(home),), llm=LlmConfig(threads=2, context=2048)))
try:
    assert hub.start(wait=10)
    wait_for(lambda: all(hub.registry.get(e) and hub.registry.get(e).state for e in sim.devices))
    # The full understanding path: no matcher shortcut, every step through the model.
    hub.cascade.matcher = None
    hub.understander.always_ask = True
    t0 = time.monotonic()
    reply = hub.agent.handle("turn on the lab lamp", requester="offline")
    request_s = time.monotonic() - t0
    wait_for(lambda: sim.device("light.lab_lamp").ha_state()["state"] == "on", timeout=10)
    print(json.dumps({
        "interfaces": interfaces,
        "internet": internet,
        "probe_ms": round(probe_ms, 2),
        "llm": hub.runtime is not None,
        "reply": reply.to_dict(),
        "received": [[t, p.decode()] for t, p in sim.received],
        "request_s": round(request_s, 2),
    }))
finally:
    hub.stop()
    sim.stop()
    env.close()
"""


@pytest.mark.model
def test_everything_runs_with_loopback_only(tmp_path: Path) -> None:
    if os.geteuid() != 0 or shutil.which("unshare") is None or shutil.which("ip") is None:
        pytest.skip("needs root, unshare and ip to make a network namespace")
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"unshare -n not permitted here: {probe.stderr.strip()}")
    model_dir = Path("~/.cache/hubagent/models").expanduser()
    if not any(model_dir.glob("*.gguf")):
        pytest.skip("the default model is not installed (./run setup)")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run(
        ["unshare", "-n", "--", sys.executable, "-c", CHILD],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=tmp_path,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"\noffline namespace: {json.dumps(result)}")
    assert result["interfaces"] == ["lo"]
    assert result["internet"] == "ENETUNREACH" and result["probe_ms"] < 1000
    assert result["llm"] and result["reply"]["path"] == "llm"
    assert result["reply"]["actions"] == [
        {"entity": "light.lab_lamp", "action": "turn_on", "args": {}}
    ]
    assert ["home/lab_lamp/set", '{"state":"ON"}'] in result["received"]
