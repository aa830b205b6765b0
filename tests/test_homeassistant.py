"""Home Assistant bridge: Action -> service mapping, entity import, service calls.

The HTTP tests replay RECORDED Home Assistant REST responses (tests/fixtures/homeassistant/
recorded_*.json, HA 2025.x shapes) from a local aiohttp server, so the real client library
(`homeassistant-api`) and the bridge's parsing run end to end. A real HA core could not run
on the build machine; the replay server only serves recorded data and logs service calls.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("homeassistant_api")
from aiohttp import web  # noqa: E402

from hubagent.home.registry import Registry  # noqa: E402
from hubagent.interfaces import homeassistant as ha  # noqa: E402
from hubagent.interfaces.ha_client import (  # noqa: E402
    ServiceMappingError,
    action_to_service,
    state_to_entity,
)
from hubagent.types import Action, Entity  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures" / "homeassistant"
TOKEN = "recorded-fixture-token"


# -- pure mapping ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("action", "expected"),
    [
        (Action("light.a", "turn_on"), ("light", "turn_on", {})),
        (
            Action("light.a", "set_brightness", {"brightness": 40}),
            ("light", "turn_on", {"brightness_pct": 40}),
        ),
        (
            Action("light.a", "set", {"attribute": "brightness", "value": "55"}),
            ("light", "turn_on", {"brightness_pct": 55}),
        ),
        (
            Action("light.a", "set_color", {"color": "Warm White"}),
            ("light", "turn_on", {"color_name": "warmwhite"}),
        ),
        (
            Action("light.a", "set_color", {"color": [255, 0, 0]}),
            ("light", "turn_on", {"rgb_color": [255, 0, 0]}),
        ),
        (
            Action("light.a", "set_color_temp", {"color_temp": 2700}),
            ("light", "turn_on", {"color_temp_kelvin": 2700}),
        ),
        (
            Action("cover.b", "set_position", {"position": 30}),
            ("cover", "set_cover_position", {"position": 30}),
        ),
        (Action("cover.b", "open"), ("cover", "open_cover", {})),
        (Action("cover.b", "stop"), ("cover", "stop_cover", {})),
        (Action("valve.v", "close"), ("valve", "close_valve", {})),
        (
            Action("climate.c", "set_temperature", {"temperature": 21.5}),
            ("climate", "set_temperature", {"temperature": 21.5}),
        ),
        (
            Action("climate.c", "set_hvac_mode", {"hvac_mode": "heat"}),
            ("climate", "set_hvac_mode", {"hvac_mode": "heat"}),
        ),
        (Action("lock.d", "unlock"), ("lock", "unlock", {})),
        (Action("lock.d", "lock", {"code": 1234}), ("lock", "lock", {"code": "1234"})),
        (
            Action("fan.f", "set_percentage", {"percentage": 66}),
            ("fan", "set_percentage", {"percentage": 66}),
        ),
        (
            Action("fan.f", "oscillate", {"oscillating": False}),
            ("fan", "oscillate", {"oscillating": False}),
        ),
        (
            Action("media_player.m", "set_volume", {"volume": 35}),
            ("media_player", "volume_set", {"volume_level": 0.35}),
        ),
        (Action("media_player.m", "next"), ("media_player", "media_next_track", {})),
        (
            Action("media_player.m", "mute", {"mute": True}),
            ("media_player", "volume_mute", {"is_volume_muted": True}),
        ),
        (Action("vacuum.r", "return_to_base"), ("vacuum", "return_to_base", {})),
        (Action("scene.s", "activate"), ("scene", "turn_on", {})),
        (Action("button.b", "press"), ("button", "press", {})),
        (
            Action("select.s", "select_option", {"option": "eco"}),
            ("select", "select_option", {"option": "eco"}),
        ),
        (Action("number.n", "set_value", {"value": "7"}), ("number", "set_value", {"value": 7})),
        (
            Action("alarm_control_panel.a", "arm_away"),
            ("alarm_control_panel", "alarm_arm_away", {}),
        ),
        (
            Action("humidifier.h", "set_humidity", {"humidity": 45}),
            ("humidifier", "set_humidity", {"humidity": 45}),
        ),
    ],
)
def test_action_to_service(action: Action, expected: tuple[str, str, dict[str, Any]]) -> None:
    domain, service, data = expected
    assert action_to_service(action) == (domain, service, {"entity_id": action.entity, **data})


@pytest.mark.parametrize(
    "action",
    [
        Action("light.a", "get_state"),
        Action("sensor.t", "turn_on"),
        Action("light.a", "open"),
        Action("light.a", "set_brightness", {}),
        Action("light.a", "set_brightness", {"brightness": "bright"}),
        Action("cover.b", "set", {"attribute": "nonsense", "value": 1}),
    ],
)
def test_action_to_service_refuses_clearly(action: Action) -> None:
    with pytest.raises(ServiceMappingError, match=r"\S"):
        action_to_service(action)


def test_state_to_entity_capabilities_and_state() -> None:
    states = {
        s["entity_id"]: s for s in json.loads((FIXTURES / "recorded_states.json").read_text())
    }
    lamp = state_to_entity(states["light.living_room_lamp"], "living_room")
    assert lamp.source == "homeassistant" and lamp.mqtt == {}
    assert lamp.name == "Living room lamp" and lamp.area == "living_room"
    assert lamp.state["brightness"] == 71  # 180/255
    assert lamp.attributes["color_temp"] == {"min": 2202, "max": 6535, "unit": "K"}
    assert "set_brightness" in lamp.verbs and "set_color" in lamp.verbs
    hall = state_to_entity(states["light.hallway"])
    assert "brightness" not in hall.attributes and "set_brightness" not in hall.verbs
    blinds = state_to_entity(states["cover.bedroom_blinds"])
    assert blinds.state["position"] == 40 and blinds.device_class == "blind"
    assert "set_position" in blinds.verbs
    thermo = state_to_entity(states["climate.living_room_thermostat"])
    assert thermo.attributes["temperature"]["max"] == 35
    assert thermo.attributes["hvac_mode"]["options"] == ["off", "heat", "cool", "auto"]
    speaker = state_to_entity(states["media_player.kitchen_speaker"])
    assert speaker.state["volume"] == 35 and "set_volume" in speaker.verbs
    fan = state_to_entity(states["fan.bedroom_fan"])
    assert {"percentage", "oscillation", "preset_mode"} <= set(fan.attributes)


# -- recorded-response replay server ----------------------------------------------------
class RecordedHomeAssistant:
    """Replays the recorded responses; logs every service call it receives."""

    def __init__(self, port: int = 0) -> None:
        self.calls: list[tuple[str, str, dict[str, Any]]] = []
        self.fail_templates = False
        self.states_file = "recorded_states.json"
        self.websocket = True  # HA's WebSocket API (protocol per HA's developer docs)
        self._subscribers: list[tuple[web.WebSocketResponse, int]] = []
        self.template_file = "recorded_template_registry.txt"
        self.port = port
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _auth(self, request: web.Request) -> None:
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            raise web.HTTPUnauthorized(text="401: Unauthorized")

    async def _json(self, request: web.Request) -> web.Response:
        self._auth(request)
        name = {"/api/": "api", "/api/states": "states", "/api/config": "config"}
        name |= {"/api/services": "services"}
        file = f"recorded_{name[request.path]}.json"
        if request.path == "/api/states":
            file = self.states_file
        return web.Response(
            text=(FIXTURES / file).read_text(),
            content_type="application/json",
        )

    async def _template(self, request: web.Request) -> web.Response:
        self._auth(request)
        body = await request.json()
        if self.fail_templates or "area_id(" not in body.get("template", ""):
            return web.Response(status=400, text="Error rendering template: UndefinedError")
        text = (FIXTURES / self.template_file).read_text().strip()
        return web.Response(text=text, content_type="text/plain")

    async def _service(self, request: web.Request) -> web.Response:
        self._auth(request)
        domain, service = request.match_info["domain"], request.match_info["service"]
        self.calls.append((domain, service, await request.json()))
        if (domain, service) == ("light", "turn_on"):
            text = (FIXTURES / "recorded_service_light_turn_on.json").read_text()
        elif domain == "lock":
            return web.Response(status=500, text="500 Internal Server Error: lock jammed")
        else:
            text = "[]"
        return web.Response(text=text, content_type="application/json")

    async def _ws(self, request: web.Request) -> web.StreamResponse:
        """HA's WebSocket handshake, the commands the bridge sends, and state_changed events.
        Written from HA's WebSocket API documentation (no recording of it exists here)."""
        if not self.websocket:
            raise web.HTTPNotFound()
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_json({"type": "auth_required", "ha_version": "2025.4.4"})
        auth = await ws.receive_json()
        if auth.get("access_token") != TOKEN:
            await ws.send_json({"type": "auth_invalid", "message": "Invalid access token"})
            await ws.close()
            return ws
        await ws.send_json({"type": "auth_ok", "ha_version": "2025.4.4"})
        results = {"config/entity_registry/get_entries": {}, "config/area_registry/list": []}
        results["config/floor_registry/list"] = []
        async for msg in ws:
            if msg.type != web.WSMsgType.TEXT:
                break
            data = json.loads(msg.data)
            if data.get("type") == "subscribe_events":
                self._subscribers.append((ws, data["id"]))
            result = results.get(data.get("type"))
            await ws.send_json(
                {"id": data["id"], "type": "result", "success": True, "result": result}
            )
        self._subscribers = [(w, i) for w, i in self._subscribers if w is not ws]
        return ws

    def push_state(self, new_state: dict[str, Any]) -> None:
        """A `state_changed` event to every subscriber (as HA sends one)."""

        async def send() -> None:
            for ws, sub_id in list(self._subscribers):
                event = {
                    "event_type": "state_changed",
                    "data": {"entity_id": new_state["entity_id"], "new_state": new_state},
                    "origin": "LOCAL",
                    "time_fired": "2026-11-29T10:00:00.000000+00:00",
                    "context": None,
                }
                await ws.send_json({"id": sub_id, "type": "event", "event": event})

        asyncio.run_coroutine_threadsafe(send(), self._loop).result(10)

    @property
    def subscribed(self) -> bool:
        return bool(self._subscribers)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_get("/api/websocket", self._ws)
        for path in ("/api/", "/api/states", "/api/config", "/api/services"):
            app.router.add_get(path, self._json)
        app.router.add_post("/api/template", self._template)
        app.router.add_post("/api/services/{domain}/{service}", self._service)
        self._runner = web.AppRunner(app)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        self._loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    def start(self) -> RecordedHomeAssistant:
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture(scope="module")
def recorded_ha():
    server = RecordedHomeAssistant().start()
    yield server
    server.stop()


def _cfg(url: str, token: str = TOKEN, **extra: Any) -> argparse.Namespace:
    return argparse.Namespace(url=url, token=token, verify_ssl=True, import_domains=(), **extra)


def test_import_entities_with_areas_and_floors(recorded_ha: RecordedHomeAssistant) -> None:
    recorded_ha.fail_templates = False
    registry = Registry()
    registry.upsert(Entity("switch.coffee_machine", "Coffee machine", source="discovery"))
    count = ha.HomeAssistantBridge(_cfg(recorded_ha.url), registry).import_entities()
    # 11 controllable/readable entities; person/sun/zone are not imported; the switch that
    # MQTT discovery already owns stays with discovery.
    assert count == 10
    assert registry.get("switch.coffee_machine").source == "discovery"
    assert registry.get("person.alex") is None and registry.get("sun.sun") is None
    lamp = registry.get("light.living_room_lamp")
    assert lamp.source == "homeassistant" and lamp.area == "living_room"
    assert registry.area("living_room").name == "Living Room"
    assert registry.area("bedroom").floor == "first_floor"
    assert {f.id for f in registry.floors} == {"ground_floor", "first_floor"}
    assert [e.entity_id for e in registry.in_floor("first_floor")] == [
        "cover.bedroom_blinds",
        "fan.bedroom_fan",
    ]
    assert registry.find("living room lamp")[0].entity_id == "light.living_room_lamp"


def test_import_without_template_support_still_imports(recorded_ha: RecordedHomeAssistant) -> None:
    recorded_ha.fail_templates = True
    try:
        registry = Registry()
        count = ha.HomeAssistantBridge(_cfg(recorded_ha.url), registry).import_entities()
    finally:
        recorded_ha.fail_templates = False
    assert count == 11
    assert registry.get("light.living_room_lamp").area is None and registry.areas == []


def test_import_real_recorded_demo_home(recorded_ha: RecordedHomeAssistant) -> None:
    """Responses recorded from a real HA 2025.4.4 core running the `demo` integration."""
    recorded_ha.states_file = "real_2025.4.4_demo_states.json"
    recorded_ha.template_file = "real_2025.4.4_demo_template_registry.txt"
    try:
        registry = Registry()
        count = ha.HomeAssistantBridge(_cfg(recorded_ha.url), registry).import_entities()
    finally:
        recorded_ha.states_file = "recorded_states.json"
        recorded_ha.template_file = "recorded_template_registry.txt"
    assert count == 79  # with the two weather entities the voice assistant answers from
    south = registry.get("weather.demo_weather_south").state
    assert (south["state"], south["temperature"], south["temperature_unit"]) == (
        "sunny",
        21.6,
        "°C",
    )
    assert registry.get("light.ceiling_lights").area == "living_room"
    assert registry.area("living_room").floor == "ground_floor"
    assert registry.get("climate.hvac").attributes["temperature"]["max"] == 35
    assert "set_position" in registry.get("cover.hall_window").verbs
    assert "set_position" not in registry.get("cover.kitchen_window").verbs  # features 11
    assert "set_percentage" in registry.get("fan.living_room_fan").verbs
    assert registry.get("lock.front_door").state["state"] == "locked"
    assert registry.get("sensor.outside_temperature").state["unit_of_measurement"] == "°C"
    # Everything imported maps back to services for its own verbs.
    for entity in registry.all():
        for verb in entity.verbs:
            if verb in ("turn_on", "turn_off", "toggle", "open", "close", "stop", "press"):
                assert action_to_service(Action(entity.entity_id, verb))[0] == entity.domain


def test_execute_calls_service_and_updates_state(recorded_ha: RecordedHomeAssistant) -> None:
    registry = Registry()
    bridge = ha.HomeAssistantBridge(_cfg(recorded_ha.url), registry)
    bridge.import_entities()
    recorded_ha.calls.clear()
    bridge.execute(Action("light.living_room_lamp", "set_brightness", {"brightness": 50}))
    bridge.execute(Action("cover.bedroom_blinds", "set_position", {"position": 25}))
    assert recorded_ha.calls == [
        ("light", "turn_on", {"entity_id": "light.living_room_lamp", "brightness_pct": 50}),
        ("cover", "set_cover_position", {"entity_id": "cover.bedroom_blinds", "position": 25}),
    ]
    # HA's answer (the changed states) updated the registry: 128/255 -> 50 %.
    assert registry.get("light.living_room_lamp").state["brightness"] == 50


def test_refresh_states_reverts_to_home_assistant(recorded_ha: RecordedHomeAssistant) -> None:
    registry = Registry()
    bridge = ha.HomeAssistantBridge(_cfg(recorded_ha.url), registry)
    bridge.import_entities()
    assert bridge.refresh_states() == 0  # nothing changed since the import
    registry.update_state("cover.bedroom_blinds", {"position": 90})
    assert bridge.refresh_states() == 1
    assert registry.get("cover.bedroom_blinds").state["position"] == 40


def test_execute_errors_are_clear(recorded_ha: RecordedHomeAssistant) -> None:
    bridge = ha.HomeAssistantBridge(_cfg(recorded_ha.url), Registry())
    with pytest.raises(ha.HomeAssistantError, match="lock.unlock failed"):
        bridge.execute(Action("lock.front_door", "unlock"))
    with pytest.raises(ha.HomeAssistantError, match="does not support"):
        bridge.execute(Action("sensor.living_room_temperature", "turn_on"))
    bad = ha.HomeAssistantBridge(_cfg(recorded_ha.url, token="wrong"), Registry())
    with pytest.raises(ha.HomeAssistantError, match="GET /api/states failed"):
        bad.import_entities()
    down = ha.HomeAssistantBridge(_cfg("http://127.0.0.1:9", timeout_s=2), Registry())
    with pytest.raises(ha.HomeAssistantError, match="failed"):
        down.execute(Action("light.x", "turn_on"))
    with pytest.raises(ha.HomeAssistantError, match="token"):
        ha.HomeAssistantBridge(_cfg(recorded_ha.url, token=""), Registry())


def test_cli_import_lists_entities(
    recorded_ha: RecordedHomeAssistant, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    monkeypatch.delenv("HUBAGENT_HA_TOKEN", raising=False)
    parser = argparse.ArgumentParser()
    parser.add_argument("-c", "--config")
    ha.add_arguments(parser)
    args = parser.parse_args(["import", "--url", recorded_ha.url, "--token", TOKEN])
    assert ha.main(args) == 0
    out = capsys.readouterr().out
    assert "would import 11 entities, 4 areas, 2 floors" in out
    assert "cover.bedroom_blinds" in out and "Bedroom" in out
    args = parser.parse_args(["import", "--url", recorded_ha.url, "--token", TOKEN, "--json"])
    assert ha.main(args) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data["entities"]) == 11 and "Kitchen" in data["areas"]
    args = parser.parse_args(["import", "--url", recorded_ha.url, "--token", "nope"])
    assert ha.main(args) == 2
    assert "GET /api/states failed" in capsys.readouterr().err


# -- a real Home Assistant core ---------------------------------------------------------
# Set HUBAGENT_HASS to a `hass` executable (HA >= 2024.4 needs Python >= 3.12, so it lives
# in its own venv: `python3.13 -m venv ha && ha/bin/pip install homeassistant==2025.4.4
# home-assistant-frontend==20250411.0`). The test starts it with the `demo` integration,
# onboards a user for a token and sets a floor, an area and aliases over the WebSocket API.
def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def real_ha(tmp_path_factory: pytest.TempPathFactory):
    import os
    import subprocess
    import time

    import niquests
    from homeassistant_api import WebsocketClient

    hass = os.environ.get("HUBAGENT_HASS")
    if not hass or not Path(hass).exists():
        pytest.skip("no Home Assistant core (set HUBAGENT_HASS to a `hass` executable)")
    config_dir = tmp_path_factory.mktemp("ha-config")
    port = _free_port()
    (config_dir / "configuration.yaml").write_text(
        "homeassistant:\n  name: hubagent test\n  unit_system: metric\n  time_zone: UTC\n"
        "  latitude: 52.37\n  longitude: 4.89\n  elevation: 0\n  country: NL\n"
        f"http:\n  server_host: 127.0.0.1\n  server_port: {port}\n"
        "api:\nonboarding:\ndemo:\n"
    )
    proc = subprocess.Popen(
        [hass, "-c", str(config_dir), "--skip-pip"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                if niquests.get(f"{base}/api/onboarding", timeout=2).status_code == 200:
                    break
            except Exception:  # noqa: BLE001 - not listening yet
                pass
            assert proc.poll() is None, "Home Assistant exited during start-up"
            time.sleep(1)
        user = {"client_id": f"{base}/", "name": "Test", "username": "test"}
        user |= {"password": "hubagent-test-pw", "language": "en"}
        code = niquests.post(f"{base}/api/onboarding/users", json=user, timeout=30).json()
        token = niquests.post(
            f"{base}/auth/token",
            data={
                "grant_type": "authorization_code",
                "code": code["auth_code"],
                "client_id": f"{base}/",
            },
            timeout=30,
        ).json()["access_token"]
        with WebsocketClient(f"ws://127.0.0.1:{port}/api/websocket", token) as ws:
            for msg, data in (
                ("config/floor_registry/create", {"name": "Ground floor", "level": 0}),
                (
                    "config/area_registry/update",
                    {"area_id": "living_room", "floor_id": "ground_floor", "aliases": ["lounge"]},
                ),
                (
                    "config/entity_registry/update",
                    {
                        "entity_id": "light.ceiling_lights",
                        "area_id": "living_room",
                        "aliases": ["big light"],
                    },
                ),
            ):
                assert ws.recv_result(ws.send(msg, **data)).success
        yield argparse.Namespace(url=base, token=token, proc=proc)
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def _ha_state(real_ha: argparse.Namespace, entity_id: str) -> dict[str, Any]:
    import niquests

    headers = {"Authorization": f"Bearer {real_ha.token}"}
    return niquests.get(f"{real_ha.url}/api/states/{entity_id}", headers=headers, timeout=10).json()


def test_real_ha_import(real_ha: argparse.Namespace) -> None:
    registry = Registry()
    bridge = ha.HomeAssistantBridge(_cfg(real_ha.url, token=real_ha.token), registry)
    count = bridge.import_entities()
    assert count >= 40  # the demo integration's lights, covers, climates, locks, fans ...
    light = registry.get("light.ceiling_lights")
    assert light.source == "homeassistant" and light.area == "living_room"
    assert "big light" in light.aliases
    assert {"brightness", "color_temp", "color"} <= set(light.attributes)
    area = registry.area("living_room")
    assert area.floor == "ground_floor" and "lounge" in area.aliases
    assert registry.find_area("lounge") is area
    assert registry.find("big light")[0].entity_id == "light.ceiling_lights"
    assert "set_temperature" in registry.get("climate.hvac").verbs
    assert registry.get("sun.sun") is None


def test_real_ha_execute(real_ha: argparse.Namespace) -> None:
    registry = Registry()
    bridge = ha.HomeAssistantBridge(_cfg(real_ha.url, token=real_ha.token), registry)
    bridge.import_entities()
    bridge.execute(Action("light.ceiling_lights", "set_brightness", {"brightness": 30}))
    assert (
        round(_ha_state(real_ha, "light.ceiling_lights")["attributes"]["brightness"] / 2.55) == 30
    )
    assert registry.get("light.ceiling_lights").state["brightness"] == 30
    bridge.execute(Action("light.ceiling_lights", "turn_off"))
    assert _ha_state(real_ha, "light.ceiling_lights")["state"] == "off"
    bridge.execute(Action("climate.hvac", "set_temperature", {"temperature": 22.5}))
    assert _ha_state(real_ha, "climate.hvac")["attributes"]["temperature"] == 22.5
    bridge.execute(Action("media_player.bedroom", "set_volume", {"volume": 35}))
    assert _ha_state(real_ha, "media_player.bedroom")["attributes"]["volume_level"] == 0.35
    # A change made in HA itself reaches the registry through refresh_states().
    import niquests

    niquests.post(
        f"{real_ha.url}/api/services/light/turn_on",
        headers={"Authorization": f"Bearer {real_ha.token}"},
        json={"entity_id": "light.bed_light", "brightness_pct": 60},
        timeout=10,
    )
    assert bridge.refresh_states() >= 1
    bed = registry.get("light.bed_light").state
    assert (bed["state"], bed["brightness"]) == ("on", 60)
    bridge.execute(Action("lock.kitchen_door", "lock"))
    assert _ha_state(real_ha, "lock.kitchen_door")["state"] in ("locking", "locked")
    # HA refuses an out-of-range value with 400; the bridge turns it into one clear error.
    with pytest.raises(ha.HomeAssistantError, match="climate.set_hvac_mode failed"):
        bridge.execute(Action("climate.hvac", "set_hvac_mode", {"hvac_mode": "warp_speed"}))


def _wait_until(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not predicate():
        time.sleep(0.05)
    return predicate()


def test_follower_imports_when_ha_comes_up_then_follows_state_changes() -> None:
    import socket as socketlib

    from hubagent.interfaces.ha_follow import HaFollower

    # A port nobody listens on yet: Home Assistant is still starting.
    with socketlib.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    registry = Registry()
    bridge = ha.HomeAssistantBridge(_cfg(f"http://127.0.0.1:{port}", timeout_s=2.0), registry)
    follower = HaFollower(bridge, refresh_s=30.0)  # long: only pushed events can be this fast
    stop = threading.Event()
    worker = threading.Thread(target=follower.run, args=(stop,), daemon=True)
    worker.start()
    time.sleep(1.5)
    assert len(registry) == 0  # nothing to import yet, and no crash
    server = RecordedHomeAssistant(port).start()
    try:
        assert _wait_until(lambda: registry.get("cover.bedroom_blinds") is not None, 20)
        assert _wait_until(lambda: follower.live and server.subscribed)
        # A change made in HA's own UI arrives as a state_changed event, at once.
        server.push_state(
            {
                "entity_id": "cover.bedroom_blinds",
                "state": "open",
                "attributes": {"current_position": 75, "supported_features": 15},
            }
        )
        assert _wait_until(
            lambda: registry.get("cover.bedroom_blinds").state.get("position") == 75, 5
        )
        server.push_state({"entity_id": "cover.bedroom_blinds", "state": "unavailable"})
        assert _wait_until(lambda: not registry.get("cover.bedroom_blinds").available, 5)
    finally:
        stop.set()
        follower.close()  # unblocks the WebSocket read
        worker.join(5)
        server.stop()
    assert not worker.is_alive()


def test_follower_polls_when_ha_has_no_websocket(recorded_ha: RecordedHomeAssistant) -> None:
    from hubagent.interfaces.ha_follow import HaFollower

    recorded_ha.websocket = False
    registry = Registry()
    bridge = ha.HomeAssistantBridge(_cfg(recorded_ha.url), registry)
    follower = HaFollower(bridge, refresh_s=0.5)
    stop = threading.Event()
    worker = threading.Thread(target=follower.run, args=(stop,), daemon=True)
    worker.start()
    try:
        assert _wait_until(lambda: registry.get("cover.bedroom_blinds") is not None)
        # A change made elsewhere is corrected from HA's states within a refresh period.
        registry.update_state("cover.bedroom_blinds", {"position": 90})
        assert _wait_until(lambda: registry.get("cover.bedroom_blinds").state["position"] == 40, 5)
        assert not follower.live
    finally:
        stop.set()
        follower.close()
        worker.join(5)
        recorded_ha.websocket = True
    assert not worker.is_alive()
