"""`hubagent demo`, the README's first command, driven like a person at a terminal: a real
mosquitto, the simulated home, the hub, its REPL with follow-ups, and a clean shutdown."""

from __future__ import annotations

import os
import select
import socket
import sys
import time
from pathlib import Path

import pytest

from hubagent.mqtt.broker import find_mosquitto

pty = pytest.importorskip("pty")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Terminal:
    """The demo in a pseudo-terminal (its REPL only runs on a TTY)."""

    def __init__(self, args: list[str]) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: become the demo
            os.execv(sys.executable, [sys.executable, "-m", "hubagent.cli", *args])
        self.out = ""

    def read_until(self, marker: str, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            ready, _, _ = select.select([self.fd], [], [], 0.2)
            if ready:
                try:
                    self.out += os.read(self.fd, 65536).decode(errors="replace")
                except OSError:  # the child closed the terminal
                    return marker in self.out
                if marker in self.out:
                    return True
        return False

    def say(self, text: str, timeout: float = 60) -> str:
        """Send one line; the hub's reply line."""
        prompts = self.out.count("you> ")
        os.write(self.fd, (text + "\n").encode())
        end = time.monotonic() + timeout
        while self.out.count("you> ") <= prompts and time.monotonic() < end:
            self.read_until("you> ", 1)
        replies = [line for line in self.out.splitlines() if line.startswith("hub> ")]
        return replies[-1] if replies else ""

    def close(self, timeout: float = 30) -> int:
        os.write(self.fd, b"\x04")  # Ctrl-D
        self.read_until("stopping", timeout)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                return os.waitstatus_to_exitcode(status)
            time.sleep(0.1)
        os.kill(self.pid, 9)
        raise AssertionError("the demo did not stop on Ctrl-D")


@pytest.mark.skipif(find_mosquitto() is None, reason="mosquitto is not installed")
def test_demo_runs_a_conversation_and_stops_cleanly(tmp_path: Path) -> None:
    workdir = tmp_path / "demo"
    args = ["demo", "--no-llm", "--workdir", str(workdir)]
    args += ["--http-port", str(_free_port()), "--wyoming-port", str(_free_port())]
    term = Terminal(args)
    try:
        assert term.read_until("you> ", 120), term.out[-2000:]
        assert "hubagent demo is up: 25 entities" in term.out
        asked = term.say("turn on the lamp")
        assert asked.startswith("hub> Which one: ") and "Desk lamp (Office)" in asked
        assert "Turned on Desk lamp" in term.say("the one in the office")
        assert "Turned on Kitchen ceiling light" in term.say("turn on the kitchen lights")
        assert "Turned off Kitchen ceiling light" in term.say("turn them off")
        assert "Which one" not in term.say("what's the temperature in the living room?")
    finally:
        code = term.close()
    assert code == 0, term.out[-2000:]
    # The broker the demo started is gone with it.
    assert _processes_mentioning(str(workdir)) == []


def _processes_mentioning(text: str) -> list[str]:
    """Command lines of running processes that contain `text` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if text in cmdline:
            found.append(cmdline)
    return found
