"""Templates from the network run within a budget: CPU time, value sizes and output size.

Unit part: what stops each runaway or blow-up (and that real firmware templates still
render the same). Integration part: a device account retains hostile templates and a
state message; with a real mosquitto (TLS + ACLs), the hub marks those entities
unavailable, logs each once, and commands to another device still arrive within 5 s.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import BrokerEnv, make_broker_env
from faultkit import hub_config, wait_for, write_home

from hubagent.app import Hub
from hubagent.home.registry import Registry
from hubagent.mqtt.client import MqttClient
from hubagent.mqtt.state import DiscoveryManager
from hubagent.mqtt.template_guard import MAX_OUTPUT_CHARS
from hubagent.mqtt.templates import TemplateBudgetError, TemplateError, renderer
from hubagent.sim.simulator import Simulator

NESTED = "{% for a in range(10**4) %}{% for b in range(10**4) %}{{ a }}{% endfor %}{% endfor %}"
SILENT = "{% for a in range(10**4) %}{% for b in range(10**4) %}{% endfor %}{% endfor %}x"
BLOW_UP = "{{ value * 20000000 }}"

SIZE_ATTACKS = [
    BLOW_UP,
    "{{ 10 ** 100000 }}",
    "{% set ns = namespace(x=3) %}{% for i in range(40) %}{% set ns.x = ns.x * ns.x %}"
    "{% endfor %}{{ ns.x }}",
    "{{ value|center(1000000000) }}",
    "{{ value.ljust(1000000000) }}",
    "{{ ('\t' * 1000).expandtabs(1000000) }}",
    "{{ '{:>999999999}'.format(1) }}",
    "{{ '{:{w}}'.format(1, w=10**9) }}",
    "{{ '%999999999d' % 1 }}",
    "{{ '%s' % (([('x' * 1000000)] * 1000),) }}",
    "{% set ns = namespace(s='ab') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}"
    "{% endfor %}{{ ns.s|length }}",
    "{{ ('a' * 60000)|replace('', 'b' * 60000) }}",
    "{{ [1]|batch(1000000000, 0)|list|length }}",
    "{{ ('a\n' * 1000)|indent(1000000) }}",
    "{{ [('x' * 1000000)] * 1000 }}",
    "{{ ([('x' * 1000000)] * 1000)|string|length }}",
    "{{ ([[1]] * 100000)|sum(start=[])|length }}",
    "{% for i in range(100000) %}xx{% endfor %}",  # 200,000 characters of output
]

# Real firmware templates (zigbee2mqtt, Tasmota, ESPHome style) and what they render.
EVERYDAY = [
    ("{{ value_json.t | float * 2 }}", '{"t": "2"}', "4.0"),
    ("{% if value == '1' %}ON{% else %}OFF{% endif %}", "1", "ON"),
    ("{{ (value_json.bri / 2.55) | round(0) | int }}", '{"bri": 255}', "100"),
    ("{{ value_json.ENERGY.Power }}", '{"ENERGY": {"Power": 12}}', "12"),
    ("{{ '%.1f' | format(value | float) }}", "21.25", "21.2"),
    ("{{ value_json.list | join(',') }}", '{"list": ["a", "b"]}', "a,b"),
    ("{{ 'on' if value_json.state == 'ON' else 'off' }}", '{"state": "ON"}', "on"),
    ("{{ value_json.ts | int + 1700000000 }}", '{"ts": 5}', "1700000005"),
    ("{{ '{:.2f}'.format(value | float) }}", "1.5", "1.50"),
    ("{{ value_json.a ~ '/' ~ value_json.b }}", '{"a": 1, "b": 2}', "1/2"),
    ("{{ [1, 2, 3] | sum }}", "x", "6"),
    ("{{ '{:*^7}'.format(value) }}", "on", "**on***"),
]


@pytest.mark.parametrize("source", [NESTED, SILENT])
def test_runaway_loops_stop_at_the_time_budget(source: str) -> None:
    start = time.monotonic()
    with pytest.raises(TemplateBudgetError):
        renderer.render_value(source, "1")
    elapsed = time.monotonic() - start
    print(f"\nrunaway template stopped after {elapsed * 1000:.0f} ms (budget 50 ms of CPU)")
    assert elapsed < 2.0  # was 8.5 s per message for 10^8 iterations, minutes for this one


@pytest.mark.parametrize("source", SIZE_ATTACKS)
def test_blow_ups_are_refused_before_they_allocate(source: str) -> None:
    tracemalloc.start()
    try:
        with pytest.raises(TemplateBudgetError):
            renderer.render_value(source, "1")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 32 * 1024 * 1024, f"{peak / 1e6:.1f} MB for {source!r}"


def test_blow_up_of_one_byte_to_20_mb_is_refused_cheaply() -> None:
    tracemalloc.start()
    try:
        with pytest.raises(TemplateBudgetError, match="20,000,000"):
            renderer.render_value(BLOW_UP, "1")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2 * 1024 * 1024


def test_output_is_capped() -> None:
    fits = "{% for i in range(1000) %}x{% endfor %}"
    assert len(renderer.render_value(fits, "1")) == 1000
    with pytest.raises(TemplateBudgetError, match="output longer"):
        renderer.render_value(f"{{{{ 'x' * {MAX_OUTPUT_CHARS + 1} }}}}", "1")


@pytest.mark.parametrize(("source", "payload", "expected"), EVERYDAY)
def test_everyday_templates_render_as_before(source: str, payload: str, expected: str) -> None:
    assert renderer.render_value(source, payload) == expected


def test_command_templates_have_the_same_budget() -> None:
    assert renderer.render_command('{"brightness": {{ value }}}', 50) == '{"brightness": 50}'
    with pytest.raises(TemplateBudgetError):
        renderer.render_command(SILENT, 1)
    with pytest.raises(TemplateError):  # the executor turns any TemplateError into a refusal
        renderer.render_command("{{ value * 20000000 }}", "x")


def test_the_budget_never_fires_into_later_code() -> None:
    """The watchdog's exception must land inside the render, never after it."""
    for _ in range(3):
        with pytest.raises(TemplateBudgetError):
            renderer.render_value(SILENT, "1")
        total = 0
        end = time.monotonic() + 0.2  # keep running Python past several watchdog ticks
        while time.monotonic() < end:
            total += len(renderer.render_value("{{ value_json.t | float }}", '{"t": 1}'))
        assert total > 0


def test_budget_holds_in_short_lived_threads() -> None:
    """Thread ids are reused by later threads; each render must use its own thread's clock."""
    results: list[str] = []

    def render_once() -> None:
        try:
            renderer.render_value(SILENT if len(results) % 2 else "{{ value }}", "1")
            results.append("ok")
        except TemplateBudgetError:
            results.append("budget")

    for _ in range(6):
        thread = threading.Thread(target=render_once)
        thread.start()
        thread.join(10)
    assert results == ["ok", "budget"] * 3


def test_quick_templates_stay_quick() -> None:
    source, payload = "{{ value_json.t | float * 2 }}", '{"t": "2"}'
    renderer.render_value(source, payload)
    start = time.process_time()
    for _ in range(2000):
        renderer.render_value(source, payload)
    per_render_us = (time.process_time() - start) / 2000 * 1e6
    print(f"\neveryday template: {per_render_us:.0f} us CPU per render")
    assert per_render_us < 500


# -- integration: a hostile device account on a real broker --------------------------------
EVIL_STATE = "home/evil/state"


def _config(name: str, template: str) -> bytes:
    return json.dumps(
        {
            "name": name,
            "unique_id": f"evil_{name}",
            "state_topic": EVIL_STATE,
            "value_template": template,
            "device": {"identifiers": ["evil"], "name": "Evil"},
        }
    ).encode()


@pytest.fixture
def hostile_home(tmp_path: Path) -> Iterator[tuple[BrokerEnv, Simulator, MqttClient, Path]]:
    home = write_home(tmp_path)
    env = make_broker_env(tmp_path / "broker", ["lab_lamp", "front_door", "lab_plug", "evil"])
    sim = Simulator(home, env.mqtt_config, tick_interval=None)
    sim.start()
    evil = MqttClient(env.mqtt_config("evil"), status_topic=None)
    evil.start()
    assert evil.wait_connected(10), evil.last_error
    # Retained before the hub starts: it meets them at every start, as after a restart.
    for name, template in (
        ("loop", NESTED),
        ("blowup", BLOW_UP),
        ("good", "{{ value_json.t | float * 2 }}"),
    ):
        topic = f"homeassistant/sensor/evil/{name}/config"
        assert evil.publish(topic, _config(name, template), qos=1, retain=True, timeout=5).ok
    assert evil.publish(EVIL_STATE, b'{"t": 2}', qos=1, retain=True, timeout=5).ok
    yield env, sim, evil, home
    evil.stop()
    sim.stop()
    env.close()


def test_hostile_retained_template_does_not_stop_delivery(
    hostile_home: tuple[BrokerEnv, Simulator, MqttClient, Path],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    env, sim, evil, home = hostile_home
    caplog.set_level(logging.WARNING, logger="hubagent")
    hub = Hub(hub_config(env.mqtt_config(), tmp_path / "hub.db", (str(home),)))
    try:
        assert hub.start(wait=10)
        wait_for(lambda: hub.registry.get("sensor.evil_good") is not None, timeout=10)
        before = len(sim.received)
        start = time.monotonic()
        for i in range(10):
            reply = hub.agent.handle(
                f"turn {'on' if i % 2 == 0 else 'off'} the lab plug", requester="t"
            )
            assert [a.entity for a in reply.actions] == ["switch.lab_plug"], reply.text
        assert sim.wait_received(before + 10, timeout=5), "commands stalled behind a template"
        delivered_s = time.monotonic() - start
        wait_for(lambda: hub.registry.get("sensor.evil_good").state.get("state") == 4)
        for entity_id in ("sensor.evil_loop", "sensor.evil_blowup"):
            wait_for(lambda e=entity_id: hub.registry.get(e) and not hub.registry.get(e).available)
        assert hub.registry.get("sensor.evil_good").available
        assert hub.health()["templates_over_budget"] == 2

        # More state for the hostile entities costs nothing and logs nothing more.
        for i in range(20):
            assert evil.publish(EVIL_STATE, json.dumps({"t": i}).encode(), qos=1, timeout=5).ok
        wait_for(lambda: hub.registry.get("sensor.evil_good").state.get("state") == 38)
        health = hub.health()
        lines = [r.getMessage() for r in caplog.records if "until its discovery" in r.getMessage()]
        print(
            f"\n10 commands delivered in {delivered_s:.2f} s with hostile templates retained; "
            f"health {health}; {len(lines)} log line(s)"
        )
        assert health["templates_over_budget"] == 2 and health["mqtt_connected"]
        assert len(lines) == 2 and all("marked unavailable" in line for line in lines)
        assert max(len(json.dumps(e.state)) for e in hub.registry.all()) < 70_000

        # A fixed config for the entity brings it back.
        fixed = _config("loop", "{{ value_json.t }}")
        assert evil.publish(
            "homeassistant/sensor/evil/loop/config", fixed, qos=1, retain=True, timeout=5
        ).ok
        assert evil.publish(EVIL_STATE, b'{"t": 7}', qos=1, retain=True, timeout=5).ok
        wait_for(lambda: hub.registry.get("sensor.evil_loop").state.get("state") == 7)
    finally:
        hub.stop()


def test_a_huge_raw_state_is_not_taken() -> None:
    """Without a template a sensor's payload is its state: 20 MB in must not become a
    20 MB state (and `/api/entities` answer); a normal value right after is taken."""
    registry = Registry()
    manager = DiscoveryManager(registry)
    config = {"name": "Raw", "unique_id": "raw1", "state_topic": "home/raw/state"}
    manager.handle_message("homeassistant/sensor/raw/config", json.dumps(config).encode())
    manager.handle_message("home/raw/state", b"A" * 20_000_000)
    assert registry.get("sensor.raw").state.get("state") is None
    assert manager.counters["bad_state"] == 1
    manager.handle_message("home/raw/state", b"21.5")
    assert registry.get("sensor.raw").state["state"] == 21.5


def test_many_messages_each_within_budget_still_hit_the_window(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A template just under the per-render budget, sent often, would keep the worker busy:
    an entity's messages may take at most 1 s of CPU per 10 s."""
    caplog.set_level(logging.WARNING)
    registry = Registry()
    manager = DiscoveryManager(registry)
    slow = "{% for a in range(200) %}{% for b in range(200) %}{% endfor %}{% endfor %}{{ value }}"
    config = {"name": "Slow", "unique_id": "slow1", "state_topic": "home/slow/state"}
    manager.handle_message(
        "homeassistant/sensor/slow/config", json.dumps({**config, "value_template": slow}).encode()
    )
    start = time.process_time()
    for i in range(400):
        manager.handle_message("home/slow/state", str(i).encode())
    spent = time.process_time() - start
    entity = registry.get("sensor.slow")
    assert not entity.available and manager.counters["template_budget"] == 1
    lines = [r.getMessage() for r in caplog.records if "marked unavailable" in r.getMessage()]
    assert len(lines) == 1 and "state messages took" in lines[0], lines
    print(f"\n400 slow messages: entity off after {entity.state.get('state')}; {spent:.2f} s CPU")
    assert spent < 3.0
