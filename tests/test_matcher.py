"""The local matcher on small homes built here (English and Simplified Chinese)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from hubagent.home.registry import Registry
from hubagent.types import Area, Entity, Floor
from hubagent.understand.matcher import LocalMatcher
from hubagent.understand.slots import UnknownLanguageError, resolve_language


def _english_home() -> Registry:
    registry = Registry()
    registry.load(
        floors=[Floor("ground", "Ground Floor"), Floor("upstairs", "Upstairs")],
        areas=[
            Area("kitchen", "Kitchen", floor="ground", aliases=("cooking area",)),
            Area("living_room", "Living Room", floor="ground"),
            Area("bedroom", "Bedroom", floor="upstairs"),
        ],
        entities=[
            Entity(
                "light.kitchen_ceiling",
                "Kitchen ceiling light",
                area="kitchen",
                aliases=("big light",),
                attributes={"brightness": {"min": 0, "max": 100}},
                state={"state": "off"},
            ),
            Entity(
                "light.kitchen_lamp",
                "Kitchen lamp",
                area="kitchen",
                attributes={"brightness": {"min": 0, "max": 100}},
                state={"state": "on"},
            ),
            Entity("light.bedroom_lamp", "Bedroom lamp", area="bedroom", state={"state": "on"}),
            Entity("switch.coffee_maker", "Coffee maker", area="kitchen"),
            Entity(
                "cover.bedroom_window",
                "Bedroom window",
                area="bedroom",
                device_class="window",
                attributes={"position": {"min": 0, "max": 100}},
                state={"state": "open"},
            ),
            Entity("cover.bedroom_blind", "Bedroom blind", area="bedroom", device_class="blind"),
            Entity(
                "sensor.outside_temperature",
                "Outside temperature",
                state={"state": 21.5, "unit_of_measurement": "°C"},
            ),
            Entity("media_player.tv", "TV", area="living_room"),
            Entity("lock.front_door", "Front door", area="living_room", state={"state": "locked"}),
        ],
    )
    return registry


@pytest.fixture(scope="module")
def home() -> tuple[Registry, LocalMatcher]:
    registry = _english_home()
    return registry, LocalMatcher(registry, "en")


def _targets(understanding) -> set[str]:
    return {a.entity for a in understanding.actions}


def _verbs(understanding) -> set[str]:
    return {a.action for a in understanding.actions}


def test_name_resolves_to_the_entity(home) -> None:
    _, matcher = home
    got = matcher.match("turn on the kitchen lamp")
    assert got is not None and got.path == "local"
    assert got.intent == {"name": "HassTurnOn", "slots": {"name": "Kitchen lamp"}}
    assert _targets(got) == {"light.kitchen_lamp"}
    assert _verbs(got) == {"turn_on"}
    assert got.steps[0].error is None


def test_alias_names_the_same_entity(home) -> None:
    _, matcher = home
    got = matcher.match("turn off the big light")
    assert got is not None
    assert got.intent["name"] == "HassTurnOff"
    assert got.intent["slots"] == {"name": "big light"}
    assert _targets(got) == {"light.kitchen_ceiling"}
    assert _verbs(got) == {"turn_off"}


def test_request_area_scopes_a_bare_domain(home) -> None:
    _, matcher = home
    got = matcher.match("turn on the lights", area="kitchen")
    assert got is not None
    # The satellite's area is context, not a spoken slot (as HA's tests write it).
    assert got.intent == {"name": "HassTurnOn", "slots": {"domain": "light"}}
    assert _targets(got) == {"light.kitchen_ceiling", "light.kitchen_lamp"}


def test_area_alias_and_brightness_int(home) -> None:
    _, matcher = home
    got = matcher.match("set the brightness in the cooking area to 40%")
    assert got is not None
    slots = got.intent["slots"]
    assert got.intent["name"] == "HassLightSet"
    assert slots["area"] == "Kitchen" and slots["brightness"] == 40
    assert isinstance(slots["brightness"], int)
    assert _targets(got) == {"light.kitchen_ceiling", "light.kitchen_lamp"}
    assert all(a.args.get("brightness") == 40 for a in got.actions)


def test_floor_target(home) -> None:
    _, matcher = home
    got = matcher.match("upstairs lights off")
    assert got is not None
    assert got.intent == {"name": "HassTurnOff", "slots": {"floor": "Upstairs", "domain": "light"}}
    assert _targets(got) == {"light.bedroom_lamp"}


def test_device_class_target_excludes_other_covers(home) -> None:
    _, matcher = home
    got = matcher.match("open the windows in the bedroom")
    assert got is not None
    assert got.intent["slots"] == {"area": "Bedroom", "domain": "cover", "device_class": "window"}
    assert _targets(got) == {"cover.bedroom_window"}
    assert _verbs(got) == {"open"}


def test_target_without_entities_is_an_unknown_device_step(home) -> None:
    _, matcher = home
    got = matcher.match("turn off the lights in the living room")
    assert got is not None and got.actions == []
    assert got.steps[0].error == "unknown_device"
    assert "light" in got.steps[0].detail and "Living Room" in got.steps[0].detail


def test_state_questions_are_answered_from_state(home) -> None:
    registry, matcher = home
    got = matcher.match("what is the outside temperature")
    assert got is not None and got.intent["name"] == "HassGetState"
    assert got.actions == []
    assert got.answer == "Outside temperature is 21.5 °C"

    got = matcher.match("is the front door locked")
    assert got is not None and got.answer == "Yes"
    registry.update_state("lock.front_door", {"state": "unlocked"})
    got = matcher.match("is the front door locked")
    assert got is not None and got.answer == "No, unlocked"

    got = matcher.match("are any lights on in the kitchen")
    assert got is not None and got.answer == "Yes, Kitchen lamp"


def test_nothing_matched_is_none(home) -> None:
    _, matcher = home
    assert matcher.match("what is the meaning of life") is None
    assert matcher.match("") is None
    assert matcher.match("   ") is None


def test_registry_change_rebuilds_slot_lists() -> None:
    registry = _english_home()
    matcher = LocalMatcher(registry, "en")
    assert matcher.match("turn on the desk lamp") is None
    registry.upsert(Entity("light.desk_lamp", "Desk lamp", area="bedroom"))
    got = matcher.match("turn on the desk lamp")
    assert got is not None and _targets(got) == {"light.desk_lamp"}
    registry.remove("light.desk_lamp")
    assert matcher.match("turn on the desk lamp") is None


def test_language_codes() -> None:
    assert resolve_language("zh-hans") == "zh-CN"
    assert resolve_language("en_US") == "en"
    with pytest.raises(UnknownLanguageError, match="klingon"):
        LocalMatcher(Registry(), "klingon")


def _chinese_home() -> Registry:
    registry = Registry()
    registry.load(
        floors=[Floor("f1", "一楼")],
        areas=[Area("living", "客厅", floor="f1"), Area("bedroom", "卧室", floor="f1")],
        entities=[
            Entity("light.living", "客厅灯", area="living"),
            Entity("light.bedside", "床头灯", area="bedroom", state={"state": "on"}),
            Entity("switch.fan", "风扇开关", area="living"),
        ],
    )
    return registry


def test_chinese_name_area_and_context() -> None:
    matcher = LocalMatcher(_chinese_home(), "zh-hans")
    assert matcher.language == "zh-CN"

    got = matcher.match("打开客厅灯")
    assert got is not None
    assert got.intent == {"name": "HassTurnOn", "slots": {"name": "客厅灯"}}
    assert _targets(got) == {"light.living"}

    got = matcher.match("关闭卧室的灯")
    assert got is not None
    assert got.intent == {"name": "HassTurnOff", "slots": {"area": "卧室", "domain": "light"}}
    assert _targets(got) == {"light.bedside"}

    got = matcher.match("打开灯", area="bedroom")
    assert got is not None and got.intent["slots"] == {"domain": "light"}
    assert _targets(got) == {"light.bedside"}

    got = matcher.match("床头灯开着吗")
    assert got is not None and got.intent["name"] == "HassGetState"
    assert got.actions == [] and got.answer


def test_home_wide_devices_fall_back_beyond_the_request_area(home) -> None:
    registry, matcher = home
    got = matcher.match("pause", area="kitchen")
    assert got is not None and got.intent == {"name": "HassMediaPause", "slots": {}}
    assert _targets(got) == {"media_player.tv"}
    # ...but switching intents stay in the request's area.
    got = matcher.match("open the windows", area="kitchen")
    assert got is not None and got.actions == []
    assert got.steps[0].error == "unknown_device"


def test_pause_prefers_what_is_playing() -> None:
    registry = _english_home()
    registry.upsert(
        Entity("media_player.radio", "Radio", area="bedroom", state={"state": "playing"})
    )
    matcher = LocalMatcher(registry, "en")
    # From the kitchen (no player there): the playing radio, not the idle TV.
    got = matcher.match("pause", area="kitchen")
    assert got is not None and _targets(got) == {"media_player.radio"}


def test_device_without_the_feature_is_an_unknown_attribute_step(home) -> None:
    _, matcher = home
    # The bedroom lamp declares no brightness capability.
    got = matcher.match("set the bedroom lamp brightness to 50%")
    assert got is not None and got.intent["name"] == "HassLightSet"
    assert got.actions == []
    assert got.steps[0].error == "unknown_attribute"
    assert "Bedroom lamp" in got.steps[0].detail


def test_recognitions_are_remembered_until_names_change() -> None:
    registry = _english_home()
    matcher = LocalMatcher(registry, "en")
    first = matcher.recognize("turn on the coffee maker")
    assert first is not None and first.slots["name"] == "Coffee maker"
    first.slots["name"] = "changed by a caller"  # callers get their own copy
    again = matcher.recognize("turn on the coffee maker")
    assert again is not None and again.slots["name"] == "Coffee maker"
    # A renamed device: the remembered recognition must not survive the change.
    entity = registry.get("switch.coffee_maker")
    registry.upsert(replace(entity, name="Espresso machine"))
    assert matcher.recognize("turn on the coffee maker") is None
    assert matcher.recognize("turn on the espresso machine") is not None
