"""LLM path: splitter, cues, tool schema and prompt (pure), then the real model end to end."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from hubagent.config import LlmConfig
from hubagent.home.registry import Registry
from hubagent.types import Action, Area, Entity
from hubagent.understand import cues, values
from hubagent.understand.llm import LlmUnderstander
from hubagent.understand.prompt import build_prefix, build_prompt
from hubagent.understand.schema import parse_step, step_grammar, step_schema
from hubagent.understand.split import split_steps


def tiny_registry() -> Registry:
    reg = Registry()
    reg.load(
        [],
        [Area("hall", "Hall"), Area("living", "Living room"), Area("bedroom", "Bedroom")],
        [
            Entity(
                "light.hall",
                "Hall light",
                area="hall",
                attributes={"brightness": {"min": 0, "max": 100}},
                state={"state": "on", "brightness": 60},
            ),
            Entity("light.bedroom", "Bedroom light", area="bedroom", state={"state": "off"}),
            Entity(
                "cover.living_blinds",
                "Blinds",
                area="living",
                attributes={"position": {"min": 0, "max": 100}},
                state={"state": "open", "position": 100},
            ),
            Entity(
                "climate.living_ac",
                "Air conditioner",
                area="living",
                aliases=("AC",),
                attributes={
                    "temperature": {"min": 16, "max": 30},
                    "hvac_mode": {"options": ["cool", "heat", "fan_only"]},
                },
                state={"state": "cool", "temperature": 24, "hvac_mode": "cool"},
            ),
            Entity("switch.bedroom_fan", "Fan", area="bedroom", state={"state": "off"}),
        ],
    )
    return reg


# -- pure parts ----------------------------------------------------------------------------
def test_split_on_commas_and_conjunctions() -> None:
    assert split_steps("turn off the hall light, close the blinds and set the AC to 22") == [
        "turn off the hall light",
        "close the blinds",
        "set the AC to 22",
    ]
    assert split_steps("Turn on the fan.") == ["Turn on the fan"]
    # An elliptical fragment borrows the verb phrase of the step before it.
    assert split_steps(
        "set the heating to 23 degrees in the hall and 27 degrees in the bedroom"
    ) == [
        "set the heating to 23 degrees in the hall",
        "set the heating to 27 degrees in the bedroom",
    ]
    assert split_steps("  ") == []


def test_values_absolute_relative_and_extremes() -> None:
    spec = {"min": 0, "max": 100}
    assert values.resolve_number(values.read_value("set it to 40%"), spec, 60) == 40
    assert (
        values.resolve_number(values.read_value("decrease the brightness by 20 percent"), spec, 60)
        == 40
    )
    assert values.resolve_number(values.read_value("increase it by 70"), spec, 60) == 100  # clamped
    assert (
        values.resolve_number(values.read_value("two degrees warmer"), {"min": 16, "max": 30}, 24)
        == 26
    )
    assert values.resolve_number(values.read_value("to the maximum level"), spec, 3) == 100
    options = {"options": ["auto", "low", "medium", "high"]}
    assert (
        values.resolve_option(
            values.read_value("set fan speed to high"), "set fan speed to high", options, "low"
        )
        == "high"
    )
    down = "decrease the fan speed by 1 level"
    assert values.resolve_option(values.read_value(down), down, options, "medium") == "low"


def test_grounding_and_missing_attributes() -> None:
    reg = tiny_registry()
    ac, hall = reg.get("climate.living_ac"), reg.get("light.hall")
    assert ac is not None and hall is not None
    assert cues.grounded(ac, reg, "set the AC in the living room to 22")
    assert not cues.grounded(ac, reg, "set the heating in the living room to 22")
    assert not cues.grounded(hall, reg, "turn on the light in the bedroom")
    known = {"brightness", "position", "temperature", "hvac_mode"}
    bedroom = reg.get("light.bedroom")
    assert bedroom is not None
    assert (
        cues.attribute_missing(bedroom, "set the bedroom light brightness to 50", known)
        == "brightness"
    )
    assert cues.attribute_missing(hall, "set the hall light brightness to 50", known) is None


def test_schema_enums_come_from_the_registry() -> None:
    reg = tiny_registry()
    schema = step_schema(reg.all())
    branches = {b["properties"]["e"]["const"]: b for b in schema["anyOf"]}
    assert set(branches) == {"none", *(e.entity_id for e in reg.all())}
    assert "set_brightness" in branches["light.hall"]["properties"]["a"]["enum"]
    assert "set_brightness" not in branches["light.bedroom"]["properties"]["a"]["enum"]
    start, grammar = step_grammar([reg.get("light.bedroom")])  # type: ignore[list-item]
    assert start.endswith('"a": "') and "light.bedroom" in start
    assert '"turn_on"' in grammar and "set_brightness" not in grammar
    # Output is validated again: unknown entity or unsupported verb never becomes an action.
    by_id = {e.entity_id: e for e in reg.all()}
    assert parse_step('{"e": "light.garage", "a": "turn_on"}', by_id).error == "unknown_device"
    assert (
        parse_step('{"e": "light.bedroom", "a": "set_brightness"}', by_id).error
        == "unknown_attribute"
    )
    assert parse_step('{"e": "none", "a": "none"}', by_id).error == "unknown_device"
    assert parse_step("not json", by_id).error == "unknown_device"
    assert parse_step('{"e": "light.hall", "a": "turn_off"}', by_id).verb == "turn_off"


def test_prompt_prefix_is_stable_and_state_free() -> None:
    reg = tiny_registry()
    prefix = build_prefix(reg)
    reg.update_state("light.hall", {"brightness": 5})
    assert build_prefix(reg) == prefix  # state changes keep the cached prefix valid
    lines = [
        ln
        for ln in prefix.splitlines()
        if ln.startswith(("light.", "cover.", "climate.", "switch."))
    ]
    assert [ln.split(" ")[0] for ln in lines] == sorted(e.entity_id for e in reg.all())
    prompt = build_prompt(prefix, "turn on the fan", '{"e": "')
    assert prompt.startswith(prefix) and prompt.endswith('<|im_start|>assistant\n{"e": "')


def test_rules_only_understander_refuses_unknown_things() -> None:
    u = LlmUnderstander(tiny_registry(), None)
    result = u.understand("turn on the garage light")
    assert [s.error for s in result.steps] == ["unknown_device"]
    result = u.understand("set the brightness of the bedroom light to 50")
    assert [s.error for s in result.steps] == ["unknown_attribute"]
    result = u.understand("what is the temperature in the living room?")
    assert result.answer is not None and "24" in result.answer
    # The speaker's area picks among same-named devices; elsewhere only when unique.
    assert u.understand("turn on the light", area="bedroom").actions == [
        Action("light.bedroom", "turn_on")
    ]
    assert u.understand("turn on the light").steps[0].error == "unknown_device"  # which one?
    assert u.understand("close the blinds", area="hall").actions == [
        Action("cover.living_blinds", "close")
    ]


# -- the real model -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def understander() -> Iterator[LlmUnderstander]:
    from hubagent.understand.modelfiles import resolve_model
    from hubagent.understand.runtime import XllamaRuntime

    runtime = XllamaRuntime(resolve_model(LlmConfig()), threads=2, context=2048)
    # always_ask: every step goes through the model, even when the wording decides it.
    yield LlmUnderstander(tiny_registry(), runtime, always_ask=True)
    runtime.close()


@pytest.mark.model
def test_model_single_command(understander: LlmUnderstander) -> None:
    result = understander.understand("dim the hall light to 30 percent")
    assert result.path == "llm"
    assert result.actions == [Action("light.hall", "set_brightness", {"brightness": 30})]


@pytest.mark.model
def test_model_multi_command_split(understander: LlmUnderstander) -> None:
    t0 = time.perf_counter()
    result = understander.understand(
        "turn off the hall light, close the blinds and set the AC two degrees warmer"
    )
    assert [s.error for s in result.steps] == [None, None, None]
    assert result.actions == [
        Action("light.hall", "turn_off"),
        Action("cover.living_blinds", "close"),
        Action("climate.living_ac", "set_temperature", {"temperature": 26}),
    ]
    assert understander.stats.calls >= 3
    assert understander.stats.cached_tokens > 0  # the stable prefix was reused
    assert time.perf_counter() - t0 < 60


@pytest.mark.model
def test_model_refuses_unknown_device_without_guessing(understander: LlmUnderstander) -> None:
    result = understander.understand("turn on the fan in the living room and open the blinds")
    assert result.steps[0].error == "unknown_device"
    assert result.steps[0].actions == []
    assert result.steps[1].actions == [Action("cover.living_blinds", "open")]
    assert json.dumps([s.to_dict() for s in result.steps])  # serialisable for the eval contract


@pytest.mark.model
def test_openai_runtime_speaks_to_a_llama_server(understander: LlmUnderstander) -> None:
    from hubagent.understand.runtime import OpenAIRuntime, XllamaRuntime

    assert isinstance(understander.runtime, XllamaRuntime)
    remote = OpenAIRuntime(understander.runtime.http_url, "default")
    reg = tiny_registry()
    remote_understander = LlmUnderstander(reg, remote, always_ask=True)
    assert not remote.supports_grammar  # the JSON-schema path is used
    result = remote_understander.understand("open the blinds")
    assert result.actions == [Action("cover.living_blinds", "open")]
    assert remote_understander.stats.calls == 1


def test_grammar_offers_no_state_reading_for_requests_and_no_set_without_attributes() -> None:
    reg = tiny_registry()
    fan = reg.get("switch.bedroom_fan")
    light = reg.get("light.hall")
    assert "get_state" in step_schema([fan])["anyOf"][1]["properties"]["a"]["enum"]
    request = step_schema([fan, light], questions=False)["anyOf"]
    fan_verbs = request[2]["properties"]["a"]["enum"]
    assert "get_state" not in fan_verbs and "set" not in fan_verbs  # a switch has nothing to set
    assert "set" in request[1]["properties"]["a"]["enum"]  # the light has a brightness
    _, grammar = step_grammar([fan], questions=False)
    assert '"get_state"' not in grammar and '"turn_on"' in grammar
    # "could you ..." is a request, not a question.
    assert split_steps("could you please turn on the fan") == ["turn on the fan"]
