"""Structure by code: splitting, numbers and amounts per language, Chinese read through the
registry's aliases, the verifier. Pure functions: no broker, no model."""

from __future__ import annotations

import pytest

from hubagent.home.registry import Registry
from hubagent.types import Action, Area, Entity, Step, Understanding
from hubagent.understand import tables_zh, values
from hubagent.understand.llm import LlmUnderstander
from hubagent.understand.pivot import pivot_zh
from hubagent.understand.split import split_steps
from hubagent.understand.verify import verify

PCT = {"min": 0, "max": 100}


@pytest.mark.parametrize(
    ("text", "current", "expected"),
    [
        ("dim it to a quarter", 80, 25),
        ("dim it by a third", 60, 40),
        ("halve it", 20, 10),
        ("twice as bright", 40, 80),
        ("a bit brighter", 60, 70),
        ("up by 15 percent", 35, 50),  # points, not x1.15
        ("all the way up", 80, 100),
        ("bring it down a third of the way", 100, 67),
        ("put it halfway", 70, 50),
        ("increase it by 70", 60, 100),  # a change that overshoots is clamped
    ],
)
def test_amounts_on_a_percent_scale(text: str, current: float, expected: float) -> None:
    assert values.resolve_number(values.read_value(text), PCT, current, "brightness") == expected


def test_explicit_values_out_of_range_or_off_step_are_refused_and_signs_kept() -> None:
    with pytest.raises(values.OutOfRange):  # "-5 percent" is not 5 percent
        values.resolve_number(values.read_value("set it to -5 percent"), PCT, 50, "brightness")
    with pytest.raises(values.OutOfRange):
        values.resolve_number(values.read_value("set it to 35"), {"min": 16, "max": 30}, 21)
    with pytest.raises(values.OutOfRange):
        values.resolve_number(values.read_value("to 52"), {"min": 35, "max": 70, "step": 5}, 50)


def test_temperature_and_humidity_amounts() -> None:
    ac = {"min": 16, "max": 30, "step": 0.5}
    assert values.resolve_number(values.read_value("a bit warmer"), ac, 21, "temperature") == 22
    half = values.read_value("nudge it down half a degree")
    assert values.resolve_number(half, ac, 21, "temperature") == 20.5
    two = values.read_value("two degrees warmer")
    assert values.resolve_number(two, ac, 21, "temperature") == 23
    hum = {"min": 35, "max": 70, "step": 5}
    assert values.resolve_number(values.read_value("a bit higher"), hum, 50, "humidity") == 55
    # Warmer light is fewer kelvin.
    kelvin = {"min": 2200, "max": 6500}
    warm = values.read_value("as warm as it goes")
    assert values.resolve_number(warm, kelvin, 3000, "color_temp") == 2200


def test_chinese_numerals() -> None:
    assert [tables_zh.zh_number(t) for t in ("二十三", "两百", "一百二", "一百零二", "十五")] == [
        23,
        200,
        120,
        102,
        15,
    ]
    assert "30 percent" in tables_zh.numerals("百分之三十")
    assert "23 degrees" in tables_zh.numerals("二十三度")


def test_fillers_are_not_commands_and_connectors_split() -> None:
    assert split_steps("bedroom light to 45, please") == ["bedroom light to 45"]
    assert split_steps("flick the telly lamp on, would you?") == ["flick the telly lamp on"]
    assert split_steps("Um, could you get the, uh, the hoover going again?") == [
        "get the hoover going again?"
    ]
    assert split_steps("关掉卧室的灯，空调调到二十三度，再把窗帘拉上") == [
        "关掉卧室的灯",
        "空调调到二十三度",
        "窗帘拉上",
    ]
    assert split_steps("客厅的灯都关了吧") == ["客厅的灯都关了吧"]


def _home() -> Registry:
    registry = Registry()
    registry.load(
        [],
        [
            Area("living_room", "Living room", aliases=("客厅",)),
            Area("bedroom", "Bedroom", aliases=("卧室",)),
        ],
        [
            Entity("light.ceiling", "Living room ceiling light", area="living_room",
                   aliases=("main light", "客厅主灯"), attributes={"brightness": PCT},
                   state={"state": "on", "brightness": 60}),
            Entity("climate.ac", "Living room air conditioner", area="living_room",
                   aliases=("客厅空调",),
                   attributes={"temperature": {"min": 16, "max": 30, "step": 0.5}},
                   state={"state": "heat", "temperature": 21}),
            Entity("cover.curtains", "Bedroom curtains", area="bedroom",
                   aliases=("curtains", "窗帘"), attributes={"position": PCT},
                   state={"state": "closed", "position": 0}),
            Entity("lock.front", "Front door lock", area="living_room", aliases=("大门",),
                   state={"state": "locked"}),
        ],
    )  # fmt: skip
    return registry


def test_chinese_is_read_through_the_homes_aliases() -> None:
    registry = _home()
    assert pivot_zh(registry, "客厅空调调高两度").text == (
        "the Living room air conditioner raise by 2 degrees"
    )
    understander = LlmUnderstander(registry, None)
    assert understander.understand("客厅空调调高两度").actions == [
        Action("climate.ac", "set_temperature", {"temperature": 23})
    ]
    assert understander.understand("客厅主灯再亮一点").actions == [
        Action("light.ceiling", "set_brightness", {"brightness": 70})
    ]
    # The living room has no curtains: never the bedroom's.
    step = understander.understand("把客厅的窗帘关上").steps[0]
    assert step.error == "unknown_device" and not step.actions


def test_indirect_requests_use_goals_and_the_verifier_never_invents() -> None:
    registry = _home()
    understander = LlmUnderstander(registry, None)
    assert understander.understand("I'm a bit chilly", "living_room").actions == [
        Action("climate.ac", "set_temperature", {"temperature": 22})
    ]
    # A toggle on a locked lock is an unlock (confirmed later by the policy).
    result = Understanding("toggle the front door", [Step("toggle the front door",
                           [Action("lock.front", "toggle")])], "local")  # fmt: skip
    assert verify(registry, result).actions == [Action("lock.front", "unlock")]
    # An explicit value outside the range is refused, not clamped.
    high = Understanding("set the ac to 35", [Step("set the ac to 35",
                         [Action("climate.ac", "set_temperature", {"temperature": 35})])], "local")  # fmt: skip
    checked = verify(registry, high)
    assert checked.actions == [] and checked.steps[0].error == "out_of_range"


def test_a_flood_is_refused_at_once() -> None:
    from hubagent.understand.cascade import Cascade

    cascade = Cascade(None, LlmUnderstander(_home(), None))
    for text in ("turn on the light " * 600, "把灯打开，" * 50):
        result = cascade.understand(text)
        assert result.actions == [] and result.steps[0].error == "not_allowed"


def test_negated_commands_and_questions_never_act() -> None:
    from hubagent.understand.cascade import Cascade

    cascade = Cascade(None, LlmUnderstander(_home(), None))
    for text in ("don't turn on the main light", "不要打开客厅主灯"):
        result = cascade.understand(text)
        assert result.actions == [] and result.steps[0].error == "not_allowed", text
    # "don't ask me again" negates asking, not the command before it.
    kept = cascade.understand("lock the front door - don't ask me again")
    assert kept.actions == [Action("lock.front", "lock")]
