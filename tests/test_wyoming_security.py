"""Wyoming as a hostile peer uses it, against a hub on a real TLS mosquitto with the simulated
demo home: bounded events, idle timeout, connection caps, sensitive actions that need the
app's confirmation, per-requester rate limits, and transcripts that cannot stall HTTP."""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import BrokerEnv
from demohome import DEMO_HOME, wait_for
from faultkit import rss_mb
from wyoming.asr import Transcript
from wyoming.client import AsyncTcpClient
from wyoming.event import Event, async_read_event, async_write_event
from wyoming.handle import Handled, NotHandled

from hubagent.app import Hub
from hubagent.config import (
    Config,
    HttpConfig,
    LlmConfig,
    PolicyConfig,
    StoreConfig,
    WyomingConfig,
)
from hubagent.interfaces.server import Interfaces
from hubagent.interfaces.wyoming_server import WyomingServer
from hubagent.sim.simulator import Simulator

IDLE_S = 1.5


class Served:
    """The hub with HTTP (token) and an untrusted Wyoming server, plus a trusted one."""

    def __init__(self, hub: Hub, interfaces: Interfaces) -> None:
        self.hub = hub
        self.interfaces = interfaces
        addresses = interfaces.addresses()
        host, port = addresses["wyoming"].removeprefix("tcp://").rsplit(":", 1)
        self.wyoming = (host, int(port))
        self.http = addresses["http"]
        self.trusted_port = 0

    def post(self, path: str, body: dict[str, Any]) -> tuple[float, dict[str, Any]]:
        request = urllib.request.Request(
            self.http + path,
            data=json.dumps(body).encode(),
            headers={
                "Authorization": f"Bearer {self.interfaces.token}",
                "Content-Type": "application/json",
            },
        )
        started = time.monotonic()
        with urllib.request.urlopen(request, timeout=60) as response:
            return time.monotonic() - started, json.loads(response.read())


@pytest.fixture(scope="module")
def served(
    env: BrokerEnv, sim: Simulator, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    store = tmp_path_factory.mktemp("wyoming-sec-store")
    cfg = Config(
        homes=(str(DEMO_HOME),),
        mqtt=env.mqtt_config(client_id="hubagent-wyoming-sec"),
        llm=LlmConfig(backend="none"),
        policy=PolicyConfig(rate_limit_per_entity=5, rate_window_s=10.0),
        store=StoreConfig(path=str(store / "hub.db"), encryption_key="wyoming sec test"),
        http=HttpConfig(port=0, token="wyoming-sec-token"),
        wyoming=WyomingConfig(
            port=0, idle_timeout_s=IDLE_S, max_connections=6, max_connections_per_peer=3
        ),
    )
    hub = Hub(cfg)
    assert hub.start(wait=10)
    wait_for(lambda: len(hub.registry) >= len(sim.devices) and hub.registry.get("lock.front_door"))
    interfaces = Interfaces(hub)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    # A second Wyoming server on the same hub whose peers (loopback) are trusted.
    trusted = WyomingServer(
        interfaces.conversations,
        WyomingConfig(port=0, trusted_peers=("127.0.0.0/8", "not-an-address")),
        "en",
    )
    try:
        interfaces.start()
        result = Served(hub, interfaces)
        result.trusted_port = asyncio.run_coroutine_threadsafe(trusted.start(), loop).result(5)
        yield result
    finally:
        asyncio.run_coroutine_threadsafe(trusted.stop(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()
        interfaces.stop()
        hub.stop()


def say(
    address: tuple[str, int], *texts: str, context: dict[str, Any] | None = None
) -> list[Event]:
    """Each text as a transcript over one connection (one conversation); the answers."""

    async def go() -> list[Event]:
        answers = []
        ctx = dict(context or {})
        async with AsyncTcpClient(*address, connect_timeout=5, read_timeout=60) as client:
            for text in texts:
                await client.write_event(Transcript(text=text, context=ctx).event())
                answer = await client.read_event()
                assert answer is not None
                ctx = dict(answer.data.get("context") or ctx)
                answers.append(answer)
        return answers

    return asyncio.run(go())


async def _raw(address: tuple[str, int], data: bytes, read_for: float = 5.0) -> bytes:
    reader, writer = await asyncio.open_connection(*address)
    writer.write(data)
    await writer.drain()
    received = b""
    try:
        async with asyncio.timeout(read_for):
            while chunk := await reader.read(65536):
                received += chunk
    except (TimeoutError, ConnectionResetError):
        pass
    writer.close()
    return received


def test_declared_huge_payload_and_data_are_refused_without_buffering(served: Served) -> None:
    before = rss_mb()
    for key in ("payload_length", "data_length"):
        header = json.dumps({"type": "transcript", key: 300 * 1024 * 1024}).encode() + b"\n"
        answer = asyncio.run(_raw(served.wyoming, header + b"x" * 1_000_000))
        first = json.loads(answer.split(b"\n", 1)[0])
        assert first["type"] == "error", answer[:200]
        assert "over the limit" in answer.decode(errors="replace")
    # A header line of 1 MB without a newline: refused at 64 KB.
    answer = asyncio.run(_raw(served.wyoming, b'{"type": "transcript", "x": "' + b"a" * 1_000_000))
    assert b"over" in answer
    # Nested past Python's recursion limit: refused as a bad event, not a traceback.
    deep = b"[" * 20000 + b"]" * 20000
    answer = asyncio.run(_raw(served.wyoming, b'{"type": "transcript", "data": ' + deep + b"}\n"))
    assert b"not JSON" in answer
    data = json.dumps({"type": "transcript", "data_length": len(b"[" * 8000)}).encode()
    answer = asyncio.run(_raw(served.wyoming, data + b"\n" + b"[" * 8000))
    assert b"not JSON" in answer
    growth = rss_mb() - before
    print(f"\nRSS growth after three oversized events: {growth:.1f} MB")
    assert growth < 50


def test_long_transcript_is_refused_and_the_connection_goes_on(served: Served) -> None:
    long, ping = say(served.wyoming, "turn on the kitchen light " * 200, "purple monkey")
    assert NotHandled.is_type(long.type) and "too long" in NotHandled.from_event(long).text
    assert NotHandled.is_type(ping.type)  # the same connection still answers


def test_idle_and_slow_connections_are_closed(served: Served) -> None:
    started = time.monotonic()
    assert asyncio.run(_raw(served.wyoming, b"", read_for=IDLE_S + 5)) == b""
    assert time.monotonic() - started < IDLE_S + 3
    # Half an event, then silence: closed as well.
    started = time.monotonic()
    asyncio.run(
        _raw(served.wyoming, b'{"type": "transcript", "data_length": 100}\n{"te', IDLE_S + 5)
    )
    assert time.monotonic() - started < IDLE_S + 3


def test_connection_cap_per_peer(served: Served) -> None:
    async def go() -> tuple[list[bytes], Event | None]:
        held = [await asyncio.open_connection(*served.wyoming) for _ in range(3)]
        await asyncio.sleep(0.2)
        refused = await _raw(served.wyoming, b"", read_for=1.0)
        for _, writer in held:
            writer.close()
        await asyncio.sleep(0.3)
        async with AsyncTcpClient(*served.wyoming) as client:  # a slot is free again
            await client.write_event(Transcript(text="purple monkey").event())
            answer = await client.read_event()
        return [refused], answer

    (refused,), answer = asyncio.run(go())
    assert refused == b""  # closed at once
    assert answer is not None and NotHandled.is_type(answer.type)


def test_unauthenticated_unlock_needs_the_apps_confirmation(served: Served, sim: Simulator) -> None:
    lock = sim.device("lock.front_door")
    assert str(lock.ha_state().get("state")).lower() == "locked"
    ask, yes = say(served.wyoming, "unlock the front door", "yes")
    ask_text = Handled.from_event(ask).text
    code = re.search(r"confirm (\d{6})", ask_text)
    assert code, ask_text
    assert "app" in Handled.from_event(yes).text if Handled.is_type(yes.type) else True
    assert f"confirm {code.group(1)}" in yes.data["text"]
    time.sleep(0.5)
    assert str(lock.ha_state().get("state")).lower() == "locked"
    # The code over Wyoming does nothing either.
    (again,) = say(served.wyoming, f"confirm {code.group(1)}")
    assert "app" in again.data["text"]
    assert str(lock.ha_state().get("state")).lower() == "locked"
    # The app (HTTP with the token) confirms it: now the door unlocks, once.
    _, reply = served.post("/api/conversation", {"text": f"confirm {code.group(1)}"})
    assert reply["actions"] and reply["actions"][0]["action"] == "unlock", reply
    wait_for(lambda: str(lock.ha_state().get("state")).lower() == "unlocked")
    _, reply = served.post("/api/conversation", {"text": f"confirm {code.group(1)}"})
    assert not reply["actions"]
    served.post("/api/actions", {"actions": [{"entity": "lock.front_door", "action": "lock"}]})
    wait_for(lambda: str(lock.ha_state().get("state")).lower() == "locked")


def test_trusted_peer_confirms_by_voice(served: Served, sim: Simulator) -> None:
    lock = sim.device("lock.front_door")
    ask, yes = say(("127.0.0.1", served.trusted_port), "unlock the front door", "yes")
    assert "Say yes" in Handled.from_event(ask).text
    assert Handled.is_type(yes.type) and "nlocked" in Handled.from_event(yes).text
    wait_for(lambda: str(lock.ha_state().get("state")).lower() == "unlocked")
    served.post("/api/actions", {"actions": [{"entity": "lock.front_door", "action": "lock"}]})
    wait_for(lambda: str(lock.ha_state().get("state")).lower() == "locked")


def test_one_requester_cannot_starve_another(served: Served, sim: Simulator) -> None:
    """Ten unconfirmed unlocks a second from one Wyoming peer; "lock" from HTTP still works."""
    answers = say(served.wyoming, *["unlock the front door"] * 10)
    assert "Too many" in answers[-1].data["text"]  # the flooder's own budget is used up
    received = len(sim.received)
    replies = []
    for _ in range(5):  # the policy allows five per 10 s per requester in this module
        _, reply = served.post("/api/conversation", {"text": "lock the front door"})
        replies.append(reply)
    assert all(r["actions"] for r in replies), [r["reply"] for r in replies]
    assert sim.wait_received(received + 5)


def test_long_transcripts_do_not_stall_http(served: Served) -> None:
    text = ("please turn on the kitchen light and " * 120)[:4000]

    async def flood() -> None:
        async def one() -> None:
            async with AsyncTcpClient(*served.wyoming, read_timeout=120) as client:
                await client.write_event(Transcript(text=text).event())
                await client.read_event()

        await asyncio.gather(*(one() for _ in range(3)))

    single = time.monotonic()
    say(("127.0.0.1", served.trusted_port), text)
    single = time.monotonic() - single
    flooding = threading.Thread(target=lambda: asyncio.run(flood()))
    flooding.start()
    time.sleep(0.2)
    elapsed, reply = served.post("/api/conversation", {"text": "turn on the garage light"})
    flooding.join(120)
    print(f"\none 4 KB transcript {single:.2f} s; HTTP command during a flood {elapsed:.2f} s")
    assert reply["actions"]
    assert elapsed < max(3.0, single)


def test_overall_cap_cannot_lock_out_a_trusted_peer(served: Served) -> None:
    server = WyomingServer(
        served.interfaces.conversations,
        WyomingConfig(
            port=0, max_connections=2, max_connections_per_peer=1, trusted_peers=("127.0.0.9",)
        ),
        "en",
    )

    async def go() -> tuple[bytes, bytes, Event | None]:
        port = await server.start()
        try:
            held = [
                await asyncio.open_connection("127.0.0.1", port, local_addr=(ip, 0))
                for ip in ("127.0.0.2", "127.0.0.3")
            ]
            await asyncio.sleep(0.2)
            same_peer = await _raw_from("127.0.0.2", port)
            third_peer = await _raw_from("127.0.0.4", port)
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", port, local_addr=("127.0.0.9", 0)
            )
            await async_write_event(Transcript(text="purple monkey").event(), writer)
            answer = await async_read_event(reader)
            writer.close()
            for _, w in held:
                w.close()
            return same_peer, third_peer, answer
        finally:
            await server.stop()

    same_peer, third_peer, answer = asyncio.run(go())
    assert same_peer == b"" and third_peer == b""  # closed at once
    assert answer is not None and NotHandled.is_type(answer.type)


async def _raw_from(ip: str, port: int) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(ip, 0))
    try:
        async with asyncio.timeout(1.0):
            return await reader.read(100)
    except (TimeoutError, ConnectionResetError):
        return b"timeout"
    finally:
        writer.close()
