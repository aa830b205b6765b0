"""The voice back end end to end, on a real TLS mosquitto with the simulated demo home: a
timer survives a hub restart and fires on time with its MQTT event and its command; timers
and lists over Wyoming (the real `wyoming` client, timer events on the satellite that
started them) and over HTTP; a satellite mapped to the kitchen acts on the kitchen;
"Which one?" is handled and the answer completes the request."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from conftest import BrokerEnv
from demohome import DEMO_HOME, wait_for
from wyoming.asr import Transcript
from wyoming.client import AsyncTcpClient
from wyoming.event import Event
from wyoming.handle import Handled
from wyoming.info import Describe, Info
from wyoming.timer import TimerFinished, TimerStarted

import hubagent
from hubagent.app import Hub
from hubagent.config import Config, HttpConfig, LlmConfig, StoreConfig, WyomingConfig
from hubagent.interfaces.server import Interfaces
from hubagent.mqtt.client import MqttClient
from hubagent.sim.simulator import Simulator

TOKEN = "voice-test-token"


def hub_config(env: BrokerEnv, db: Path, **overrides: Any) -> Config:
    base = Config(
        homes=(str(DEMO_HOME),),
        mqtt=env.mqtt_config(),
        llm=LlmConfig(backend="none"),
        store=StoreConfig(path=str(db), encryption_key="voice test"),
        http=HttpConfig(port=0, token=TOKEN),
        wyoming=WyomingConfig(port=0),
        satellites={"sat-kitchen": "kitchen"},
    )
    return replace(base, **overrides)


def started(cfg: Config, sim: Simulator) -> Hub:
    hub = Hub(cfg)
    assert hub.start(wait=10)
    wait_for(lambda: len(hub.registry) >= len(sim.devices) and hub.registry.get("light.garage"))
    return hub


class Observer:
    """A second MQTT client (a hub worker account: client ids are bound to accounts, so the
    hub's own would kick the hub) recording what the hub notifies."""

    def __init__(self, env: BrokerEnv) -> None:
        self.client = MqttClient(env.mqtt_config("hubagent-2"))
        self.seen: list[tuple[str, dict[str, Any], float]] = []
        self._lock = threading.Lock()
        self.client.start()
        assert self.client.wait_connected(10)
        assert self.client.subscribe("hubagent/notify/#", self._on, timeout=5)

    def _on(self, topic: str, payload: bytes, retained: bool) -> None:
        with self._lock:
            self.seen.append((topic, json.loads(payload), time.time()))

    def events(self, topic: str) -> list[tuple[dict[str, Any], float]]:
        with self._lock:
            return [(p, at) for t, p, at in self.seen if t == topic]

    def close(self) -> None:
        self.client.stop()


def test_a_timer_survives_a_restart_and_fires_on_time(
    env: BrokerEnv, sim: Simulator, tmp_path: Path
) -> None:
    cfg = hub_config(env, tmp_path / "hub.db", http=HttpConfig(enabled=False))
    sim.set_device_state("light.garage", {"state": "ON"})
    first = started(cfg, sim)
    try:
        wait_for(lambda: first.registry.get("light.garage").state.get("state") == "on")
        assert first.agent.handle("set a timer for 4 seconds named tea").text == (
            "Timer set for 4 seconds named tea"
        )
        reply = first.agent.handle("turn off the garage light in 4 seconds")
        assert reply.text == "Command will be executed in 4 seconds"
        ends = {t.name: t.ends_at for t in first.assist.timers.timers()}
    finally:
        first.stop()
    observer = Observer(env)
    second = started(replace(cfg, mqtt=env.mqtt_config()), sim)
    try:
        assert {t.name for t in second.assist.timers.timers()} == {"tea", None}
        wait_for(lambda: len(observer.events("hubagent/notify/timer/finished")) == 2, timeout=8)
        for payload, at in observer.events("hubagent/notify/timer/finished"):
            assert abs(at - ends[payload["name"]]) < 1.0, payload
        # The command ran through the agent after the restart.
        wait_for(lambda: sim.device("light.garage").ha_state().get("state") == "off")
        running, _ = observer.events("hubagent/notify/timers")[-1]
        assert running == []
    finally:
        second.stop()
        observer.close()


@pytest.fixture(scope="module")
def served(
    env: BrokerEnv, sim: Simulator, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Hub, dict[str, str]]]:
    db = tmp_path_factory.mktemp("voice") / "hub.db"
    hub = started(hub_config(env, db), sim)
    interfaces = Interfaces(hub)
    try:
        yield hub, interfaces.start()
    finally:
        interfaces.stop()
        hub.stop()


async def _talk(
    address: str, text: str, context: dict[str, Any] | None = None, until: str = "handled"
) -> list[Event]:
    """One transcript; every event the server sends until one of type `until`."""
    host, port = address.removeprefix("tcp://").rsplit(":", 1)
    events = []
    async with AsyncTcpClient(host, int(port), connect_timeout=5, read_timeout=8) as client:
        await client.write_event(Transcript(text=text, context=context).event())
        while not events or events[-1].type != until:
            event = await client.read_event()
            assert event is not None
            events.append(event)
    return events


def talk(served: tuple[Hub, dict[str, str]], text: str, **kwargs: Any) -> list[Event]:
    return asyncio.run(_talk(served[1]["wyoming"], text, **kwargs))


def test_timer_and_list_over_wyoming(served, sim: Simulator) -> None:
    hub = served[0]
    info = Info.from_event(asyncio.run(_describe(served[1]["wyoming"])))
    assert info.handle[0].version == hubagent.__version__
    events = talk(
        served,
        "set a timer for 2 seconds",
        context={"satellite_id": "sat-kitchen"},
        until="timer-finished",
    )
    kinds = [e.type for e in events]
    assert kinds[-1] == "timer-finished" and "handled" in kinds and "timer-started" in kinds
    start = TimerStarted.from_event(events[kinds.index("timer-started")])
    assert start.total_seconds == 2 and start.start_seconds == 2
    assert TimerFinished.from_event(events[-1]).id == start.id
    handled = Handled.from_event(events[kinds.index("handled")])
    assert handled.text == "Timer set for 2 seconds"
    (added,) = talk(served, "add milk to my shopping list")
    assert Handled.from_event(added).text == "Added milk"
    assert {"item": "milk", "done": False} in hub.assist.lists.items("todo.shopping_list")


async def _describe(address: str) -> Event:
    host, port = address.removeprefix("tcp://").rsplit(":", 1)
    async with AsyncTcpClient(host, int(port), connect_timeout=5, read_timeout=8) as client:
        await client.write_event(Describe().event())
        event = await client.read_event()
        assert event is not None
        return event


def test_a_kitchen_satellite_acts_on_the_kitchen(served, sim: Simulator) -> None:
    hub = served[0]
    for light in ("light.kitchen_ceiling", "light.under_cabinet", "light.hallway"):
        sim.set_device_state(light, {"state": "OFF"})
    wait_for(lambda: hub.registry.get("light.under_cabinet").state.get("state") == "off")
    (answer,) = talk(served, "turn on the lights", context={"satellite_id": "sat-kitchen"})
    assert Handled.is_type(answer.type), answer
    wait_for(lambda: sim.device("light.kitchen_ceiling").ha_state().get("state") == "on")
    wait_for(lambda: sim.device("light.under_cabinet").ha_state().get("state") == "on")
    assert sim.device("light.hallway").ha_state().get("state") == "off"


def test_which_one_is_handled_and_the_answer_completes_it(served, sim: Simulator) -> None:
    sim.set_device_state("light.desk_lamp", {"state": "OFF"})
    (question,) = talk(served, "turn on the lamp")
    assert Handled.is_type(question.type)
    asked = Handled.from_event(question)
    assert asked.text.startswith("Which one") and "Desk lamp" in asked.text
    assert asked.context["continue_conversation"] is True
    (done,) = talk(served, "the desk lamp", context=asked.context)
    assert Handled.is_type(done.type), done
    assert Handled.from_event(done).context["continue_conversation"] is False
    wait_for(lambda: sim.device("light.desk_lamp").ha_state().get("state") == "on")


def test_timer_and_list_over_http(served) -> None:
    base = served[1]["http"]

    async def go() -> tuple[Any, Any, Any]:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with aiohttp.ClientSession(headers=headers) as session:
            said = {"text": "set a 5 minute timer named pasta", "satellite_id": "sat-kitchen"}
            async with session.post(f"{base}/api/conversation", json=said) as r:
                reply = await r.json()
            await session.post(
                f"{base}/api/conversation", json={"text": "add bread to my shopping list"}
            )
            async with session.get(f"{base}/api/timers") as r:
                timers = await r.json()
            async with session.get(f"{base}/api/lists/todo.shopping_list") as r:
                items = await r.json()
        return reply, timers, items

    reply, timers, items = asyncio.run(go())
    assert reply["reply"] == "Timer set for 5 minutes named pasta"
    (pasta,) = [t for t in timers["timers"] if t["name"] == "pasta"]
    assert pasta["satellite"] == "sat-kitchen" and pasta["area"] == "Kitchen"
    assert 295 <= pasta["seconds_left"] <= 300 and pasta["is_active"]
    assert {"item": "bread", "done": False} in items["items"]


def test_zeroconf_without_the_package_is_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    import importlib.util

    from hubagent.config import WyomingConfig
    from hubagent.interfaces.wyoming_server import WyomingServer

    if importlib.util.find_spec("zeroconf") is not None:
        pytest.skip("the zeroconf package is installed")

    async def go() -> int:
        cfg = WyomingConfig(host="127.0.0.1", port=0, zeroconf=True)
        server = WyomingServer(None, cfg, "en")  # type: ignore[arg-type]
        port = await server.start()
        await server.stop()
        return port

    assert asyncio.run(go()) > 0
    assert "'zeroconf' package is not installed" in caplog.text
