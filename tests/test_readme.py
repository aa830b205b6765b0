"""The README's commands, run as written (in a temp folder with the repository's devices/ and
examples/): every command of a ```sh block is either run here or listed in `NOT_RUN_HERE`
with the test that covers it, so a new README command needs one or the other.

`./run hubagent ARGS` runs `hubagent ARGS` in the project's virtualenv after `./run setup`;
here `python -m hubagent.cli ARGS` stands for it (the setup is what `./run test` just did).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from conftest import require_mosquitto

from hubagent.mqtt.broker import free_port

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
HUBAGENT = f"{sys.executable} -m hubagent.cli"

# Commands this test does not run, each with where it is covered instead.
NOT_RUN_HERE = {
    r"^\./run (demo|test)\b": "the two first commands: `./run test` is this suite; test_demo.py",
    r"^HUBAGENT_LLM_MODEL=large \./run setup\b|llm-large|--model large": "a 1.1 GB download: the large "
    "model's assembly is tested on self-made parts in test_modelfiles.py",
    r"^curl |^TOKEN=": "the HTTP API on the demo's fixed port 8124: test_http.py",
    r"\.\./shared/benchmarks": "benchmark slices outside the repository: test_eval_*.py",
    r"^\./run hubagent bench\b": "minutes long: test_bench.py",
}


def sh_commands(text: str = README) -> list[str]:
    """Each command of the README's ```sh blocks, continuation lines joined."""
    commands: list[str] = []
    for block in re.findall(r"^```sh\n(.*?)^```", text, flags=re.M | re.S):
        for command in re.sub(r"\\\n\s*", " ", block).splitlines():
            if command.strip():
                commands.append(command.strip())
    return commands


def _runnable(command: str) -> str:
    return re.sub(r"^\./run hubagent ", HUBAGENT + " ", command)


def _bash(command: str, cwd: Path, timeout: float = 180) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("HUBAGENT_MQTT_PASSWORD", None)
    return subprocess.run(
        ["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def _section(title: str) -> list[str]:
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return sh_commands(README[start:end])


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    """A user's checkout as far as the commands need: devices/ and examples/."""
    # mosquitto may drop to its own user: a world-traversable folder.
    work = Path(tempfile.mkdtemp(prefix="hubagent-readme-"))
    os.chmod(work, 0o755)
    for folder in ("devices", "examples"):
        shutil.copytree(ROOT / folder, work / folder)
    yield work
    shutil.rmtree(work, ignore_errors=True)


def test_every_readme_command_is_run_or_accounted_for() -> None:
    run_here = (
        set(_section("Running the hub"))
        | set(_section("Talking to it"))
        | set(_section("Evaluation and benchmarks"))
    )
    for command in sh_commands():
        skipped = any(re.search(pattern, command) for pattern in NOT_RUN_HERE)
        assert skipped or command in run_here, f"README command not covered: {command}"
    assert any("hubagent init" in c for c in sh_commands())


def test_running_the_hub_as_written(clone: Path) -> None:
    """init -> certs init -> acl -> (mosquitto with deploy/mosquitto-host.conf) -> run."""
    binary = require_mosquitto()
    commands = _section("Running the hub")
    assert [c.split()[2] for c in commands] == ["init", "certs", "acl", "run"], commands
    *setup, run = commands
    for command in setup:
        done = _bash(_runnable(command), clone)
        assert done.returncode == 0, f"{command}\n{done.stderr}"
        assert "Traceback" not in done.stderr
    assert (clone / "certs" / "server.key").exists() and (clone / "acl" / "passwd").exists()

    # The broker as deploy/mosquitto-host.conf sets it up, with the files its `sudo install`
    # lines copy into /etc/mosquitto/hubagent/ in a folder of the test, on a free port.
    etc = clone / "etc-mosquitto-hubagent"
    etc.mkdir()
    conf_text = (ROOT / "deploy" / "mosquitto-host.conf").read_text(encoding="utf-8")
    install = re.search(
        r"sudo install -o mosquitto .*?-m 0640 (.+?) /etc/mosquitto/hubagent/", conf_text
    )
    assert install, "mosquitto-host.conf lost its install line"
    for name in install.group(1).split():
        shutil.copy(clone / name, etc / Path(name).name)
        os.chmod(etc / Path(name).name, 0o644)
    port = free_port()
    conf = conf_text.replace("/etc/mosquitto/hubagent/", f"{etc}/")
    conf = conf.replace("listener 8883", f"listener {port} 127.0.0.1") + "log_dest stderr\n"
    if os.geteuid() == 0:
        conf += "user root\n"
    (clone / "mosquitto.conf").write_text(conf)
    broker = subprocess.Popen(
        [binary, "-c", str(clone / "mosquitto.conf")], stderr=subprocess.PIPE, text=True
    )
    # The config init wrote, moved to the test's ports, without the model (it is not what
    # this test is about).
    config = clone / "hubagent.yaml"
    text = config.read_text(encoding="utf-8")
    for old, new in (
        ("port: 8883", f"port: {port}"),
        ("port: 8124", "port: 0"),
        ("port: 10600", "port: 0"),
        ("backend: local", "backend: none"),
    ):
        assert old in text, old
        text = text.replace(old, new)
    config.write_text(text, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("HUBAGENT_MQTT_PASSWORD", None)
    hub = subprocess.Popen(
        ["bash", "-c", "exec " + _runnable(run)],
        cwd=clone,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines: list[str] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = hub.stderr.readline()
            if not line and hub.poll() is not None:
                break
            lines.append(line)
            if "connected to the broker" in line:
                break
        log = "".join(lines)
        assert f"connected to the broker at 127.0.0.1:{port}" in log, log
        assert "Traceback" not in log
        hub.terminate()
        assert hub.wait(20) == 0
    finally:
        for proc in (hub, broker):
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)


def test_talking_to_it_as_written(clone: Path) -> None:
    """The dry-run `ask`, and the MQTT request with PORT and PASSWORD as the README gets them
    from a running demo."""
    require_mosquitto()
    commands = [c for c in _section("Talking to it") if not c.startswith(("curl", "TOKEN="))]
    ask = [c for c in commands if " ask " in c]
    assert len(ask) == 1
    done = _bash(_runnable(ask[0]), clone)
    assert done.returncode == 0 and "floor lamp" in done.stdout.lower(), done.stdout + done.stderr
    mqtt = [c for c in commands if c not in ask]
    assert [c.split("=")[0] for c in mqtt[:2]] == ["PORT", "PASSWORD"] and "mosquitto_rr" in mqtt[2]

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    demo = subprocess.Popen(
        [
            *HUBAGENT.split(),
            "demo",
            "--no-llm",
            "--http-port",
            str(free_port()),
            "--wyoming-port",
            str(free_port()),
        ],
        cwd=clone,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        lines: list[str] = []
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            line = demo.stdout.readline()
            if not line and demo.poll() is not None:
                break
            lines.append(line)
            if line.startswith("Try:"):
                break
        assert any(line.startswith("Try:") for line in lines), "".join(lines)
        done = _bash("\n".join(["set -e", *mqtt]), clone, timeout=30)
        assert done.returncode == 0, done.stderr
        reply = json.loads(done.stdout.strip().splitlines()[-1])
        assert reply["reply"].startswith("Turned off") and reply["refused"] == []
    finally:
        demo.terminate()
        try:
            demo.wait(30)
        except subprocess.TimeoutExpired:
            demo.kill()
            demo.wait(10)


def test_evaluation_sample_as_written(clone: Path) -> None:
    commands = [c for c in _section("Evaluation and benchmarks") if "../shared" not in c]
    evals = [c for c in commands if " eval " in c]
    assert len(evals) == 3 and all("examples/eval" in c for c in evals), evals
    for command in evals:
        done = _bash(_runnable(command), clone, timeout=300)
        assert done.returncode == 0, f"{command}\n{done.stderr}"
        summary = [ln for ln in done.stdout.splitlines() if ln.startswith("all ")]
        assert summary and "100.0" in summary[0], done.stdout
