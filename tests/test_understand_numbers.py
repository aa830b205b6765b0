"""Spelled numbers are one value ("one and a half", "a hundred and five", 一度半), the
splitter never cuts inside one, an amount alone is never a command of its own, and the verb
tables know the common synonyms of a verb. Pure functions: no broker, no model."""

from __future__ import annotations

import pytest

from hubagent.types import Entity
from hubagent.understand import tables_en, tables_zh, values, wording
from hubagent.understand.split import is_amount_only, split_steps

AC = {"min": 16, "max": 30, "step": 0.5}
PCT = {"min": 0, "max": 100}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("up by one and a half degrees", "up by 1.5 degrees"),
        ("two and a quarter", "2.25"),
        ("three and three quarters", "3.75"),
        ("3 and a half", "3.5"),
        ("a hundred and twenty", "120"),
        ("one hundred and five percent", "105 percent"),
        ("seventy five percent", "75 percent"),
        ("seventy-five", "75"),
        ("two point five", "2.5"),
        ("the bedroom one", "the bedroom one"),  # a single word is not a compound
        ("turn on the light and fan", "turn on the light and fan"),
    ],
)
def test_compound_number_phrases_are_one_value(text: str, expected: str) -> None:
    assert tables_en.spell_numbers(text, compound_only=True) == expected


@pytest.mark.parametrize(
    ("text", "current", "spec", "expected"),
    [
        ("turn the heating up by one and a half degrees", 21, AC, 22.5),
        ("turn it up by two and a half", 21, AC, 23.5),
        ("set it to twenty one and a half", 24, AC, 21.5),
        ("set the fan to seventy five percent", 30, PCT, 75),
        ("turn it down by twenty-five", 60, PCT, 35),
    ],
)
def test_spelled_values_resolve(text: str, current: float, spec: dict, expected: float) -> None:
    assert values.resolve_number(values.read_value(text), spec, current, "temperature") == expected


def test_spelled_value_out_of_range_is_refused() -> None:
    with pytest.raises(values.OutOfRange):
        values.resolve_number(values.read_value("a hundred and five percent"), PCT, 40)


@pytest.mark.parametrize(
    "text",
    [
        "turn the living room heating up by one and a half degrees",
        "turn it up by 1 and a half degrees",
        "set the speaker to a hundred and five percent",
        "set the heating to twenty two point five",
    ],
)
def test_the_splitter_never_cuts_a_value(text: str) -> None:
    assert len(split_steps(text)) == 1


def test_an_amount_alone_joins_its_neighbour_and_two_amounts_are_unclear() -> None:
    assert is_amount_only("a half degrees")
    assert is_amount_only("5 percent more")
    assert not is_amount_only("the fan")
    assert not is_amount_only("27 degrees in the living room")
    steps = split_steps("set the AC to 22 and 50 percent")
    assert len(steps) == 1
    assert values.read_value(steps[0]).unclear  # asked about, not the first half executed
    # Commands joined by "and" are still split.
    assert len(split_steps("set the hall light to 50 and the kitchen light to 20")) == 2


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("把空调调高一度半", "1.5度"),
        ("调高一点五度", "1.5度"),
        ("调高两度半", "2.5度"),
        ("一个半", "1.5个"),
    ],
)
def test_chinese_decimals_and_halves(text: str, expected: str) -> None:
    assert expected in tables_zh.fractional_numerals(text)


def _speaker() -> Entity:
    return Entity(
        entity_id="media_player.kitchen_speaker",
        name="Kitchen speaker",
        attributes={"volume": {"min": 0, "max": 100}, "mute": {}},
        state={"state": "playing", "volume": 35},
    )


def _vacuum() -> Entity:
    return Entity(
        entity_id="vacuum.robot_vacuum",
        name="Robot vacuum",
        state={"state": "paused"},
    )


@pytest.mark.parametrize("text", ["silence the speaker", "mute it", "hush the speaker"])
def test_mute_synonyms(text: str) -> None:
    assert wording.cue_verb(text, _speaker(), set()) == "mute"


@pytest.mark.parametrize(
    "text", ["get the robot vacuum cleaning", "start cleaning", "clean the floor"]
)
def test_cleaning_words_start_a_vacuum(text: str) -> None:
    assert wording.cue_verb(text, _vacuum(), set()) == "start"


def test_a_bare_device_after_and_shares_the_verb_and_the_room() -> None:
    assert split_steps("switch on the kettle and coffee machine") == [
        "switch on the kettle",
        "switch on the coffee machine",
    ]
    # The room of the first device is the second's: never another room's fan.
    assert split_steps("turn on the bedroom ceiling light and fan", rooms=("Bedroom",)) == [
        "turn on the bedroom ceiling light",
        "turn on the fan in the bedroom",
    ]


def test_a_name_with_its_own_and_is_never_split() -> None:
    assert split_steps("turn on rock and roll", names=("Rock and roll",)) == [
        "turn on Rock and roll"
    ]


@pytest.mark.parametrize(
    ("text", "verb"),
    [("把声音关掉", "mute"), ("关掉声音", "mute"), ("静音", "mute"), ("打扫一下", "start")],
)
def test_chinese_verb_synonyms(text: str, verb: str) -> None:
    from hubagent.home.registry import Registry
    from hubagent.understand.pivot import pivot_zh

    registry = Registry()
    registry.load([], [], [])
    assert verb in pivot_zh(registry, text).text.split()


def test_quieten_is_a_little_quieter() -> None:
    cue = values.read_value("quieten the speaker")
    assert values.resolve_number(cue, PCT, 35, "volume") == 25
