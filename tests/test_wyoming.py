"""The Wyoming `handle` server over real TCP, with the `wyoming` package's own client, against
a hub on a real TLS mosquitto with the simulated demo home."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from conftest import BrokerEnv
from demohome import DEMO_HOME, wait_for
from wyoming.asr import Transcript
from wyoming.client import AsyncTcpClient
from wyoming.event import Event
from wyoming.handle import Handled, NotHandled
from wyoming.info import Describe, Info
from wyoming.ping import Ping, Pong

from hubagent.app import Hub
from hubagent.config import Config, HttpConfig, LlmConfig, StoreConfig, WyomingConfig
from hubagent.interfaces.server import Interfaces
from hubagent.sim.simulator import Simulator


@pytest.fixture(scope="module")
def served(
    env: BrokerEnv, sim: Simulator, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Hub, str, int]]:
    store = tmp_path_factory.mktemp("wyoming-store")
    cfg = Config(
        homes=(str(DEMO_HOME),),
        mqtt=env.mqtt_config(client_id="hubagent-wyoming"),
        llm=LlmConfig(backend="none"),
        store=StoreConfig(path=str(store / "hub.db"), encryption_key="wyoming test"),
        http=HttpConfig(enabled=False),
        wyoming=WyomingConfig(port=0),
    )
    hub = Hub(cfg)
    assert hub.start(wait=10)
    wait_for(lambda: len(hub.registry) >= len(sim.devices) and hub.registry.get("light.hallway"))
    interfaces = Interfaces(hub)
    try:
        addresses = interfaces.start()
        assert "http" not in addresses
        host, port = addresses["wyoming"].removeprefix("tcp://").rsplit(":", 1)
        yield hub, host, int(port)
    finally:
        interfaces.stop()
        hub.stop()


def exchange(served: tuple[Hub, str, int], *events: Event) -> list[Event]:
    """Send events over one connection; one answer event per request event."""
    _, host, port = served

    async def go() -> list[Event]:
        answers = []
        async with AsyncTcpClient(host, port, connect_timeout=5, read_timeout=30) as client:
            for event in events:
                await client.write_event(event)
                answer = await client.read_event()
                assert answer is not None
                answers.append(answer)
        return answers

    return asyncio.run(go())


def test_describe_announces_a_home_control_handler(served) -> None:
    (answer,) = exchange(served, Describe().event())
    info = Info.from_event(answer)
    assert len(info.handle) == 1
    program = info.handle[0]
    assert program.supports_home_control is True and program.installed
    assert program.models[0].languages == ["en"]


def test_transcript_is_handled_and_reaches_the_device(served, sim: Simulator) -> None:
    hub = served[0]
    sim.set_device_state("light.garage", {"state": "OFF"})
    wait_for(lambda: hub.registry.get("light.garage").state.get("state") == "off")
    (answer,) = exchange(served, Transcript(text="turn on the garage light").event())
    assert Handled.is_type(answer.type)
    handled = Handled.from_event(answer)
    assert handled.text and handled.context and handled.context["conversation_id"]
    wait_for(lambda: sim.device("light.garage").ha_state().get("state") == "on")


def test_nonsense_is_not_handled(served) -> None:
    published = served[0].mqtt.stats.published
    (answer,) = exchange(served, Transcript(text="purple monkey dishwasher").event())
    assert NotHandled.is_type(answer.type) and NotHandled.from_event(answer).text
    (answer,) = exchange(served, Transcript(text="turn on the lights", language="de").event())
    assert NotHandled.is_type(answer.type)
    (answer,) = exchange(served, Event(type="transcript", data={"no": "text"}))
    assert NotHandled.is_type(answer.type)
    assert served[0].mqtt.stats.published == published


def test_follow_up_with_the_same_conversation_id(served, sim: Simulator) -> None:
    sim.set_device_state("light.bedroom_ceiling", {"state": "OFF"})
    wait_for(lambda: served[0].registry.get("light.bedroom_ceiling").state.get("state") == "off")
    first, ping = exchange(
        served, Transcript(text="turn off the office lights").event(), Ping(text="x").event()
    )
    assert Handled.is_type(first.type) and Pong.from_event(ping).text == "x"
    wait_for(lambda: sim.device("light.desk_lamp").ha_state().get("state") == "off")
    context = Handled.from_event(first).context
    (second,) = exchange(served, Transcript(text="turn it on", context=context).event())
    assert Handled.is_type(second.type), second
    assert Handled.from_event(second).context["conversation_id"] == context["conversation_id"]
    wait_for(lambda: sim.device("light.desk_lamp").ha_state().get("state") == "on")
    (third,) = exchange(served, Transcript(text="also in the bedroom", context=context).event())
    assert Handled.is_type(third.type)
    wait_for(lambda: sim.device("light.bedroom_ceiling").ha_state().get("state") == "on")
    # A new conversation has no "it".
    (alone,) = exchange(served, Transcript(text="turn it on").event())
    assert NotHandled.is_type(alone.type)
