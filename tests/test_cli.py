"""The command line: --version, help for every verb and option, `-v` on either side of the
verb, `hubagent init`, and one-line errors (never a traceback) for ports and files."""

from __future__ import annotations

import argparse
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from hubagent import __version__
from hubagent.cli import build_parser
from hubagent.config import load_config
from hubagent.home.homefile import load_home

HUBAGENT = [sys.executable, "-m", "hubagent.cli"]


def _cli(*args: str, cwd: Path | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*HUBAGENT, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )


def _one_line_error(done: subprocess.CompletedProcess) -> str:
    assert done.returncode != 0
    assert "Traceback" not in done.stderr, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("hubagent: "), done.stderr
    return last


def test_version() -> None:
    done = _cli("--version")
    assert done.returncode == 0 and done.stdout.strip() == f"hubagent {__version__}"


def test_every_verb_has_a_description_and_every_option_help() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert {"init", "certs", "acl", "run", "demo", "ask", "eval", "model"} <= set(sub.choices)
    helps = {action.dest: action.help for action in sub._choices_actions}
    missing = []
    for name, verb in sub.choices.items():
        if not helps.get(name) or not verb.description:
            missing.append(f"{name}: description")
        for action in verb._actions:
            if not action.help:
                missing.append(f"{name} {action.option_strings or action.dest}")
    assert not missing, missing


def test_verbose_before_or_after_the_verb() -> None:
    parser = build_parser()
    assert parser.parse_args(["-v", "run"]).verbose is True
    assert parser.parse_args(["run", "-v"]).verbose is True
    assert parser.parse_args(["run"]).verbose is False
    # `eval -v` keeps its own meaning (list the failed cases); `--verbose` is still logging.
    args = parser.parse_args(["eval", "x", "-v"])
    assert args.show_failures is True and args.verbose is False


def test_demo_port_out_of_range_is_a_usage_error() -> None:
    done = _cli("demo", "--http-port", "99999")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "port 99999 is not between 1 and 65535" in done.stderr


def test_busy_port_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        cfg = {
            "llm": {"backend": "none"},
            "mqtt": {"port": 1, "tls": False},  # nothing listens there: the hub retries
            "store": {"path": str(tmp_path / "hub.db")},
            "http": {"port": port},
            "wyoming": {"port": 0},
        }
        (tmp_path / "hubagent.yaml").write_text(yaml.safe_dump(cfg))
        done = _cli("run", "-c", str(tmp_path / "hubagent.yaml"))
    assert done.returncode == 1
    assert _one_line_error(done) == (
        f"hubagent: cannot listen on 127.0.0.1:{port} for http: the port is in use "
        "(another hubagent or program?); set http.port (or http.enabled: false)"
    )


def test_init_writes_a_config_and_home_that_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    done = _cli("init", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    config, home = tmp_path / "hubagent.yaml", tmp_path / "devices" / "my-home.yaml"
    assert done.stdout.startswith("wrote hubagent.yaml\nwrote devices/my-home.yaml\n")
    assert stat.S_IMODE(config.stat().st_mode) == 0o600  # the hub's MQTT password
    monkeypatch.chdir(tmp_path)  # the config's paths are relative to where hubagent runs
    cfg = load_config(config, env={})
    assert cfg.homes == ("devices/my-home.yaml",) and cfg.mqtt.tls is True
    assert cfg.mqtt.ca_file == "certs/ca.crt" and len(cfg.mqtt.password or "") >= 24
    assert load_home(home).name == "My home"
    # Never overwritten: the second run refuses and leaves both files as they were.
    before = config.read_text()
    again = _cli("init", cwd=tmp_path)
    assert again.returncode == 2
    assert _one_line_error(again) == (
        "hubagent: hubagent.yaml and devices/my-home.yaml already exist: not overwritten"
    )
    assert config.read_text() == before
    home.unlink()
    assert "already exists: not overwritten" in _one_line_error(_cli("init", cwd=tmp_path))
    assert not home.exists()


def test_init_into_an_unwritable_place_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    line = _one_line_error(_cli("init", "--dir", str(blocker)))
    assert "cannot write" in line or "not a directory" in line.lower()


@pytest.mark.parametrize("verb", ["init", "certs", "acl", "run", "demo", "ask", "eval", "model"])
def test_verb_help_runs(verb: str) -> None:
    done = _cli(verb, "--help")
    assert done.returncode == 0 and "usage: hubagent " + verb in done.stdout
