"""Goals that need their subject ("the cat's dinner", never the cook's), and what the hub
offers when only the model read a request: never a verb the words contradict, and an unlock
or a gate's opening reported as needing confirmation. No broker, no model."""

from __future__ import annotations

import json

from hubagent.home.registry import Registry
from hubagent.types import Entity
from hubagent.understand import goals
from hubagent.understand.choosing import Choosing


def test_a_meal_is_a_pets_goal_only_with_the_pet() -> None:
    feeder = Entity("button.cat_feeder", "Cat feeder", area="kitchen")
    for text in ("give the cat her dinner now", "the dog wants his breakfast", "给猫吃饭"):
        assert goals.supported_by_goal(feeder, text) is not None, text
    for text in ("I'm making dinner", "what's for breakfast", "我们吃饭吧"):
        assert goals.supported_by_goal(feeder, text) is None, text


class _Stub(Choosing):
    def __init__(self, entities: list[Entity], pick: dict[str, str]) -> None:
        self.registry = Registry()
        self.registry.load([], [], entities)
        self.runtime = object()  # type: ignore[assignment]
        self._pick = pick

    def _ask(self, command: str, candidates: list[Entity]) -> str:
        return json.dumps(self._pick)

    def _why_none(self, command: str, area: str | None) -> str:
        return "no such device here"


def test_the_model_verb_the_words_contradict_is_not_offered() -> None:
    vacuum = Entity("vacuum.robot_vacuum", "Robot vacuum", state={"state": "paused"})
    stub = _Stub([vacuum], {"e": "vacuum.robot_vacuum", "a": "return_to_base"})
    step = stub._unknown_wording("please start it cleaning up", "please start it", None)
    assert not step.actions
    assert "return to base" not in step.detail
    assert step.detail == "shall I start Robot vacuum?"


def test_an_offer_to_open_a_gate_needs_confirmation() -> None:
    gate = Entity(
        "cover.driveway_gate", "Driveway gate", device_class="gate", state={"state": "closed"}
    )
    stub = _Stub([gate], {"e": "cover.driveway_gate", "a": "open"})
    step = stub._unknown_wording("let the car in", "let the car in", None)
    assert not step.actions
    assert step.error == "needs_confirmation"
    assert step.detail.startswith("shall I open")
