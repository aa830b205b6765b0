"""A temperature word is a discomfort goal only when a person or a place feels it ("I'm
hot", never "hot water"); a setting word the device lacks is refused, never replaced by its
default attribute; switching a device's sound off (关掉X的声音) is muting. No model."""

from __future__ import annotations

import pytest

from hubagent.home.registry import Registry
from hubagent.types import Entity
from hubagent.understand import acting, cues, goals
from hubagent.understand.pivot import pivot_zh

AC = Entity(
    "climate.living_room_ac",
    "Living room air conditioner",
    area="living_room",
    attributes={"temperature": {"min": 16, "max": 30, "step": 0.5}},
    state={"state": "heat", "temperature": 21},
)
SPEAKER = Entity(
    "media_player.kitchen_speaker",
    "Kitchen speaker",
    area="kitchen",
    device_class="speaker",
    attributes={"volume": {"min": 0, "max": 100}, "mute": {}},
    state={"state": "playing", "volume": 35},
)


@pytest.mark.parametrize(
    "text",
    ["I'm hot", "it's boiling in here", "the bedroom is freezing", "we're so cold",
     "too warm in here", "我好热", "这屋里太热了", "好冷啊"],
)  # fmt: skip
def test_a_person_or_place_feeling_is_a_temperature_goal(text: str) -> None:
    assert goals.supported_by_goal(AC, text) is not None, text


@pytest.mark.parametrize(
    "text",
    ["my tea needs hot water", "I'd like some cold milk", "the soup is hot water",
     "warm milk for the baby", "我想喝热水", "来杯凉茶"],
)  # fmt: skip
def test_a_temperature_word_said_of_a_thing_is_no_goal(text: str) -> None:
    assert goals.supported_by_goal(AC, text) is None, text


@pytest.mark.parametrize(
    "text",
    ["set the kitchen speaker's bass to 5", "set the bass of the kitchen speaker to 5",
     "set the kitchen speaker treble to 5", "turn the kitchen speaker's balance up"],
)  # fmt: skip
def test_a_setting_the_device_lacks_is_refused_not_the_default(text: str) -> None:
    step = acting.act(text, SPEAKER, "set", {"volume", "temperature", "brightness"})
    assert step.error == "unknown_attribute", text
    assert not step.actions


@pytest.mark.parametrize(
    "text",
    ["set the kitchen speaker to 5", "kitchen speaker volume to 5",
     "set the kitchen speaker's volume to 5", "set the volume of the kitchen speaker to 5",
     "set the kitchen speaker target to 5", "put the kitchen speaker on at 5",
     "the kitchen speaker set to 5", "turn the kitchen speaker's level up to 5"],
)  # fmt: skip
def test_legitimate_setting_forms_still_act(text: str) -> None:
    assert cues.unknown_setting_word(SPEAKER, text) is None, text
    step = acting.act(text, SPEAKER, "set", {"volume", "temperature", "brightness"})
    assert step.actions and step.actions[0].args.get("volume") == 5, text


@pytest.mark.parametrize("text", ["关掉厨房音箱的声音", "关闭音箱的声音", "把厨房音箱的声音关掉"])
def test_switching_a_devices_sound_off_is_mute(text: str) -> None:
    registry = Registry()
    registry.load([], [], [])
    assert "mute" in pivot_zh(registry, text).text.split(), text


def test_a_possessive_that_is_not_a_setting_is_not_refused() -> None:
    feeder = Entity("number.cat_feeder_portions", "Cat feeder portions")
    text = "Mochi's getting chunky - she only needs one portion a meal."
    assert cues.unknown_setting_word(feeder, text) is None
