"""The HTTP API over real TCP against a hub on a real TLS mosquitto with the simulated demo
home: token auth (generated into a 0600 file, never logged), a conversation that reaches the
device, follow-ups, the entity list, direct actions through policy, clear 400s, OpenAPI."""

from __future__ import annotations

import asyncio
import json
import logging
import stat
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from conftest import BrokerEnv
from demohome import DEMO_HOME, wait_for

from hubagent.app import Hub
from hubagent.config import Config, HttpConfig, LlmConfig, StoreConfig, WyomingConfig
from hubagent.interfaces.http import TOKEN_FILE, resolve_token
from hubagent.interfaces.server import Interfaces
from hubagent.sim.simulator import Simulator


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture(scope="module")
def served(
    env: BrokerEnv, sim: Simulator, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Hub, Interfaces, list[str]]]:
    store = tmp_path_factory.mktemp("http-store")
    cfg = Config(
        homes=(str(DEMO_HOME),),
        mqtt=env.mqtt_config(client_id="hubagent-http"),
        llm=LlmConfig(backend="none"),
        store=StoreConfig(path=str(store / "hub.db"), encryption_key="http test passphrase"),
        http=HttpConfig(port=0),  # no token configured: the hub generates one
        wyoming=WyomingConfig(enabled=False),
    )
    hub = Hub(cfg)
    assert hub.start(wait=10)
    wait_for(lambda: len(hub.registry) >= len(sim.devices) and hub.registry.get("light.hallway"))
    records = _Records()
    root = logging.getLogger("hubagent")
    level = root.level
    root.addHandler(records)
    root.setLevel(logging.INFO)
    interfaces = Interfaces(hub)
    try:
        interfaces.start()
        yield hub, interfaces, records.messages
    finally:
        root.removeHandler(records)
        root.setLevel(level)
        interfaces.stop()
        hub.stop()


def call(
    served: tuple[Hub, Interfaces, list[str]],
    method: str,
    path: str,
    *,
    token: str | None = "",
    body: Any = None,
    raw: bytes | None = None,
) -> tuple[int, Any]:
    """One real HTTP request; token "" means the right one, None means none at all."""
    _, interfaces, _ = served
    url = interfaces.addresses()["http"] + path
    headers = {}
    if token is not None:
        headers["Authorization"] = f"Bearer {token or interfaces.token}"
    if raw is not None:
        headers["Content-Type"] = "application/json"

    async def go() -> tuple[int, Any]:
        async with aiohttp.ClientSession() as session:
            data = raw if raw is not None else None
            async with session.request(
                method, url, headers=headers, json=body if raw is None else None, data=data
            ) as resp:
                text = await resp.text()
                try:
                    return resp.status, json.loads(text)
                except json.JSONDecodeError:
                    return resp.status, text

    return asyncio.run(go())


def test_generated_token_is_in_a_private_file_and_never_logged(served) -> None:
    hub, interfaces, messages = served
    assert interfaces.token_file is not None
    path = Path(interfaces.token_file)
    assert path.name == TOKEN_FILE and path.parent == Path(hub.cfg.store.path).parent
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().strip() == interfaces.token and len(interfaces.token) >= 32
    assert any(str(path) in m for m in messages)
    assert not any(interfaces.token in m for m in messages)
    assert interfaces.addresses()["http"].startswith("http://127.0.0.1:")


def test_resolve_token_reuses_the_file_and_prefers_the_configured_one(tmp_path: Path) -> None:
    token, path = resolve_token(None, tmp_path / "state")
    assert path is not None and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert resolve_token(None, tmp_path / "state") == (token, path)
    assert resolve_token("configured-secret", tmp_path / "state") == ("configured-secret", None)


def test_calls_without_or_with_a_wrong_token_are_refused(served) -> None:
    body = {"text": "turn on the hall light"}
    status, answer = call(served, "POST", "/api/conversation", token=None, body=body)
    assert status == 401 and "token" in answer["error"]
    status, _ = call(served, "POST", "/api/conversation", token="wrong", body=body)
    assert status == 401
    status, _ = call(served, "GET", "/api/entities", token="wrong")
    assert status == 401
    status, health = call(served, "GET", "/api/health", token=None)
    assert status == 200 and health["mqtt_connected"] is True and health["entities"] >= 25


def test_conversation_reaches_the_device(served, sim: Simulator) -> None:
    hub = served[0]
    sim.set_device_state("light.hallway", {"state": "OFF"})
    wait_for(lambda: hub.registry.get("light.hallway").state.get("state") == "off")
    before = len(sim.received)
    status, answer = call(
        served, "POST", "/api/conversation", body={"text": "turn on the hall light"}
    )
    assert status == 200, answer
    assert answer["actions"] == [{"entity": "light.hallway", "action": "turn_on", "args": {}}]
    assert answer["path"] == "local" and answer["refused"] == [] and answer["conversation_id"]
    assert sim.wait_received(before + 1)
    assert any(t == "home/hallway/set" for t, _ in sim.received[before:])
    wait_for(lambda: sim.device("light.hallway").ha_state().get("state") == "on")


def test_conversation_follow_ups_use_the_conversation_id(served, sim: Simulator) -> None:
    status, first = call(
        served, "POST", "/api/conversation", body={"text": "turn on the living room lights"}
    )
    assert status == 200 and first["actions"]
    cid = first["conversation_id"]
    status, second = call(
        served,
        "POST",
        "/api/conversation",
        body={"text": "and the kitchen too", "conversation_id": cid},
    )
    assert status == 200 and second["conversation_id"] == cid
    entities = {a["entity"] for a in second["actions"]}
    assert entities and all(e.startswith("light.") for e in entities)
    assert "light.kitchen_ceiling" in entities
    assert {a["action"] for a in second["actions"]} == {"turn_on"}
    status, third = call(
        served, "POST", "/api/conversation", body={"text": "turn them off", "conversation_id": cid}
    )
    assert status == 200
    assert {a["entity"] for a in third["actions"]} == entities
    assert {a["action"] for a in third["actions"]} == {"turn_off"}
    wait_for(lambda: sim.device("light.kitchen_ceiling").ha_state().get("state") == "off")
    # The context is kept encrypted at rest.
    raw = served[0].store.query("SELECT data FROM context WHERE conversation_id = ?", (cid,))
    assert raw and b"turn" not in (
        raw[0][0] if isinstance(raw[0][0], bytes) else raw[0][0].encode()
    )
    # Without the conversation id the same words mean nothing.
    status, alone = call(served, "POST", "/api/conversation", body={"text": "turn them off"})
    assert status == 200 and alone["actions"] == []


def test_which_one_is_asked_and_the_answer_acts(served, sim: Simulator) -> None:
    status, asked = call(served, "POST", "/api/conversation", body={"text": "turn on the lamp"})
    assert status == 200 and asked["actions"] == []
    assert asked["reply"].startswith("Which one: ") and "Desk lamp (Office)" in asked["reply"]
    cid = asked["conversation_id"]
    status, answered = call(
        served,
        "POST",
        "/api/conversation",
        body={"text": "the one in the office", "conversation_id": cid},
    )
    assert status == 200
    assert [(a["entity"], a["action"]) for a in answered["actions"]] == [
        ("light.desk_lamp", "turn_on")
    ]
    wait_for(lambda: sim.device("light.desk_lamp").ha_state().get("state") == "on")
    # An answer naming none of the choices is a new request, not a guess among them.
    status, again = call(served, "POST", "/api/conversation", body={"text": "turn on the lamp"})
    assert again["reply"].startswith("Which one: ")
    status, other = call(
        served,
        "POST",
        "/api/conversation",
        body={"text": "turn off the coffee machine", "conversation_id": again["conversation_id"]},
    )
    assert status == 200
    assert [(a["entity"], a["action"]) for a in other["actions"]] == [
        ("switch.coffee_machine", "turn_off")
    ]


def test_entities_listing(served) -> None:
    status, entities = call(served, "GET", "/api/entities")
    assert status == 200
    by_id = {e["id"]: e for e in entities}
    light = by_id["light.kitchen_ceiling"]
    assert light["area"] == "kitchen" and "big light" in light["aliases"]
    assert "turn_on" in light["verbs"] and "set_brightness" in light["verbs"]
    assert light["available"] is True and "state" in light["state"]
    status, kitchen = call(served, "GET", "/api/entities?area=cooking%20area")
    assert status == 200 and kitchen and {e["area"] for e in kitchen} == {"kitchen"}
    status, answer = call(served, "GET", "/api/entities?area=moon")
    assert status == 400 and "moon" in answer["error"]


def test_direct_actions_go_through_policy(served, sim: Simulator) -> None:
    action = {"entity": "light.desk_lamp", "action": "set_brightness", "args": {"brightness": 30}}
    status, answer = call(served, "POST", "/api/actions", body={"actions": [action]})
    assert status == 200 and answer["actions"] == [action]
    wait_for(lambda: sim.device("light.desk_lamp").ha_state().get("brightness") == 30)
    status, answer = call(
        served,
        "POST",
        "/api/actions",
        body={"actions": [{"entity": "lock.front_door", "action": "unlock"}]},
    )
    assert status == 200 and answer["needs_confirmation"] and answer["actions"] == []
    status, answer = call(
        served,
        "POST",
        "/api/actions",
        body={"actions": [{"entity": "light.nowhere", "action": "turn_on"}]},
    )
    assert status == 200 and answer["actions"] == [] and answer["refused"]


@pytest.mark.parametrize(
    ("path", "raw", "message"),
    [
        ("/api/conversation", b"{not json", "not valid JSON"),
        ("/api/conversation", b"[1, 2]", "JSON object"),
        ("/api/conversation", b"{}", "'text' is required"),
        ("/api/conversation", b'{"text": "hi", "area": "moon"}', "unknown area"),
        ("/api/conversation", b'{"text": "hi", "language": "de"}', "language"),
        ("/api/conversation", b'{"text": "hi", "conversation_id": "' + b"x" * 200 + b'"}', "128"),
        ("/api/actions", b'{"actions": []}', "non-empty list"),
        ("/api/actions", b'{"actions": [{"entity": 3}]}', "actions[0]"),
    ],
)
def test_bad_requests_get_a_clear_400(served, path: str, raw: bytes, message: str) -> None:
    status, answer = call(served, "POST", path, raw=raw)
    assert status == 400 and message in answer["error"], answer
    assert "Traceback" not in json.dumps(answer)


def test_oversized_body_is_refused(served) -> None:
    status, answer = call(
        served, "POST", "/api/conversation", raw=b'{"text": "' + b"a" * 70_000 + b'"}'
    )
    assert status == 413 and "larger" in answer["error"]


def test_parallel_requests_are_all_answered(served) -> None:
    _, interfaces, _ = served
    url = interfaces.addresses()["http"] + "/api/conversation"
    headers = {"Authorization": f"Bearer {interfaces.token}"}
    texts = ["what is the temperature in the kitchen", "is the front door locked"] * 10

    async def go() -> list[tuple[int, dict[str, Any]]]:
        async with aiohttp.ClientSession(headers=headers) as session:

            async def one(text: str) -> tuple[int, dict[str, Any]]:
                async with session.post(url, json={"text": text}) as resp:
                    return resp.status, await resp.json()

            return await asyncio.gather(*(one(t) for t in texts))

    answers = asyncio.run(go())
    assert [status for status, _ in answers] == [200] * len(texts)
    assert all(body["reply"] for _, body in answers)
    assert len({body["conversation_id"] for _, body in answers}) == len(texts)


def test_unknown_path_is_a_json_404(served) -> None:
    status, answer = call(served, "GET", "/api/nothing")
    assert status == 404 and "error" in answer


def test_openapi_document(served) -> None:
    status, doc = call(served, "GET", "/api/openapi.json", token=None)
    assert status == 200 and doc["openapi"].startswith("3.1")
    assert {"/api/conversation", "/api/entities", "/api/health", "/api/actions"} <= set(
        doc["paths"]
    )
    assert {"Reply", "Action", "Entity"} <= set(doc["components"]["schemas"])
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    # Every $ref points at something the document defines.
    refs = [m for m in json.dumps(doc).split('"$ref": "')[1:]]
    for ref in refs:
        _, section, name = ref.split('"', 1)[0].lstrip("#/").split("/")
        assert name in doc["components"][section]


def test_configured_token_and_port_conflict(served, env: BrokerEnv, tmp_path: Path) -> None:
    hub, interfaces, _ = served
    port = int(interfaces.addresses()["http"].rsplit(":", 1)[1])
    clash = replace(
        hub.cfg, http=HttpConfig(port=port, token="x"), store=StoreConfig(path=str(tmp_path / "d"))
    )
    other = Hub(clash)
    try:
        with pytest.raises(OSError):
            Interfaces(other).start()
    finally:
        other.stop()
