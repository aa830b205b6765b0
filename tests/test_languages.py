"""One hub, several languages: BCP 47 tag matching, replies per language, and Chinese over
HTTP, Wyoming and the MQTT request topic next to English, against a hub on a real TLS mosquitto with the demo home
(plus a home file that gives some of its devices Chinese names)."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import paho.mqtt.client as mqtt
import pytest
from conftest import BrokerEnv
from demohome import DEMO_HOME, wait_for
from paho.mqtt.enums import CallbackAPIVersion
from wyoming.asr import Transcript
from wyoming.client import AsyncTcpClient
from wyoming.event import Event
from wyoming.handle import Handled, NotHandled
from wyoming.info import Describe, Info

from hubagent.act.policy import Decision
from hubagent.act.responses import Outcome, decision_reason, reply_text, step_reason
from hubagent.app import Hub
from hubagent.config import (
    Config,
    ConfigError,
    HttpConfig,
    LlmConfig,
    StoreConfig,
    WyomingConfig,
    load_config,
)
from hubagent.home.registry import Registry
from hubagent.interfaces.server import Interfaces
from hubagent.language import (
    LanguageError,
    canonical,
    choose,
    detect,
    match,
    reset_current,
    set_current,
)
from hubagent.sim.simulator import Simulator
from hubagent.types import Action, Area, Entity, Step
from hubagent.understand.matcher import LocalMatchers

ZH_NAMES = Path(__file__).parent / "fixtures" / "demo-home-zh.yaml"
SERVED = ("en", "zh-hans")


@pytest.mark.parametrize("tag", ["zh", "zh-CN", "zh-Hans", "zh-hans", "zh_CN", "ZH-hans-CN"])
def test_simplified_chinese_tags_are_one_language(tag: str) -> None:
    assert canonical(tag) == "zh-hans"
    assert match(tag, SERVED) == "zh-hans"


def test_tag_matching() -> None:
    assert match("en-GB", SERVED) == "en" and match("EN_us", SERVED) == "en"
    assert match("zh-TW", SERVED) is None  # Traditional is another language
    assert match("de", SERVED) is None and match("not a tag!", SERVED) is None
    assert canonical("pt-BR") == "pt-br"  # the templates tell pt-BR and pt apart
    assert match("pt-BR", ("pt",)) == "pt"  # lookup falls back to the primary subtag
    with pytest.raises(LanguageError, match="not served"):
        choose("de", "hallo", SERVED)
    with pytest.raises(LanguageError, match="not a language tag"):
        canonical("en us")


def test_detection_from_the_script() -> None:
    assert detect("打开厨房的灯", SERVED) == "zh-hans"
    assert detect("帮我把 living room 的 blinds 关上", SERVED) == "zh-hans"
    assert detect("turn on the kitchen light", SERVED) == "en"
    assert detect("打开灯", ("en",)) == "en"  # not served: the hub's language
    assert choose(None, "关灯", ("zh-hans", "en")) == "zh-hans"


def test_config_languages(tmp_path: Path) -> None:
    path = tmp_path / "hub.yaml"
    path.write_text("languages: [en, zh-CN, zh_Hans]\n")
    assert load_config(path).served_languages == SERVED
    path.write_text("language: zh\n")
    assert load_config(path).served_languages == ("zh-hans",)
    path.write_text("languages: [en, tlh]\n")
    with pytest.raises(ConfigError, match="no intent sentences for language 'tlh'"):
        load_config(path)


def test_replies_are_worded_per_language() -> None:
    done = Outcome(done=[(Action("light.k", "set_brightness", {"brightness": 40.0}), "厨房灯")])
    assert reply_text(done, "zh-CN") == "已把厨房灯的亮度调到40%。"
    en = Outcome(done=[(Action("light.k", "set_brightness", {"brightness": 40.0}), "Kitchen")])
    assert reply_text(en, "en") == "Set the brightness of Kitchen to 40%."
    assert reply_text(Outcome(), "zh") == "抱歉，我没听懂。"
    which = Step("打开灯", error="unknown_device", detail="which one? A (Kitchen), B or C")
    assert step_reason(which, "zh-hans") == "哪一个：A (Kitchen)、B还是C？"
    assert step_reason(which, "en") == "Which one: A (Kitchen), B or C?"
    unlock = Decision("needs_confirmation", Action("lock.f", "unlock"), "needs_confirmation", "x")
    assert decision_reason(unlock, "前门", "zh-hans") == "要解锁前门吗？请说“是”确认。"
    assert decision_reason(unlock, "Front door", "en") == "x"  # the policy's own sentence


def test_one_matcher_per_served_language_chosen_by_the_request() -> None:
    registry = Registry()
    registry.load(
        [],
        [Area("garage", "Garage", aliases=("车库",))],
        [Entity("light.garage", "Garage light", area="garage", aliases=("车库灯",))],
    )
    matchers = LocalMatchers(registry, ["en", "zh-CN"])
    assert set(matchers.by_language) == set(SERVED)
    assert matchers.match("打开车库灯") is None  # outside a request: the first language
    token = set_current("zh-hans")
    try:
        found = matchers.match("打开车库灯")
    finally:
        reset_current(token)
    assert found is not None and found.actions == [Action("light.garage", "turn_on")]
    assert matchers.match("turn on the garage light").actions == [Action("light.garage", "turn_on")]


# -- a hub serving English and Chinese, over HTTP and Wyoming --------------------------------
@pytest.fixture(scope="module")
def served(
    env: BrokerEnv, sim: Simulator, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Hub, Interfaces]]:
    store = tmp_path_factory.mktemp("languages-store")
    cfg = Config(
        languages=SERVED,
        homes=(str(DEMO_HOME), str(ZH_NAMES)),
        mqtt=env.mqtt_config(client_id="hubagent-languages"),
        llm=LlmConfig(backend="none"),
        store=StoreConfig(path=str(store / "hub.db"), encryption_key="languages test"),
        http=HttpConfig(port=0, token="languages-test-token"),
        wyoming=WyomingConfig(port=0),
    )
    hub = Hub(cfg)
    assert hub.start(wait=10)
    wait_for(lambda: len(hub.registry) >= len(sim.devices) and hub.registry.get("light.garage"))
    interfaces = Interfaces(hub)
    try:
        interfaces.start()
        yield hub, interfaces
    finally:
        interfaces.stop()
        hub.stop()


def converse(served: tuple[Hub, Interfaces], body: dict[str, Any]) -> tuple[int, Any]:
    url = served[1].addresses()["http"] + "/api/conversation"
    headers = {"Authorization": "Bearer languages-test-token"}

    async def go() -> tuple[int, Any]:
        async with (
            aiohttp.ClientSession() as session,
            session.post(url, headers=headers, json=body) as resp,
        ):
            return resp.status, json.loads(await resp.text())

    return asyncio.run(go())


def exchange(served: tuple[Hub, Interfaces], *events: Event) -> list[Event]:
    host, port = served[1].addresses()["wyoming"].removeprefix("tcp://").rsplit(":", 1)

    async def go() -> list[Event]:
        answers = []
        async with AsyncTcpClient(host, int(port), connect_timeout=5, read_timeout=30) as client:
            for event in events:
                await client.write_event(event)
                answer = await client.read_event()
                assert answer is not None
                answers.append(answer)
        return answers

    return asyncio.run(go())


def _garage_light(served: tuple[Hub, Interfaces], sim: Simulator, state: str) -> None:
    sim.set_device_state("light.garage", {"state": state.upper()})
    wait_for(lambda: served[0].registry.get("light.garage").state.get("state") == state)


@pytest.mark.parametrize("tag", ["zh-hans", "zh-CN", "zh_CN", "zh", None])
def test_http_chinese_request_gets_a_chinese_reply(served, sim: Simulator, tag) -> None:
    _garage_light(served, sim, "off")
    body = {"text": "打开车库灯"} | ({"language": tag} if tag else {})
    status, answer = converse(served, body)
    assert status == 200, answer
    assert answer["actions"] == [{"entity": "light.garage", "action": "turn_on", "args": {}}]
    assert answer["reply"] == "已打开车库灯。"
    wait_for(lambda: sim.device("light.garage").ha_state().get("state") == "on")


def test_http_english_on_the_same_hub_and_unserved_languages(served, sim: Simulator) -> None:
    _garage_light(served, sim, "on")
    status, answer = converse(served, {"text": "turn off the garage light", "language": "en-US"})
    assert status == 200 and answer["reply"] == "Turned off Garage light."
    status, answer = converse(served, {"text": "Licht an", "language": "de"})
    assert status == 400 and answer["error"] == "language 'de' is not served (hub: en, zh-hans)"


def test_http_chinese_confirmation_and_refusal(served) -> None:
    status, answer = converse(served, {"text": "打开车库门", "language": "zh-hans"})
    assert status == 200 and answer["needs_confirmation"] and not answer["actions"]
    assert answer["reply"] == "要打开车库门吗？请说“是”确认。"
    cid = answer["conversation_id"]
    status, answer = converse(served, {"text": "不要", "conversation_id": cid})
    assert status == 200 and answer["reply"] == "好的，已取消。"
    status, answer = converse(served, {"text": "打开烤箱", "language": "zh-hans"})
    assert status == 200 and not answer["actions"]
    assert answer["reply"].startswith("没有执行") and "Not done" not in answer["reply"]


def test_wyoming_announces_both_languages(served) -> None:
    (answer,) = exchange(served, Describe().event())
    assert Info.from_event(answer).handle[0].models[0].languages == list(SERVED)


def test_wyoming_chinese_transcript_is_handled_in_chinese(served, sim: Simulator) -> None:
    _garage_light(served, sim, "on")
    (answer,) = exchange(served, Transcript(text="关闭车库灯", language="zh-CN").event())
    assert Handled.is_type(answer.type), answer
    assert Handled.from_event(answer).text == "已关闭车库灯。"
    wait_for(lambda: sim.device("light.garage").ha_state().get("state") == "off")
    (answer,) = exchange(served, Transcript(text="turn on the garage light", language="en").event())
    assert Handled.from_event(answer).text == "Turned on Garage light."
    (answer,) = exchange(served, Transcript(text="Licht an", language="de").event())
    assert NotHandled.is_type(answer.type)
    assert NotHandled.from_event(answer).text == "I only speak en, zh-hans."


def test_mqtt_request_language_field(served, env: BrokerEnv, sim: Simulator) -> None:
    _garage_light(served, sim, "off")
    cfg = env.mqtt_config(client_id="requester-languages")
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=cfg.client_id)
    client.tls_set(ca_certs=cfg.ca_file)
    client.username_pw_set(cfg.username, cfg.password)
    replies: dict[str, dict[str, Any]] = {}
    client.on_message = lambda _c, _u, m: replies.setdefault(
        m.topic.rsplit("/", 1)[-1], json.loads(m.payload)
    )
    subscribed = threading.Event()
    client.on_subscribe = lambda *_: subscribed.set()
    client.connect(cfg.host, cfg.port)
    client.loop_start()
    try:
        wait_for(client.is_connected)
        client.subscribe("hubagent/response/+", qos=1)
        assert subscribed.wait(5)
        for request in (
            {"id": "zh1", "text": "打开车库灯", "language": "zh-Hans"},
            {"id": "de1", "text": "Licht an", "language": "de"},
        ):
            client.publish("hubagent/request", json.dumps(request), qos=1).wait_for_publish(5)
        wait_for(lambda: {"zh1", "de1"} <= set(replies))
    finally:
        client.disconnect()
        client.loop_stop()
    assert replies["zh1"]["reply"] == "已打开车库灯。"
    assert replies["de1"]["error"] == "language 'de' is not served (hub: en, zh-hans)"
    wait_for(lambda: sim.device("light.garage").ha_state().get("state") == "on")
