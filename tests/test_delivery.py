"""Delivery rules on a real SQLite outbox: per-device readiness, PUBACK 0x10 retried, order per
device, the state echo, and commands in doubt after a drop (resent only when harmless).
The broker-level behaviour is in test_faults_delivery.py."""

from __future__ import annotations

from pathlib import Path

from hubagent.act.delivery import DeliveryGate, Readiness, matches, target_for
from hubagent.home.registry import Registry
from hubagent.store.db import Store
from hubagent.store.outbox import NO_SUBSCRIBERS, UNCERTAIN, Outbox, Target
from hubagent.types import Action, Entity, MqttMessage


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def lamp(name: str, availability: bool = True) -> Entity:
    mqtt = {"command_topic": f"home/{name}/set", "state_topic": f"home/{name}/state"}
    if availability:
        mqtt["availability"] = [{"topic": f"home/{name}/availability"}]
    return Entity(
        f"light.{name}", name, attributes={"brightness": {"min": 0, "max": 100}}, mqtt=mqtt
    )


def test_targets_say_what_shows_and_what_may_be_repeated() -> None:
    light = lamp("a")
    on = target_for(light, Action("light.a", "turn_on"), "alice", "http")
    assert dict(on.expect) == {"state": "on"} and on.resend_safe and on.requester == "alice"
    dim = target_for(light, Action("light.a", "set_brightness", {"brightness": 30}))
    assert dict(dim.expect) == {"brightness": 30, "state": "on"} and dim.resend_safe
    toggle = target_for(light, Action("light.a", "toggle"))
    assert toggle.expect == () and not toggle.resend_safe
    press = target_for(Entity("button.bell", "Bell"), Action("button.bell", "press"))
    assert not press.resend_safe
    assert matches({"state": "on", "brightness": 30.4}, dim.expect)  # within rounding
    assert not matches({"state": "on", "brightness": 31}, dim.expect)  # the next command's
    assert not matches({"state": "on", "brightness": 50}, dim.expect)
    assert not matches({"state": "on"}, ())


def test_readiness_waits_for_the_device_after_a_reconnect() -> None:
    clock = Clock()
    registry = Registry()
    registry.upsert(lamp("a"))
    registry.upsert(lamp("quiet", availability=False))
    registry.upsert(Entity("switch.bare", "Bare", mqtt={"command_topic": "home/bare/set"}))
    ready = Readiness(registry, grace_s=1.0, clock=clock)
    for entity in registry.all():
        ready.update(entity)
    assert not ready.ready("light.a")  # not connected
    ready.connected(True)
    assert not ready.ready("light.a") and not ready.ready("switch.bare")
    clock.now += 1.0
    assert ready.ready("switch.bare")  # nothing could show it: the grace delay
    assert not ready.ready("light.a")  # it announces itself: wait for that
    assert ready.saw("home/a/availability", b"offline") == [("light.a", False)]
    assert not ready.ready("light.a")
    assert ready.saw("home/a/availability", b"online") == [("light.a", True)]
    assert ready.ready("light.a")
    assert ready.saw("home/a/state", b"{}") == []  # already back
    assert not ready.ready("light.quiet")  # only a state topic: given a while to speak
    clock.now += 10.0
    assert ready.ready("light.quiet")
    ready.connected(False)
    ready.connected(True)
    assert not ready.ready("light.a")  # what was seen before the drop counts no more


class Link:
    """A publish function answering what the broker would (the broker is not the subject)."""

    def __init__(self) -> None:
        self.answer: bool | str = True
        self.published: list[str] = []

    def __call__(self, msg: MqttMessage) -> bool | str:
        if self.answer in (True, NO_SUBSCRIBERS, UNCERTAIN):
            self.published.append(msg.payload)
        return self.answer


def setup(tmp_path: Path) -> tuple[Store, Registry, Readiness, Link, Outbox]:
    registry = Registry()
    for name in ("a", "b"):
        registry.upsert(lamp(name))
    ready = Readiness(registry, grace_s=0.0)
    for entity in registry.all():
        ready.update(entity)
    store = Store(tmp_path / "hub.db")
    link = Link()
    outbox = Outbox(store, link, gate=DeliveryGate(registry, ready), echo_s=60.0)
    return store, registry, ready, link, outbox


def command(registry: Registry, name: str, value: int) -> tuple[MqttMessage, Target]:
    entity = registry.get(f"light.{name}")
    action = Action(entity.entity_id, "set_brightness", {"brightness": value})
    return MqttMessage(f"home/{name}/set", f"{name}{value}"), target_for(entity, action)


def test_commands_wait_per_device_and_no_subscribers_is_retried(tmp_path: Path) -> None:
    store, registry, ready, link, outbox = setup(tmp_path)
    with store:
        ready.connected(True)
        outbox.set_connected(True)
        for name, value in (("a", 1), ("b", 1), ("a", 2)):
            message, target = command(registry, name, value)
            outbox.send(message, target=target)
        assert link.published == [] and outbox.pending_count() == 3
        ready.saw("home/b/availability", b"online")
        outbox.flush()
        assert link.published == ["b1"]  # lamp a is not back: its commands wait, in order
        ready.saw("home/a/availability", b"online")
        link.answer = NO_SUBSCRIBERS  # back, but not subscribed yet
        outbox.flush()
        assert link.published == ["b1", "a1"] and outbox.pending_count() == 2
        link.answer = True
        outbox.flush()
        assert link.published == ["b1", "a1"]  # retried after RETRY_S, not at once
        report = outbox.flush(outbox.clock() + 2.0)
        assert link.published == ["b1", "a1", "a1", "a2"] and len(report.sent) == 2


def test_commands_in_doubt_are_settled_by_the_state(tmp_path: Path) -> None:
    store, registry, ready, link, outbox = setup(tmp_path)
    with store:
        ready.connected(True)
        outbox.set_connected(True)
        ready.saw("home/a/availability", b"online")
        for value in (10, 20, 30):
            message, target = command(registry, "a", value)
            outbox.send(message, target=target)
        assert link.published == ["a10", "a20", "a30"] and outbox.in_flight() == 3
        registry.update_state("light.a", {"state": "on", "brightness": 10})
        outbox.confirm("light.a")
        assert outbox.in_flight() == 2  # the echo of the first
        outbox.set_connected(False)  # the broker dies: 20 and 30 are in doubt
        ready.connected(False)
        ready.connected(True)
        outbox.set_connected(True)
        assert outbox.in_flight() == 2 and link.published == ["a10", "a20", "a30"]
        ready.saw("home/a/availability", b"online")
        registry.update_state("light.a", {"brightness": 20})  # re-announced: 20 arrived
        outbox.confirm("light.a")
        assert outbox.in_flight() == 1
        outbox.flush()
        assert link.published == ["a10", "a20", "a30"]  # its state may still be on the way
        ready._seen["light.a"] -= 2.0  # noqa: SLF001 - the settle time has passed
        outbox.flush()
        assert link.published == ["a10", "a20", "a30", "a30"]  # 30 never arrived: resent


def test_a_toggle_in_doubt_is_reported_not_repeated(tmp_path: Path, caplog) -> None:
    store, registry, ready, link, outbox = setup(tmp_path)
    with store:
        ready.connected(True)
        outbox.set_connected(True)
        ready.saw("home/a/availability", b"online")
        entity = registry.get("light.a")
        link.answer = UNCERTAIN  # published, the PUBACK never came
        outbox.send(
            MqttMessage("home/a/set", "TOGGLE"),
            target=target_for(entity, Action("light.a", "toggle")),
        )
        link.answer = True
        ready.connected(False)
        outbox.set_connected(False)
        ready.connected(True)
        outbox.set_connected(True)
        ready.saw("home/a/availability", b"online")
        ready._seen["light.a"] -= 2.0  # noqa: SLF001
        outbox.flush()
        assert link.published == ["TOGGLE"] and outbox.in_flight() == 0
        assert "not repeated" in caplog.text


def test_a_device_that_drops_off_gets_its_unconfirmed_commands_again(tmp_path: Path) -> None:
    store, registry, ready, link, outbox = setup(tmp_path)
    with store:
        ready.connected(True)
        outbox.set_connected(True)
        ready.saw("home/a/availability", b"online")
        ready.saw("home/b/availability", b"online")
        for name in ("a", "b"):
            message, target = command(registry, name, 40)
            outbox.send(message, target=target)
        # Lamp a's session ends (its will says offline) before it echoed; the hub stays up.
        for entity_id, back in ready.saw("home/a/availability", b"offline"):
            assert not back
            outbox.doubt(entity_id)
        outbox.flush()
        assert link.published == ["a40", "b40"]  # not while it is away
        ready.saw("home/a/availability", b"online")
        ready._seen["light.a"] -= 2.0  # noqa: SLF001 - back, and its state said nothing new
        outbox.flush()
        assert link.published == ["a40", "b40", "a40"]
        registry.update_state("light.a", {"state": "on", "brightness": 40})
        outbox.confirm("light.a")
        assert outbox.in_flight() == 1  # lamp b's command still waits for its echo
