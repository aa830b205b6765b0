"""Issue 11's follow-ups in one conversation, over the HTTP API and over Wyoming (the real
`wyoming` client), on a real TLS mosquitto with the simulated demo home: the previous
turn's devices are context, never a substitute for a device the new request names."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import aiohttp
import pytest
from conftest import BrokerEnv
from demohome import DEMO_HOME, wait_for
from wyoming.asr import Transcript
from wyoming.client import AsyncTcpClient
from wyoming.handle import Handled

from hubagent.app import Hub
from hubagent.config import Config, HttpConfig, LlmConfig, StoreConfig, WyomingConfig
from hubagent.interfaces.server import Interfaces
from hubagent.sim.simulator import Simulator

TOKEN = "followups-test-token"
Say = Callable[[str, "str | None"], tuple[str, str]]  # (text, conversation) -> (reply, id)


@pytest.fixture(scope="module")
def served(
    env: BrokerEnv, sim: Simulator, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    db = tmp_path_factory.mktemp("followups") / "hub.db"
    cfg = Config(
        homes=(str(DEMO_HOME),),
        mqtt=env.mqtt_config(),
        llm=LlmConfig(backend="none"),
        store=StoreConfig(path=str(db), encryption_key="followups test"),
        http=HttpConfig(port=0, token=TOKEN),
        wyoming=WyomingConfig(port=0),
    )
    hub = Hub(cfg)
    assert hub.start(wait=10)
    wait_for(lambda: len(hub.registry) >= len(sim.devices))
    interfaces = Interfaces(hub)
    try:
        yield interfaces.start()
    finally:
        interfaces.stop()
        hub.stop()


def _http(address: str) -> Say:
    def say(text: str, conversation: str | None) -> tuple[str, str]:
        async def go() -> dict[str, Any]:
            body = {"text": text, **({"conversation_id": conversation} if conversation else {})}
            headers = {"Authorization": f"Bearer {TOKEN}"}
            url = f"{address}/api/conversation"
            async with (
                aiohttp.ClientSession(headers=headers) as session,
                session.post(url, json=body) as r,
            ):
                assert r.status == 200, await r.text()
                return await r.json()

        reply = asyncio.run(go())
        return reply["reply"], reply["conversation_id"]

    return say


def _wyoming(address: str) -> Say:
    host, port = address.removeprefix("tcp://").rsplit(":", 1)

    def say(text: str, conversation: str | None) -> tuple[str, str]:
        async def go() -> tuple[str, str]:
            context = {"conversation_id": conversation} if conversation else None
            async with AsyncTcpClient(host, int(port), connect_timeout=5, read_timeout=8) as c:
                await c.write_event(Transcript(text=text, context=context).event())
                event = await c.read_event()
            assert event is not None and Handled.is_type(event.type), event
            answer = Handled.from_event(event)
            return answer.text or "", (answer.context or {})["conversation_id"]

        return asyncio.run(go())

    return say


def _say(served: dict[str, str], interface: str) -> Say:
    return _http(served["http"]) if interface == "http" else _wyoming(served["wyoming"])


def _state(sim: Simulator, entity_id: str) -> dict[str, Any]:
    return sim.device(entity_id).ha_state()


@pytest.mark.parametrize("interface", ["http", "wyoming"])
def test_a_pronoun_after_a_named_device_is_that_device(
    served: dict[str, str], sim: Simulator, interface: str
) -> None:
    sim.set_device_state("light.kitchen_ceiling", {"state": "OFF", "brightness": 254})
    sim.set_device_state("light.desk_lamp", {"state": "OFF", "brightness": 254})
    say = _say(served, interface)
    _, conversation = say("turn on the kitchen light", None)
    wait_for(lambda: _state(sim, "light.kitchen_ceiling").get("state") == "on")
    reply, _ = say("turn on the desk lamp and dim it to 30%", conversation)
    wait_for(lambda: _state(sim, "light.desk_lamp").get("brightness") == 30, timeout=8)
    assert _state(sim, "light.desk_lamp").get("state") == "on", reply
    assert _state(sim, "light.kitchen_ceiling").get("brightness") == 100, reply


@pytest.mark.parametrize("interface", ["http", "wyoming"])
def test_the_fan_after_air_conditioner_talk_is_the_fan(
    served: dict[str, str], sim: Simulator, interface: str
) -> None:
    sim.set_device_state("fan.bedroom_fan", {"state": "OFF", "preset_mode": "auto"})
    sim.set_device_state("climate.living_room_ac", {"fan_mode": "auto"})
    say = _say(served, interface)
    _, conversation = say("set the living room air conditioner to 22", None)
    wait_for(lambda: _state(sim, "climate.living_room_ac").get("temperature") == 22)
    reply, _ = say("turn on the fan and set it to sleep", conversation)
    wait_for(lambda: _state(sim, "fan.bedroom_fan").get("preset_mode") == "sleep", timeout=8)
    assert _state(sim, "fan.bedroom_fan").get("state") == "on", reply
    assert _state(sim, "climate.living_room_ac").get("fan_mode") == "auto", reply


@pytest.mark.parametrize("interface", ["http", "wyoming"])
def test_dim_it_to_a_third_is_a_third(
    served: dict[str, str], sim: Simulator, interface: str
) -> None:
    sim.set_device_state("light.floor_lamp", {"state": "OFF", "brightness": 150})
    say = _say(served, interface)
    _, conversation = say("turn on the floor lamp", None)
    wait_for(lambda: _state(sim, "light.floor_lamp").get("state") == "on")
    reply, _ = say("dim it to a third", conversation)
    wait_for(lambda: _state(sim, "light.floor_lamp").get("brightness") == 33, timeout=8)
    assert "33" in reply
