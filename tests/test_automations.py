"""Automations without a broker: schema validation with file and line, durations, the YAML
1.2 scalars, cron matching, clock triggers, and conditions against a real registry with an
injected clock. The examples in automations/ must load cleanly against the demo home."""

from __future__ import annotations

from datetime import datetime, time
from pathlib import Path

import pytest

from hubagent.automations.conditions import check, check_all
from hubagent.automations.schema import load_file, load_text
from hubagent.automations.triggers import (
    CronSpec,
    crossed,
    numeric_change_fires,
    parse_clock,
    state_change_fires,
)
from hubagent.automations.yamlfile import parse_duration
from hubagent.home.homefile import load_home
from hubagent.home.registry import Registry
from hubagent.types import Entity

ROOT = Path(__file__).resolve().parents[1]
DEMO_HOME = ROOT / "devices" / "demo-home.yaml"
EXAMPLES = ROOT / "automations"


def one(text: str, known: set[str] | None = None):
    result = load_text(text, "test.yaml", known)
    assert not result.errors, [str(e) for e in result.errors]
    assert len(result.automations) == 1
    return result.automations[0], result.warnings


def errors(text: str) -> list[tuple[int, str]]:
    result = load_text(text, "bad.yaml")
    return [(e.line, e.reason) for e in result.errors]


# -- schema --------------------------------------------------------------------------


def test_examples_load_against_the_demo_home_without_errors_or_warnings() -> None:
    known = {e.entity_id for e in load_home(DEMO_HOME).entities}
    files = sorted(EXAMPLES.glob("*.yaml"))
    assert len(files) >= 5
    ids = []
    for path in files:
        result = load_file(path, known)
        assert result.errors == [], [str(e) for e in result.errors]
        assert result.warnings == [], result.warnings
        ids += [a.id for a in result.automations]
    assert len(ids) == len(set(ids)) >= 6
    assert "unlock_on_arrival" in ids


def test_a_full_automation_parses() -> None:
    auto, warnings = one(
        """
id: door
alias: Door
trigger:
  - platform: state
    entity_id: [binary_sensor.door, binary_sensor.back]
    from: "off"
    to: on
    for: {minutes: 5, seconds: 3}
  - trigger: numeric_state
    entity_id: sensor.t
    below: 20
    for: "00:10:00"
  - {platform: mqtt, topic: "hubagent/+/button", payload: 1}
  - {platform: time, at: ["07:30", "19:00:05"]}
  - {platform: time_pattern, cron: "*/5 * * * *"}
  - platform: hub_start
condition:
  - or:
      - {condition: state, entity_id: light.a, state: [on, dim]}
      - {condition: numeric_state, entity_id: sensor.t, above: 3}
  - {condition: time, after: "18:00", before: "06:00", weekday: [Monday, tue]}
action:
  - action: {entity: light.a, action: turn_on, args: {brightness: 10}}
  - say: make the living room cozy
  - delay: 0.5
  - notify: {topic: hubagent/notify/x, message: {a: 1}}
""",
        known={"binary_sensor.door", "sensor.t", "light.a"},
    )
    assert auto.id == "door" and auto.line == 2
    state, numeric, mqtt, clock, cron, start = auto.triggers
    assert state.options["to"] == "on" and state.options["from"] == "off"  # YAML 1.2: text
    assert state.for_s == 303 and numeric.for_s == 600
    assert mqtt.options["payload"] == "1"
    assert clock.options["at"] == (time(7, 30), time(19, 0, 5))
    assert cron.options["cron"].matches(datetime(2026, 1, 1, 10, 55))
    assert start.platform == "hub_start"
    assert auto.conditions[0].kind == "or" and len(auto.conditions[0].children) == 2
    assert auto.conditions[1].options["weekday"] == ("mon", "tue")
    assert [s.kind for s in auto.actions] == ["action", "say", "delay", "notify"]
    assert auto.actions[2].value == 0.5
    assert warnings == [
        "test.yaml:6: unknown entity 'binary_sensor.back' (loaded anyway; it may be discovered later)"
    ]


def test_errors_name_the_line_and_the_other_automations_still_load() -> None:
    text = """- id: good
  trigger: [{platform: hub_start}]
  action: [{say: hello}]
- id: typo
  trigger:
    - platform: sate
      entity_id: light.a
  action: [{say: hello}]
- id: bad_duration
  trigger:
    - platform: state
      entity_id: light.a
      for: 5 minutes
  action: [{say: hello}]
"""
    result = load_text(text, "mixed.yaml")
    assert [a.id for a in result.automations] == ["good"]
    assert [str(e) for e in result.errors] == [
        "mixed.yaml:6: unknown trigger type 'sate' (one of state, numeric_state, mqtt, time, "
        "time_pattern, hub_start)",
        "mixed.yaml:13: 'for': invalid duration '5 minutes' (use 'HH:MM:SS', seconds or "
        "{minutes: 5})",
    ]


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        (
            "id: a\ntrigger: [{platform: hub_start}]\naction:\n  - say: [oops\n",
            5,
            "invalid YAML: expected ',' or ']', but got '<stream end>' (while parsing a flow "
            "sequence on line 4)",
        ),
        ("id: a b\ntrigger: [{platform: hub_start}]\naction: [{say: x}]\n", 1, "needs an 'id'"),
        ("id: a\naction: [{say: x}]\n", 1, "at least one trigger"),
        ("id: a\ntrigger: [{platform: hub_start}]\n", 1, "at least one action"),
        ("id: a\ntrigger: [{platform: hub_start}]\naction: [{say: x}]\nfoo: 1\n", 4, "'foo'"),
        (
            "id: a\ntrigger:\n  - platform: time\n    at: '25:00'\naction: [{say: x}]\n",
            4,
            "invalid time",
        ),
        (
            "id: a\ntrigger:\n  - platform: time_pattern\n    cron: '*/0 * * *'\naction: [{say: x}]\n",
            4,
            "5 fields",
        ),
        (
            "id: a\ntrigger: [{platform: hub_start}]\naction:\n  - delay: -3\n",
            4,
            "negative",
        ),
        (
            "id: a\ntrigger: [{platform: hub_start}]\naction:\n"
            "  - notify: {topic: home/front_door/set, message: UNLOCK}\n",
            4,
            "outside hubagent/notify/#",
        ),
        (
            "id: a\ntrigger: [{platform: hub_start}]\naction:\n"
            "  - action: {entity: light.a, action: unlock}\n",
            4,
            "'unlock' is not an action for light",
        ),
        (
            "id: a\ntrigger:\n  - platform: numeric_state\n    entity_id: sensor.t\n"
            "action: [{say: x}]\n",
            3,
            "'above' and/or 'below'",
        ),
        (
            "id: a\ntrigger: [{platform: hub_start}]\ncondition:\n  - condition: sometimes\n"
            "action: [{say: x}]\n",
            4,
            "unknown condition type",
        ),
        (
            "id: a\ntrigger: [{platform: mqtt, topic: 'a/#/b'}]\naction: [{say: x}]\n",
            2,
            "valid 'topic'",
        ),
    ],
)
def test_invalid_automations_are_rejected_with_line_and_reason(
    text: str, line: int, fragment: str
) -> None:
    found = errors(text)
    assert len(found) == 1, found
    assert found[0][0] == line, found
    assert fragment in found[0][1]


def test_duplicate_ids_in_one_file_and_empty_files() -> None:
    assert load_text("", "empty.yaml").automations == []
    assert load_text("# only a comment\n", "c.yaml").errors == []


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("00:05:00", 300),
        ("01:30", 5400),
        ("00:00:00.3", 0.3),
        (0.3, 0.3),
        (10, 10),
        ("2.5", 2.5),
        ({"minutes": 5}, 300),
        ({"hours": 1, "milliseconds": 500}, 3600.5),
    ],
)
def test_durations(value: object, seconds: float) -> None:
    assert parse_duration(value) == pytest.approx(seconds)


@pytest.mark.parametrize("value", ["5 minutes", "1:99", {"weeks": 1}, {"minutes": "5"}, True, -1])
def test_bad_durations(value: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(value)


# -- triggers ------------------------------------------------------------------------


def test_cron_matching() -> None:
    every5 = CronSpec.parse("*/5 * * * *")
    assert every5.matches(datetime(2026, 3, 2, 8, 35))
    assert not every5.matches(datetime(2026, 3, 2, 8, 36))
    weekday_morning = CronSpec.parse("30 7 * * mon-fri")
    assert weekday_morning.matches(datetime(2026, 3, 2, 7, 30))  # a Monday
    assert not weekday_morning.matches(datetime(2026, 3, 1, 7, 30))  # a Sunday
    sunday = CronSpec.parse("0 9 * * 0")
    assert sunday.matches(datetime(2026, 3, 1, 9, 0)) and CronSpec.parse("0 9 * * 7").matches(
        datetime(2026, 3, 1, 9, 0)
    )
    lists = CronSpec.parse("0,15 8-10/2 1 jan,6 *")
    assert lists.hours == {8, 10} and lists.minutes == {0, 15} and lists.months == {1, 6}
    assert lists.matches(datetime(2026, 6, 1, 10, 15))
    # Both day fields restricted: either matching is enough (classic cron).
    either = CronSpec.parse("0 12 13 * fri")
    assert either.matches(datetime(2026, 3, 13, 12, 0)) and either.matches(
        datetime(2026, 3, 6, 12, 0)
    )
    assert not either.matches(datetime(2026, 3, 7, 12, 0))
    for bad in ("* * * *", "60 * * * *", "* 24 * * *", "5-1 * * * *", "* * * foo *"):
        with pytest.raises(ValueError, match="cron"):
            CronSpec.parse(bad)


def test_clock_times_and_crossing_midnight() -> None:
    assert parse_clock("7:05") == time(7, 5)
    with pytest.raises(ValueError):
        parse_clock("7h")
    at = time(23, 0)
    assert crossed(datetime(2026, 1, 1, 22, 59, 59), datetime(2026, 1, 1, 23, 0, 0), at)
    assert not crossed(datetime(2026, 1, 1, 23, 0, 0), datetime(2026, 1, 1, 23, 0, 1), at)
    assert crossed(datetime(2026, 1, 1, 23, 59), datetime(2026, 1, 2, 0, 1), time(0, 0))


def test_state_and_numeric_changes() -> None:
    assert state_change_fires({"to": "on"}, "off", "ON")
    assert not state_change_fires({"to": "on"}, "on", "on")
    assert not state_change_fires({"to": "on", "from": "unavailable"}, "off", "on")
    assert state_change_fires({}, 1, 2)
    assert state_change_fires({"to": ["open", "opening"]}, "closed", "opening")
    assert numeric_change_fires({"below": 20}, 20.5, 19.9)
    assert not numeric_change_fires({"below": 20}, 19.5, 19.0)  # already below: no new event
    assert numeric_change_fires({"below": 20}, None, 19.0)
    assert not numeric_change_fires({"above": 5, "below": 10}, 4, "n/a")


# -- conditions ----------------------------------------------------------------------


@pytest.fixture
def registry() -> Registry:
    reg = Registry()
    reg.upsert(Entity("light.a", "A", state={"state": "on", "brightness": 40}))
    reg.upsert(Entity("sensor.t", "T", state={"state": "19.5"}))
    return reg


def conditions_of(text: str):
    auto, _ = one(f"id: c\ntrigger: [{{platform: hub_start}}]\naction: [{{say: x}}]\n{text}")
    return auto.conditions


def test_state_numeric_and_boolean_conditions(registry: Registry) -> None:
    now = datetime(2026, 3, 2, 12, 0)
    conds = conditions_of(
        "condition:\n"
        "  - {condition: state, entity_id: light.a, state: on}\n"
        "  - {condition: numeric_state, entity_id: sensor.t, below: 20}\n"
        "  - {condition: numeric_state, entity_id: light.a, attribute: brightness, above: 30}\n"
    )
    assert check_all(conds, registry, now)
    registry.update_state("sensor.t", {"state": "20.5"})
    assert not check_all(conds, registry, now)
    (either,) = conditions_of(
        "condition:\n  - or:\n"
        "      - {condition: state, entity_id: light.a, state: 'off'}\n"
        "      - {condition: numeric_state, entity_id: sensor.t, above: 20}\n"
    )
    assert check(either, registry, now)
    (negated,) = conditions_of(
        "condition:\n  - condition: not\n    conditions:\n"
        "      - {condition: state, entity_id: light.a, state: 'on'}\n"
    )
    assert not check(negated, registry, now)
    registry.update_state("light.a", {"state": "off"})
    assert check(negated, registry, now)
    (both,) = conditions_of(
        "condition:\n  - and:\n"
        "      - {condition: state, entity_id: light.a, state: 'off'}\n"
        "      - {condition: state, entity_id: light.missing, state: 'off'}\n"
    )
    assert not check(both, registry, now)  # an unknown entity never satisfies a condition


def test_time_windows_and_weekdays(registry: Registry) -> None:
    (night,) = conditions_of("condition:\n  - {condition: time, after: '18:00', before: '07:00'}\n")
    assert check(night, registry, datetime(2026, 3, 2, 23, 30))
    assert check(night, registry, datetime(2026, 3, 3, 6, 59))
    assert not check(night, registry, datetime(2026, 3, 2, 7, 0))
    assert not check(night, registry, datetime(2026, 3, 2, 12, 0))
    (day,) = conditions_of(
        "condition:\n  - {condition: time, after: '07:00', before: '09:00', weekday: [mon, fri]}\n"
    )
    assert check(day, registry, datetime(2026, 3, 2, 8, 0))  # Monday
    assert not check(day, registry, datetime(2026, 3, 3, 8, 0))  # Tuesday
    assert not check(day, registry, datetime(2026, 3, 6, 9, 0))  # Friday, at the end
