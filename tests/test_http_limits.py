"""HTTP limits over real TCP, against a hub on a real TLS mosquitto with the demo home.

Bodies Python's json would accept but no client should send (NaN, Infinity, 1e309, a
5,000-digit integer, deep nesting) are a clear 400 and audited, never a 500. Connections
that send nothing, or headers or a body too slowly, are closed; past the connection cap
new ones get a 503; repeated loop errors (EMFILE on accept) are logged once a minute.
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import socket
import time
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
from conftest import BrokerEnv
from demohome import DEMO_HOME, wait_for

from hubagent.app import Hub
from hubagent.config import Config, HttpConfig, LlmConfig, StoreConfig, WyomingConfig
from hubagent.interfaces.http_limits import RateLimitedErrors
from hubagent.interfaces.server import Interfaces
from hubagent.sim.simulator import Simulator

CAP = 20
IDLE_S = 1.0


@pytest.fixture(scope="module")
def served(
    env: BrokerEnv, sim: Simulator, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Hub, Interfaces]]:
    store = tmp_path_factory.mktemp("http-limits")
    cfg = Config(
        homes=(str(DEMO_HOME),),
        mqtt=env.mqtt_config(client_id="hubagent-http-limits"),
        llm=LlmConfig(backend="none"),
        store=StoreConfig(path=str(store / "hub.db"), encryption_key="limits passphrase"),
        http=HttpConfig(port=0, max_connections=CAP, idle_timeout_s=IDLE_S, body_timeout_s=IDLE_S),
        wyoming=WyomingConfig(enabled=False),
    )
    hub = Hub(cfg)
    assert hub.start(wait=10)
    wait_for(lambda: hub.registry.get("light.hallway"))
    interfaces = Interfaces(hub)
    interfaces.start()
    try:
        yield hub, interfaces
    finally:
        interfaces.stop()
        hub.stop()


def _address(served: tuple[Hub, Interfaces]) -> tuple[str, int]:
    url = served[1].addresses()["http"]
    host, port = url.split("//", 1)[1].rsplit(":", 1)
    return host, int(port)


def post(served: tuple[Hub, Interfaces], path: str, raw: bytes) -> tuple[int, Any]:
    url = served[1].addresses()["http"] + path
    headers = {"Authorization": f"Bearer {served[1].token}", "Content-Type": "application/json"}

    async def go() -> tuple[int, Any]:
        async with (
            aiohttp.ClientSession() as session,
            session.post(url, headers=headers, data=raw) as resp,
        ):
            text = await resp.text()
            try:
                return resp.status, json.loads(text)
            except json.JSONDecodeError:
                return resp.status, text

    return asyncio.run(go())


def _action(value: str) -> bytes:
    return (
        b'{"actions": [{"entity": "light.hallway", "action": "set_brightness",'
        b' "args": {"brightness": ' + value.encode() + b"}}]}"
    )


HOSTILE_BODIES = [
    ("NaN", _action("NaN"), "NaN"),
    ("Infinity", _action("Infinity"), "Infinity"),
    ("-Infinity", _action("-Infinity"), "Infinity"),
    ("1e309", _action("1e309"), "out of range"),
    ("5000 digits", _action("9" * 5000), "5000 digits"),
    ("depth 40", b'{"actions": ' + b"[" * 40 + b"]" * 40 + b"}", "deeper than 32"),
    ("depth 30000", b'{"actions": ' + b"[" * 30_000 + b"]" * 30_000 + b"}", "deeper"),
]


@pytest.mark.parametrize(
    ("name", "raw", "message"), HOSTILE_BODIES, ids=[h[0] for h in HOSTILE_BODIES]
)
def test_hostile_json_is_a_clear_400_and_audited(
    served: tuple[Hub, Interfaces], name: str, raw: bytes, message: str
) -> None:
    hub, _ = served
    for path in ("/api/actions", "/api/conversation"):
        status, answer = post(served, path, raw)
        assert status == 400, (status, answer)
        assert message in answer["error"] and "Traceback" not in json.dumps(answer)
        entry = hub.store.audit_entries(limit=1)[0]
        assert entry.decision == "bad_request" and message in entry.reason
        assert entry.text.startswith(f"POST {path}") and entry.requester == "http"


def test_ordinary_numbers_still_work(served: tuple[Hub, Interfaces]) -> None:
    status, answer = post(served, "/api/actions", _action("30"))
    assert status == 200 and answer["actions"], answer
    status, answer = post(served, "/api/actions", _action("30.5"))
    assert status == 200, answer


def _open(address: tuple[str, int], payload: bytes = b"") -> socket.socket:
    sock = socket.create_connection(address, timeout=5)
    if payload:
        sock.sendall(payload)
    return sock


def _closed_by_server(sock: socket.socket, within: float) -> bool:
    sock.settimeout(within)
    try:
        while True:
            data = sock.recv(4096)
            if not data:
                return True
            if b"408" in data or b"503" in data:  # an answer, then the close
                continue
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


def test_half_open_and_slow_connections_are_closed(served: tuple[Hub, Interfaces]) -> None:
    address = _address(served)
    silent = _open(address)
    slow_headers = _open(address, b"POST /api/actions HTTP/1.1\r\nHost: x\r\n")
    slow_body = _open(
        address,
        b"POST /api/actions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
        + served[1].token.encode()
        + b"\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{",
    )
    try:
        start = time.monotonic()
        for sock in (silent, slow_headers, slow_body):
            assert _closed_by_server(sock, IDLE_S + 5), "connection was left open"
        print(f"\nidle/slow connections closed after {time.monotonic() - start:.1f} s")
    finally:
        for sock in (silent, slow_headers, slow_body):
            sock.close()


def test_connection_cap_closes_idle_ones_for_new_clients(served: tuple[Hub, Interfaces]) -> None:
    """1,000 half-open connections made the API unusable; now there are never more than
    the cap, silent ones are closed (oldest first) for new clients, and requests work."""
    address = _address(served)
    site = next(s for s in served[1]._runner.sites)  # type: ignore[union-attr]
    held = [_open(address) for _ in range(CAP * 3)]
    try:
        time.sleep(0.3)
        server = served[1]._runner.server  # type: ignore[union-attr]
        assert len(server.connections) <= CAP
        status, answer = post(served, "/api/actions", _action("40"))
        assert status == 200, answer
        closed = sum(1 for s in held if _closed_by_server(s, 0.2))
        assert closed >= CAP * 2, closed
        print(f"\n{CAP * 3} silent connections: {closed} closed at once, API answered 200")
        assert site.evicted >= 1 and site.evicted + site.refused >= CAP * 2
    finally:
        for sock in held:
            sock.close()


def _peek(sock: socket.socket, marker: bytes) -> bool:
    sock.settimeout(0.5)
    try:
        return marker in sock.recv(4096)
    except (TimeoutError, ConnectionResetError):
        return False


def test_repeated_loop_errors_are_logged_once_a_minute(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR)
    loop = asyncio.new_event_loop()
    try:
        handler = RateLimitedErrors(loop)
        error = OSError(errno.EMFILE, "Too many open files")
        for _ in range(10_000):
            handler(loop, {"message": "socket.accept() out of system resource", "exception": error})
        other = OSError(errno.ECONNRESET, "reset")
        handler(loop, {"message": "other", "exception": other})
    finally:
        loop.close()
    lines = [r for r in caplog.records if "out of system resource" in r.getMessage()]
    assert len(lines) == 1
    assert any(r.getMessage() == "other" for r in caplog.records)
