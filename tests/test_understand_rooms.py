"""Rooms as what to act on (vacuum cleaning), "fan speed" said of a fan, name precedence."""

from __future__ import annotations

import pytest

from hubagent.act.policy import ALLOWED, REFUSED, Policy
from hubagent.config import PolicyConfig
from hubagent.home.registry import Registry
from hubagent.interfaces.ha_client import action_to_service, state_to_entity
from hubagent.types import Action, Area, Entity
from hubagent.understand.cascade import Cascade
from hubagent.understand.llm import LlmUnderstander
from hubagent.understand.matcher import LocalMatcher


def _home(*, rooms_cleaning: bool) -> Registry:
    vacuum_attrs = {"cleaning_area": {}} if rooms_cleaning else {}
    registry = Registry()
    registry.load(
        [],
        [
            Area("kitchen", "Kitchen"),
            Area("living_room", "Living room"),
            Area("garage", "Garage"),
            Area("study", "Study"),
        ],
        [
            Entity("vacuum.robot", "Robot vacuum", area="living_room", attributes=vacuum_attrs),
            Entity("cover.garage_door", "Garage door", area="garage", aliases=("garage",)),
            Entity("light.garage", "Garage light", area="garage"),
            Entity(
                "fan.study",
                "Fan",
                area="study",
                attributes={"speed": {"options": ["auto", "low", "medium", "high"]}},
                state={"state": "on", "speed": "low"},
            ),
            Entity(
                "climate.study_ac",
                "Air conditioner",
                area="kitchen",
                attributes={"fan_mode": {"options": ["auto", "low", "high"]}},
                state={"state": "cool", "fan_mode": "auto"},
            ),
            Entity(
                "fan.kitchen_purifier",
                "Air purifier",
                area="kitchen",
                attributes={"fan_speed": {"options": ["auto", "low", "high"]}},
                state={"state": "on", "fan_speed": "auto"},
            ),
        ],
    )
    return registry


def _cascade(registry: Registry) -> Cascade:
    return Cascade(LocalMatcher(registry, "en"), LlmUnderstander(registry, None))


@pytest.mark.parametrize(
    "text",
    [
        "vacuum the kitchen",  # HA's HassVacuumCleanArea sentence
        "clean the kitchen with the robot vacuum",
        "send the vacuum to clean the kitchen",
        "start the robot vacuum in the kitchen",  # the robot lives in the living room
    ],
)
def test_a_named_room_is_what_the_vacuum_cleans(text: str) -> None:
    result = _cascade(_home(rooms_cleaning=True)).understand(text)
    assert result.actions == [Action("vacuum.robot", "clean_area", {"area": "kitchen"})], text


def test_a_vacuum_that_cannot_clean_one_room_says_so() -> None:
    result = _cascade(_home(rooms_cleaning=False)).understand("vacuum the garage")
    (step,) = result.steps
    assert step.error == "unknown_attribute"
    assert "cannot clean a single room" in (step.detail or "")
    # Never the garage door instead (it is aliased "garage").
    assert not result.actions


def test_start_the_vacuum_finds_a_robot_vacuum_by_its_kind() -> None:
    cascade = _cascade(_home(rooms_cleaning=False))
    assert cascade.understand("start the vacuum").actions == [Action("vacuum.robot", "start")]
    assert cascade.understand("start the vacuum in the living room").actions == [
        Action("vacuum.robot", "start")
    ]


def test_policy_checks_the_room_to_clean() -> None:
    registry = _home(rooms_cleaning=True)
    policy = Policy(PolicyConfig(), registry)
    ok = policy.check(Action("vacuum.robot", "clean_area", {"area": "kitchen"}), "t", "cli")
    assert ok.status == ALLOWED
    bad = policy.check(Action("vacuum.robot", "clean_area", {"area": "attic"}), "t", "cli")
    assert bad.status == REFUSED and "attic" in bad.reason
    plain = Policy(PolicyConfig(), _home(rooms_cleaning=False))
    refused = plain.check(Action("vacuum.robot", "clean_area", {"area": "kitchen"}), "t", "cli")
    assert refused.status == REFUSED and refused.error == "unknown_attribute"


def test_home_assistant_clean_area_service() -> None:
    entity = state_to_entity(
        {
            "entity_id": "vacuum.rover",
            "state": "docked",
            "attributes": {"supported_features": 16384},
        }
    )
    assert "cleaning_area" in entity.attributes
    older = state_to_entity(
        {"entity_id": "vacuum.old", "state": "docked", "attributes": {"supported_features": 8}}
    )
    assert "cleaning_area" not in older.attributes
    assert action_to_service(Action("vacuum.rover", "clean_area", {"area": "kitchen"})) == (
        "vacuum",
        "clean_area",
        {"entity_id": "vacuum.rover", "cleaning_area_id": ["kitchen"]},
    )


def test_fan_speed_of_a_fan_is_its_speed() -> None:
    u = LlmUnderstander(_home(rooms_cleaning=False), None)
    assert u.understand("set the fan speed to high in the study").actions == [
        Action("fan.study", "set", {"attribute": "speed", "value": "high"})
    ]


def test_two_devices_with_a_fan_speed_in_one_room_ask_which_one() -> None:
    u = LlmUnderstander(_home(rooms_cleaning=False), None)
    (step,) = u.understand("set the fan speed to low in the kitchen").steps
    assert step.error == "unknown_device"
    assert step.detail == "which one? Air conditioner (Kitchen) or Air purifier (Kitchen)"
    from hubagent.act.responses import step_reason

    assert step_reason(step) == "Which one: Air conditioner (Kitchen) or Air purifier (Kitchen)?"


def test_a_lamp_by_name_before_a_light_that_is_a_lamp_by_synonym() -> None:
    registry = _kitchen()
    registry.upsert(Entity("light.desk", "Desk lamp", area="office"))
    u = LlmUnderstander(registry, None)
    # Both kitchen lights are "lamps" only as a synonym; the desk lamp is named one.
    assert u.understand("turn on the lamp").actions == [Action("light.desk", "turn_on")]


def test_a_name_or_alias_beats_an_object_id() -> None:
    result = _cascade(_home(rooms_cleaning=False)).understand("open the garage")
    assert result.actions == [Action("cover.garage_door", "open")]  # not also light.garage


def test_docking_words_send_the_vacuum_home() -> None:
    u = LlmUnderstander(_home(rooms_cleaning=False), None)
    for text in ("charge the vacuum", "dock the robot vacuum"):
        assert u.understand(text).actions == [Action("vacuum.robot", "return_to_base")], text


def _two_rooms() -> Registry:
    registry = Registry()
    registry.load(
        [],
        [
            Area("guest", "Guest bedroom"),
            Area("master", "Master bedroom"),
            Area("store", "Store room"),
        ],
        [
            Entity(
                f"climate.{room}_ac",
                "Air conditioner",
                area=room,
                attributes={
                    "temperature": {"min": 16, "max": 30},
                    "swing_mode": {"options": ["auto", "up", "down"]},
                },
                state={"state": "cool", "temperature": 24, "swing_mode": "up"},
            )
            for room in ("guest", "master")
        ]
        + [
            Entity(
                f"humidifier.{room}",
                "Humidifier",
                area=room,
                attributes={"humidity": {"min": 0, "max": 100}, "mode": {"options": ["auto"]}},
                state={"state": "off", "humidity": 40},
            )
            for room in ("guest", "store")
        ],
    )
    return registry


def test_a_step_without_a_room_shares_its_neighbours_room() -> None:
    u = LlmUnderstander(_two_rooms(), None)
    result = u.understand(
        "Turn on the humidifier and increase the humidity by 2 in the guest bedroom"
    )
    assert result.actions == [
        Action("humidifier.guest", "turn_on"),
        Action("humidifier.guest", "set_humidity", {"humidity": 42}),
    ]
    result = u.understand(
        "Set the air conditioner in the guest bedroom to swing automatically, "
        "decrease the temperature by 3 degrees"
    )
    assert result.actions == [
        Action("climate.guest_ac", "set_swing_mode", {"swing_mode": "auto"}),
        Action("climate.guest_ac", "set_temperature", {"temperature": 21}),
    ]


def test_it_refers_to_the_device_of_the_step_before() -> None:
    u = LlmUnderstander(_two_rooms(), None)
    result = u.understand("turn off the humidifier in the store room and turn it on again")
    assert result.actions == [
        Action("humidifier.store", "turn_off"),
        Action("humidifier.store", "turn_on"),
    ]


def test_a_room_name_written_as_one_word() -> None:
    u = LlmUnderstander(_two_rooms(), None)
    assert u.understand("set the humidifier in the storeroom to auto mode").actions == [
        Action("humidifier.store", "set_mode", {"mode": "auto"})
    ]


def test_a_leading_place_belongs_to_the_next_command() -> None:
    from hubagent.understand.split import split_steps

    assert split_steps(
        "lower the heating by 2 degrees; in the study room, set the AC to 23 degrees, turn it on"
    ) == [
        "lower the heating by 2 degrees",
        "set the AC to 23 degrees in the study room",
        "turn it on",
    ]
    # A list of places after one command is still that command in each place.
    assert split_steps("turn on the light in the hall, in the kitchen, and in the bedroom") == [
        "turn on the light in the hall",
        "turn on the light in the kitchen",
        "turn on the light in the bedroom",
    ]


def _kitchen() -> Registry:
    registry = Registry()
    registry.load(
        [],
        [Area("kitchen", "Kitchen"), Area("office", "Office")],
        [
            Entity(
                f"light.{n}",
                name,
                area="kitchen",
                attributes={"brightness": {"min": 0, "max": 100}},
                state={"state": "on", "brightness": 50},
            )
            for n, name in (
                ("ceiling", "Kitchen ceiling light"),
                ("cabinet", "Under-cabinet lights"),
            )
        ]
        + [
            Entity("switch.coffee", "Coffee machine", area="kitchen"),
            Entity("climate.office_heater", "Office heater", area="office"),
        ],
    )
    return registry


def test_a_word_only_one_device_has_finds_it() -> None:
    u = LlmUnderstander(_kitchen(), None)
    assert u.understand("switch on the coffee thing").actions == [
        Action("switch.coffee", "turn_on")
    ]
    # A kind of device is no such word: never the office heater for a sauna heater.
    assert u.understand("turn on the sauna heater").steps[0].error == "unknown_device"


def test_plural_device_words_mean_all_of_them() -> None:
    u = LlmUnderstander(_kitchen(), None)
    actions = u.understand("switch the kitchen lights off").actions
    assert sorted(a.entity for a in actions) == ["light.cabinet", "light.ceiling"]
    assert {a.action for a in actions} == {"turn_off"}


def test_brighter_without_an_amount_is_a_tenth_of_the_range() -> None:
    u = LlmUnderstander(_kitchen(), None)
    assert u.understand("make the kitchen ceiling light brighter").actions == [
        Action("light.ceiling", "set_brightness", {"brightness": 60})
    ]


def test_everything_in_a_room_means_what_simply_switches() -> None:
    registry = _kitchen()
    registry.upsert(Entity("lock.kitchen_door", "Kitchen door", area="kitchen"))
    u = LlmUnderstander(registry, None)
    actions = u.understand("turn off everything in the kitchen").actions
    assert sorted(a.entity for a in actions) == ["light.cabinet", "light.ceiling", "switch.coffee"]
    assert {a.action for a in actions} == {"turn_off"}  # never the lock
    # Without a room it is too broad to guess.
    assert u.understand("turn off everything").steps[0].error == "unknown_device"


def test_turn_x_on_in_a_room_and_degrees_mean_temperature() -> None:
    registry = _two_rooms()
    registry.upsert(
        Entity(
            "cover.guest_blinds",
            "Blinds",
            area="guest",
            attributes={"position": {"min": 0, "max": 100}},
            state={"state": "open", "position": 50},
        )
    )
    u = LlmUnderstander(registry, None)
    assert u.understand("turn the humidifier on in the guest bedroom").actions == [
        Action("humidifier.guest", "turn_on")
    ]
    assert u.understand("set the guest bedroom to 21 degrees").actions == [
        Action("climate.guest_ac", "set_temperature", {"temperature": 21})
    ]


def test_attribute_names_follow_registry_changes() -> None:
    registry = _kitchen()
    assert "brightness" in registry.attribute_names() and "speed" not in registry.attribute_names()
    registry.upsert(Entity("fan.x", "Fan", attributes={"speed": {"options": ["low"]}}))
    assert "speed" in registry.attribute_names()
    registry.remove("fan.x")
    assert "speed" not in registry.attribute_names()
