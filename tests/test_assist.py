"""The voice assistant without a broker: HA's timer, list, weather and broadcast intents
answered through the agent in English and Chinese, timers persisted in a real SQLite store
(20 at once, on time), lists surviving a restart."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from demohome import DEMO_HOME, wait_for

from hubagent.act.policy import Policy
from hubagent.agent import Agent
from hubagent.assist import Parts, build
from hubagent.assist.context import origin
from hubagent.assist.timers import TimerManager
from hubagent.config import PolicyConfig
from hubagent.home.homefile import apply_home, load_home
from hubagent.home.registry import Registry
from hubagent.store.assist import TimerTable
from hubagent.store.db import Store
from hubagent.types import Entity, MqttMessage
from hubagent.understand.cascade import Cascade
from hubagent.understand.matcher import LocalMatchers


class Hub:
    """Registry, store, assistant and agent as the app wires them, sending into a list."""

    def __init__(self, db: Path) -> None:
        self.registry = Registry()
        apply_home(self.registry, load_home(DEMO_HOME))
        self.store = Store(db, "assist test")
        self.sent: list[MqttMessage] = []
        self.commands: list[str] = []
        self.parts: Parts = build(
            self.registry,
            self.store,
            self.sent.append,
            lists=["Chores"],
            run_command=lambda t: self.commands.append(str(t.command)),
        )
        matchers = LocalMatchers(
            self.registry, ["en", "zh-hans"], handled=self.parts.assistant.intents
        )
        self.agent = Agent(
            self.registry,
            Cascade(matchers, None),
            Policy(PolicyConfig(), self.registry),
            None,
            self.store,
            ["en", "zh-hans"],
            assist=self.parts.assistant,
        )
        self.parts.timers.start()

    def say(self, text: str) -> str:
        return self.agent.handle(text).text

    def events(self, topic: str) -> list[dict]:
        return [json.loads(m.payload) for m in self.sent if m.topic == topic]

    def close(self) -> None:
        self.parts.timers.stop()
        self.store.close()


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[Hub]:
    made = Hub(tmp_path / "hub.db")
    yield made
    made.close()


def test_timer_intents_answer_as_home_assistant_does(hub: Hub) -> None:
    assert hub.say("set a 5 minute timer named pizza") == "Timer set for 5 minutes named pizza"
    assert hub.say("set a timer for 1 hour") == "Timer set for 1 hour"
    assert hub.say("pizza timer status") == "5 minutes left."
    assert hub.say("add 5 minutes to pizza timer") == "5 minutes added to timer named pizza"
    assert hub.say("pause pizza timer") == "Timer paused"
    assert not hub.parts.timers.find(name="pizza")[0].is_active
    assert hub.say("resume pizza timer") == "Timer resumed"
    assert hub.say("cancel the pasta timer") == "Sorry, I couldn't find that timer"
    assert hub.say("cancel timer") == "Sorry, I am unable to target multiple timers"
    assert hub.say("cancel 1 hour timer") == "Timer cancelled"
    assert hub.say("cancel all timers") == "Canceled 1 timer."
    assert hub.say("timer status") == "No timers."
    # Every change is announced on MQTT, and the retained state lists what still runs.
    assert [e["event"] for e in hub.events("hubagent/notify/timer/started")] == ["started"] * 2
    assert hub.events("hubagent/notify/timers")[-1] == []
    assert next(m for m in hub.sent if m.topic == "hubagent/notify/timers").retain


def test_chinese_timers_and_shopping_list(hub: Hub) -> None:
    assert hub.say("设置一个10分钟的计时器") == "好的，已开始计时"
    assert hub.parts.timers.timers()[0].total_seconds == 600
    assert hub.say("把牛奶加到购物清单") == "好的，已把牛奶加入购物清单"
    assert hub.say("取消所有计时器") == "好的，已取消所有计时器"
    assert hub.parts.lists.items("todo.shopping_list") == [{"item": "牛奶", "done": False}]


def test_a_timer_with_a_command_runs_it_when_done(hub: Hub) -> None:
    with origin("sat-1", "wyoming"):
        reply = hub.say("turn off the kitchen light in 1 second")
    assert reply == "Command will be executed in 1 second"
    timer = hub.parts.timers.timers()[0]
    assert timer.satellite == "sat-1" and timer.command == "turn off the kitchen light"
    wait_for(lambda: hub.commands == ["turn off the kitchen light"], timeout=3)
    assert hub.events("hubagent/notify/timer/finished")[0]["id"] == timer.id


def test_twenty_timers_at_once_each_on_time(tmp_path: Path) -> None:
    store = Store(tmp_path / "hub.db")
    timers = TimerManager(TimerTable(store))
    finished: dict[str, float] = {}
    timers.add_listener(
        lambda event, t: finished.setdefault(t.id, time.time()) if event == "finished" else None
    )
    timers.start()
    try:
        started = [timers.start_timer(1 + (i % 3), name=f"t{i}") for i in range(20)]
        assert len(timers.timers()) == 20
        wait_for(lambda: len(finished) == 20, timeout=6)
        for timer in started:
            assert abs(finished[timer.id] - (timer.ends_at or 0)) < 1.0
        assert timers.timers() == [] and TimerTable(store).load() == []
    finally:
        timers.stop()
        store.close()


def test_lists_survive_a_restart(tmp_path: Path) -> None:
    first = Hub(tmp_path / "hub.db")
    try:
        assert first.say("add apples to my shopping list") == "Added apples"
        assert first.say("add laundry to my chores list") == "Added laundry"
        assert first.say("add dishes to my chores list") == "Added dishes"
        assert first.say("check off laundry from my chores list") == "Checked off laundry"
        assert first.say("remove bread from my chores list") == "bread is not on the list."
    finally:
        first.close()
    # Items are sealed like the audit log: the store has a key, so no plain text on disk.
    on_disk = b"".join(p.read_bytes() for p in tmp_path.glob("hub.db*"))
    assert b"laundry" not in on_disk and b"apples" not in on_disk
    second = Hub(tmp_path / "hub.db")
    try:
        assert second.parts.lists.items("todo.chores") == [
            {"item": "laundry", "done": True},
            {"item": "dishes", "done": False},
        ]
        assert second.say("what's on my shopping list") == "Shopping list: apples."
        assert second.say("read my chores list") == "Chores: dishes."
        assert second.say("购物清单上有什么") == "购物清单上有：apples。"
        assert second.say("delete dishes from my chores list") == "Removed dishes"
    finally:
        second.close()


def test_weather_from_the_last_known_state_says_how_old(hub: Hub) -> None:
    assert "no weather entity" in hub.say("what's the weather")
    hub.registry.upsert(
        Entity(
            entity_id="weather.home",
            name="Home",
            state={"state": "rainy", "temperature": 8, "temperature_unit": "°C"},
            last_changed=time.time() - 3 * 3600,
        )
    )
    assert hub.say("what's the weather") == "8 °C and raining (as of 3 hours ago)"
    assert hub.say("天气怎么样") == "现在8°C，有雨（3小时前的数据）"


def test_broadcast_goes_to_mqtt(hub: Hub) -> None:
    assert hub.say("broadcast that dinner is ready") == "Done"
    (sent,) = hub.events("hubagent/notify/broadcast")
    assert sent["message"] == "dinner is ready"


def test_nevermind_and_media_without_a_searchable_player(hub: Hub) -> None:
    assert hub.say("nevermind") == ""
    assert "can't find a media player" in hub.say("play the song Bohemian Rhapsody in the kitchen")


def test_relative_volume_on_a_named_player_from_its_current_volume(hub: Hub) -> None:
    hub.registry.upsert(
        Entity(
            entity_id="media_player.tv",
            name="TV",
            area="living_room",
            attributes={"volume": {"min": 0, "max": 100}},
            state={"state": "playing", "volume": 30},
        )
    )
    reply = hub.agent.handle("turn up the TV volume by 20%")
    assert [a.to_dict() for a in reply.actions] == [
        {"entity": "media_player.tv", "action": "set_volume", "args": {"volume": 50}}
    ]
    reply = hub.agent.handle("TV volume down")
    assert reply.actions[0].args == {"volume": 20}
    hub.registry.update_state("media_player.tv", {"volume": None})
    # Nothing is guessed: the local path refuses with the reason (the model may still try).
    (step,) = hub.agent.cascade.matcher.match("turn up the TV volume").steps
    assert step.error == "unknown_attribute" and "current volume is unknown" in step.detail


class FakeHomeAssistant:
    """The bridge's `call_service`, recorded; search_media finds one track."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict]] = []

    def call_service(self, domain: str, service: str, data: dict, return_response: bool = False):
        self.calls.append((domain, service, data))
        if service == "search_media":
            hit = {"media_content_id": "track/1", "media_content_type": "music"}
            return {data["entity_id"]: {"result": [hit]}}
        return None


def test_home_assistant_todo_lists_and_media_go_through_its_services(tmp_path: Path) -> None:
    ha = FakeHomeAssistant()
    registry = Registry()
    apply_home(registry, load_home(DEMO_HOME))
    for entity_id, name in (
        ("todo.groceries", "Groceries"),
        ("media_player.kitchen", "Kitchen speaker"),
    ):
        registry.upsert(
            Entity(entity_id=entity_id, name=name, area="kitchen", source="homeassistant")
        )
    store = Store(tmp_path / "hub.db")
    parts = build(registry, store, None, ha=ha)
    matchers = LocalMatchers(registry, ["en"], handled=parts.assistant.intents)
    agent = Agent(
        registry,
        Cascade(matchers, None),
        Policy(PolicyConfig(), registry),
        None,
        store,
        assist=parts.assistant,
    )
    try:
        assert agent.handle("add apples to my groceries list").text == "Added apples"
        assert (
            agent.handle("play the song Bohemian Rhapsody in the kitchen").text == "Playing media"
        )
    finally:
        store.close()
    assert ha.calls[0] == ("todo", "add_item", {"entity_id": "todo.groceries", "item": "apples"})
    assert [c[1] for c in ha.calls[1:]] == ["search_media", "play_media"]
    assert ha.calls[2][2]["media_content_id"] == "track/1"
    assert parts.lists.items("todo.shopping_list") == []  # nothing kept locally


def test_satellites_map_to_areas_and_the_config_wins() -> None:
    from hubagent.assist.satellites import Satellites

    registry = Registry()
    apply_home(registry, load_home(DEMO_HOME))
    satellites = Satellites({"sat-1": "Kitchen"})
    satellites.learn({"sat-1": "Office", "sat-2": "study", "sat-3": "Attic"})
    assert satellites.area_id(registry, "sat-1", None) == "kitchen"
    assert satellites.area_id(registry, "sat-2", None) == "office"  # by alias
    assert satellites.area_id(registry, "sat-3", None) is None  # no such area here
    assert satellites.area_id(registry, "sat-1", "bedroom") == "bedroom"  # what was said wins


def test_a_timer_as_one_command_of_several(hub: Hub) -> None:
    reply = hub.agent.handle("turn on the kitchen light and set a timer for 5 minutes")
    assert [a.entity for a in reply.actions] == ["light.kitchen_ceiling"]
    assert reply.text.startswith("Timer set for 5 minutes")
    assert [t.total_seconds for t in hub.parts.timers.timers()] == [300]


def test_weather_from_an_outdoor_temperature_sensor(hub: Hub) -> None:
    hub.registry.upsert(
        Entity(
            entity_id="sensor.outdoor_temperature",
            name="Outdoor temperature",
            device_class="temperature",
            state={"state": 12.5, "unit_of_measurement": "°C"},
        )
    )
    assert hub.say("what's the weather") == "12.5 °C"
