"""The whole hub over a real TLS mosquitto with the simulated demo home: discovery, a request
understood locally, the device's own MQTT command, the new state read back, confirmation for
a lock, the outbox across a broker outage, and state restored after a restart."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import BrokerEnv
from demohome import DEMO_HOME, wait_for

from hubagent.app import Hub
from hubagent.config import Config, LlmConfig, StoreConfig
from hubagent.sim.simulator import Simulator


def hub_config(env: BrokerEnv, db: Path) -> Config:
    return Config(
        homes=(str(DEMO_HOME),),
        mqtt=env.mqtt_config(client_id="hubagent-e2e"),
        llm=LlmConfig(backend="none"),
        store=StoreConfig(path=str(db), encryption_key="e2e test passphrase"),
    )


@pytest.fixture
def hub(env: BrokerEnv, sim: Simulator, tmp_path: Path) -> Iterator[Hub]:
    running = Hub(hub_config(env, tmp_path / "hub.db"))
    assert running.start(wait=10)
    wait_for(
        lambda: (
            len(running.registry) >= len(sim.devices)
            and running.registry.get("light.kitchen_ceiling").state
        )
    )
    yield running
    running.stop()


def test_discovers_the_demo_home_with_names_and_areas(hub: Hub, sim: Simulator) -> None:
    light = hub.registry.get("light.kitchen_ceiling")
    assert light is not None and light.source == "discovery"
    assert light.area == "kitchen" and "big light" in light.aliases
    assert "brightness" in light.attributes
    assert {e.entity_id for e in hub.registry.all()} >= set(sim.devices)


def test_request_reaches_the_device_and_state_comes_back(hub: Hub, sim: Simulator) -> None:
    reply = hub.agent.handle("turn off the kitchen ceiling light", requester="t")
    assert [a.entity for a in reply.actions] == ["light.kitchen_ceiling"]
    wait_for(lambda: hub.registry.get("light.kitchen_ceiling").state.get("state") == "off")
    reply = hub.agent.handle("set the kitchen ceiling light to 40%", requester="t")
    assert reply.understanding.path == "local"
    wait_for(lambda: sim.device("light.kitchen_ceiling").ha_state().get("brightness") == 40)
    wait_for(lambda: hub.registry.get("light.kitchen_ceiling").state.get("brightness") == 40)
    assert hub.registry.get("light.kitchen_ceiling").state["state"] == "on"


def test_request_area_context(hub: Hub, sim: Simulator) -> None:
    reply = hub.agent.handle("turn off the lights", requester="t", area="bedroom")
    assert {a.entity for a in reply.actions} == {"light.bedroom_ceiling", "light.bedside_lamp"}


def test_unknown_device_is_refused_not_guessed(hub: Hub) -> None:
    sent_before = hub.mqtt.stats.published
    reply = hub.agent.handle("turn on the sauna heater", requester="t")
    assert reply.actions == [] and reply.refused
    assert hub.mqtt.stats.published == sent_before


def test_unlock_needs_confirmation_from_the_same_requester(hub: Hub, sim: Simulator) -> None:
    hub.agent.handle("lock the front door", requester="alice")
    wait_for(lambda: hub.registry.get("lock.front_door").state.get("state") == "locked")
    reply = hub.agent.handle("unlock the front door", requester="alice")
    assert reply.needs_confirmation and not reply.actions
    assert hub.agent.handle("yes", requester="bob").actions == []
    time.sleep(0.3)
    assert hub.registry.get("lock.front_door").state["state"] == "locked"
    reply = hub.agent.handle("yes", requester="alice")
    assert [a.action for a in reply.actions] == ["unlock"]
    wait_for(lambda: hub.registry.get("lock.front_door").state.get("state") == "unlocked")
    audit = hub.store.audit_entries(limit=5)
    assert audit[0].decision == "confirmed" and audit[0].requester == "alice"


def test_no_cancels_a_pending_confirmation(hub: Hub) -> None:
    reply = hub.agent.handle("unlock the front door", requester="carol")
    assert reply.needs_confirmation
    reply = hub.agent.handle("no", requester="carol")
    assert reply.text == "Okay, cancelled." and not reply.actions
    assert hub.agent.handle("yes", requester="carol").actions == []


def test_commands_wait_in_the_outbox_while_the_broker_is_down(
    hub: Hub, env: BrokerEnv, sim: Simulator
) -> None:
    hub.agent.handle("turn on the hall light", requester="t")
    wait_for(lambda: hub.registry.get("light.hallway").state.get("state") == "on")
    env.broker.kill()
    wait_for(lambda: not hub.mqtt.connected)
    reply = hub.agent.handle("turn off the hall light", requester="t")
    assert reply.actions and hub.outbox.pending_count() == 1
    env.broker.restart()
    wait_for(lambda: hub.registry.get("light.hallway").state.get("state") == "off", timeout=20)
    assert hub.outbox.pending_count() == 0
    assert [p for t, p in sim.received if t == "home/hallway/set"].count(b'{"state":"OFF"}') == 1


def test_state_is_restored_from_the_store_after_restart(
    env: BrokerEnv, sim: Simulator, tmp_path: Path
) -> None:
    db = tmp_path / "restart.db"
    first = Hub(hub_config(env, db))
    assert first.start(wait=10)
    wait_for(
        lambda: (
            first.registry.get("sensor.living_room_temperature")
            and first.registry.get("sensor.living_room_temperature").state
        )
    )
    state = dict(first.registry.get("sensor.living_room_temperature").state)
    first.stop()
    offline = Hub(replace(hub_config(env, db), mqtt=env.mqtt_config(port=1, client_id="offline")))
    try:
        # Not connected: discovery can't run, but a static copy shows the restored state
        # as soon as the entity is known again.
        offline.registry.upsert(
            replace(first.registry.get("sensor.living_room_temperature"), state={})
        )
        assert offline.registry.get("sensor.living_room_temperature").state == state
    finally:
        offline.stop()
