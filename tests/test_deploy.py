"""Deployment files: docker-compose, Dockerfile, the example config (the add-on: test_addon.py).

No Docker engine (nor the compose plugin) runs here, so the files are checked structurally,
and the commands the containers run are run directly: `hubagent certs init`, `hubagent acl`,
mosquitto with deploy/mosquitto.conf, and `hubagent run` with deploy/hubagent.yaml (paths and
ports adapted to a temp dir), which must connect over TLS with the generated account.
"""

from __future__ import annotations

import dataclasses
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
import yaml
from conftest import require_mosquitto

from hubagent.config import Config, load_config
from hubagent.mqtt.broker import free_port

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
HUBAGENT = [sys.executable, "-m", "hubagent.cli"]


def _yaml(path: Path) -> dict:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), path
    return data


# -- docker-compose + Dockerfile ----------------------------------------------------------
def test_compose_structure() -> None:
    compose = _yaml(ROOT / "docker-compose.yml")
    services = compose["services"]
    assert set(services) == {"mosquitto", "hubagent"}
    broker, hub = services["mosquitto"], services["hubagent"]
    assert re.fullmatch(r"eclipse-mosquitto:2(\.\d+)*", broker["image"])
    assert hub["build"]["context"] == "." and (ROOT / hub["build"]["dockerfile"]).exists()
    for service in services.values():
        for port in service.get("ports", []):
            # Only the broker's TLS port reaches the LAN (TLS + passwords + ACL guard it).
            lan = service is broker and str(port) == "8883:8883"
            assert lan or str(port).startswith("127.0.0.1:"), (
                f"{port} is published beyond localhost"
            )
        assert service["healthcheck"]["test"]
    assert broker["ports"] == ["8883:8883"]  # the plain listener stays commented out
    assert {"127.0.0.1:8124:8124", "127.0.0.1:10600:10600"} <= set(hub["ports"])
    # Mounted host files exist or are created by the documented setup commands.
    mounts = {v.split(":")[1]: v.split(":")[0] for v in broker["volumes"]}
    assert mounts["/mosquitto/config/mosquitto.conf"] == "./deploy/mosquitto.conf"
    assert mounts["/mosquitto/config/certs"] == "./deploy/certs"
    assert mounts["/mosquitto/config/acl"] == "./deploy/acl"
    hub_mounts = {v.split(":")[1]: v.split(":")[0] for v in hub["volumes"]}
    assert hub_mounts["/config"] == "./deploy"
    assert hub_mounts["/state"] in compose["volumes"]
    assert hub_mounts["/home/hubagent/.cache/hubagent"] in compose["volumes"]
    assert hub["depends_on"]["mosquitto"]["condition"] == "service_healthy"
    assert "HUBAGENT_MQTT_PASSWORD" in hub["environment"]
    text = (ROOT / "docker-compose.yml").read_text()
    assert "hubagent certs init deploy/certs --hostname mosquitto" in text
    assert "hubagent acl -c deploy/hubagent.yaml --out deploy/acl" in text


def test_dockerfile_and_entrypoint() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim", text, re.M)
    assert 'pip install ".[llm]"' in text
    users = re.findall(r"^USER (\S+)", text, re.M)
    assert users and users[-1] not in ("root", "0")
    assert "hubagent model fetch" in text
    assert "HEALTHCHECK" in text and "ENTRYPOINT" in text
    for src in re.findall(r"^COPY (\S+) ", text, re.M):
        assert (ROOT / src).exists() or src == "README.md", src
    entry = (DEPLOY / "entrypoint.sh").read_text()
    assert 'exec hubagent run -c "$CONFIG"' in entry and "/config/hubagent.yaml" in entry
    assert "/api/health" in (DEPLOY / "healthcheck.py").read_text()


def test_compose_config_is_valid_and_consistent() -> None:
    cfg = load_config(DEPLOY / "hubagent.yaml", env={})
    assert (cfg.mqtt.host, cfg.mqtt.port, cfg.mqtt.tls) == ("mosquitto", 8883, True)
    assert cfg.mqtt.ca_file == "/config/certs/ca.crt"
    assert cfg.store.path.startswith("/state/")
    assert cfg.http.port == 8124 and cfg.wyoming.port == 10600
    conf = (DEPLOY / "mosquitto.conf").read_text()
    assert "listener 8883" in conf and "allow_anonymous false" in conf
    assert "password_file /mosquitto/config/acl/passwd" in conf
    assert "acl_file /mosquitto/config/acl/acl" in conf
    assert "use_username_as_clientid true" in conf  # no session takeover between accounts


def test_example_config_covers_every_key() -> None:
    path = ROOT / "hubagent.example.yaml"
    assert load_config(path, env={}) == Config()  # the reference shows the defaults
    data = _yaml(path)
    for field in dataclasses.fields(Config):
        assert field.name in data, f"hubagent.example.yaml misses '{field.name}'"
        section = getattr(Config(), field.name)
        if dataclasses.is_dataclass(section):  # a section; `satellites` is a plain mapping
            missing = {f.name for f in dataclasses.fields(section)} - set(data[field.name])
            assert not missing, f"hubagent.example.yaml misses {field.name}.{sorted(missing)}"


def test_scripts_pass_bash_n_and_shellcheck() -> None:
    scripts = [DEPLOY / "entrypoint.sh"]
    for script in scripts:
        assert os.access(script, os.X_OK), f"{script} is not executable"
        assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck not installed (apt-get install shellcheck)")
    result = subprocess.run(["shellcheck", *map(str, scripts)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


# -- the commands the containers run ---------------------------------------------------------
def test_compose_commands_connect_over_tls(tmp_path: Path) -> None:
    """certs init + acl + mosquitto(deploy/mosquitto.conf) + hubagent run(deploy/hubagent.yaml)."""
    binary = require_mosquitto()
    env = {**os.environ, "HUBAGENT_MQTT_PASSWORD": "compose-test-password"}
    env.pop("HUBAGENT_HTTP_TOKEN", None)
    # The broker drops to the `mosquitto` user: give it a world-traversable folder.
    work = Path(tempfile.mkdtemp(prefix="hubagent-compose-"))
    os.chmod(work, 0o755)
    broker = hub = None
    try:
        setup = [
            [*HUBAGENT, "certs", "init", str(work / "certs"), "--hostname", "mosquitto"],
            [*HUBAGENT, "acl", "-c", str(DEPLOY / "hubagent.yaml"), "--out", str(work / "acl")],
        ]
        for cmd in setup:
            done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
            assert done.returncode == 0, done.stderr
        assert "hubagent:$7$" in (work / "acl" / "passwd").read_text()
        port = free_port()
        conf = (DEPLOY / "mosquitto.conf").read_text()
        conf = conf.replace("/mosquitto/config/", f"{work}/").replace(
            "/mosquitto/data/", f"{work}/"
        )
        conf = conf.replace("listener 8883", f"listener {port} 127.0.0.1")
        conf = conf.replace("log_dest stdout", "log_dest stderr")
        if os.geteuid() == 0:
            conf += "\nuser root\n"  # the container runs it as uid 1883; here files are root's
        (work / "mosquitto.conf").write_text(conf)
        broker = subprocess.Popen(
            [binary, "-c", str(work / "mosquitto.conf")], stderr=subprocess.PIPE, text=True
        )
        hub_cfg = _yaml(DEPLOY / "hubagent.yaml")
        hub_cfg["mqtt"] |= {
            "host": "127.0.0.1",
            "port": port,
            "ca_file": str(work / "certs/ca.crt"),
        }
        hub_cfg["llm"] = {"backend": "none"}
        hub_cfg["store"] = {"path": str(tmp_path / "state" / "hubagent.db")}
        http_port = free_port()
        hub_cfg["http"] |= {"host": "127.0.0.1", "port": http_port}
        hub_cfg["wyoming"] |= {"host": "127.0.0.1", "port": free_port()}
        (tmp_path / "hubagent.yaml").write_text(yaml.safe_dump(hub_cfg))
        hub = subprocess.Popen(
            [*HUBAGENT, "run", "-c", str(tmp_path / "hubagent.yaml")],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        lines: list[str] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = hub.stderr.readline()
            if not line and hub.poll() is not None:
                break
            lines.append(line)
            if "connected to the broker" in line:
                break
        assert any(f"connected to the broker at 127.0.0.1:{port}" in ln for ln in lines), "".join(
            lines
        )
        # The container's health check, against the hub's HTTP API.
        health = None
        deadline = time.monotonic() + 30
        while health is None and time.monotonic() < deadline and hub.poll() is None:
            check = subprocess.run(
                [sys.executable, str(DEPLOY / "healthcheck.py")],
                env={**env, "HUBAGENT_HTTP_PORT": str(http_port)},
                capture_output=True,
                text=True,
            )
            if check.returncode == 0:
                health = json.loads(check.stdout)
            else:
                time.sleep(0.3)
        assert health is not None and health["mqtt_connected"] is True, health
        hub.terminate()
        assert hub.wait(20) == 0
        assert (tmp_path / "state" / "hubagent.db").exists()
    finally:
        for proc in (hub, broker):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(10)
        shutil.rmtree(work, ignore_errors=True)
    assert "hubagent" in (broker.stderr.read() if broker and broker.stderr else "")
