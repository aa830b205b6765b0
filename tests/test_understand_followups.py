"""Follow-ups in one conversation: the previous turn's devices are context, never a
substitute for a device the new request names itself (no broker, no model)."""

from __future__ import annotations

from pathlib import Path

from hubagent.act.policy import Policy
from hubagent.agent import Agent
from hubagent.config import Config
from hubagent.conversation import Conversations
from hubagent.home.registry import Registry
from hubagent.store.db import Store
from hubagent.types import Action, Area, Entity
from hubagent.understand.cascade import Cascade
from hubagent.understand.llm import LlmUnderstander
from hubagent.understand.matcher import LocalMatcher

_DIM = {"brightness": {"min": 0, "max": 100}}


def _registry() -> Registry:
    registry = Registry()
    registry.load(
        [],
        [Area("kitchen", "Kitchen"), Area("office", "Office"), Area("living_room", "Living room")],
        [
            Entity("light.kitchen", "Kitchen light", area="kitchen", attributes=dict(_DIM),
                   state={"state": "off", "brightness": 0}),
            Entity("light.desk_lamp", "Desk lamp", area="office", attributes=dict(_DIM),
                   state={"state": "off", "brightness": 0}),
            Entity("light.ceiling", "Ceiling light", area="office", attributes=dict(_DIM),
                   state={"state": "on", "brightness": 80}),
            Entity("climate.living_room_ac", "Air conditioner", area="living_room",
                   attributes={"temperature": {"min": 16, "max": 30},
                               "fan_mode": {"options": ["auto", "low", "high"]}},
                   state={"state": "cool", "temperature": 24, "fan_mode": "auto"}),
            Entity("fan.living_room", "Fan", area="living_room",
                   attributes={"preset_mode": {"options": ["low", "medium", "high"]}},
                   state={"state": "off"}),
        ],
    )  # fmt: skip
    return registry


def _conversations(tmp_path: Path) -> tuple[Conversations, Store]:
    registry = _registry()
    cfg = Config()
    cascade = Cascade(LocalMatcher(registry, "en"), LlmUnderstander(registry, None, "en"))
    agent = Agent(registry, cascade, Policy(cfg.policy, registry), None, None, "en")
    store = Store(tmp_path / "hub.db")
    return Conversations(store, agent), store


def _turns(tmp_path: Path, *texts: str) -> list[list[Action]]:
    conversations, store = _conversations(tmp_path)
    with store:
        cid = None
        out = []
        for text in texts:
            reply, cid = conversations.handle(text, cid)
            out.append(list(reply.actions))
        return out


def test_a_pronoun_after_a_named_device_is_that_device(tmp_path: Path) -> None:
    first, second = _turns(
        tmp_path, "turn on the kitchen light", "turn on the desk lamp and dim it to 30%"
    )
    assert first == [Action("light.kitchen", "turn_on")]
    assert {a.entity for a in second} == {"light.desk_lamp"}
    assert Action("light.desk_lamp", "set_brightness", {"brightness": 30}) in second


def test_the_fan_after_air_conditioner_talk_is_the_fan(tmp_path: Path) -> None:
    _, second = _turns(
        tmp_path, "set the air conditioner to 22", "turn on the fan and set it to high"
    )
    assert {a.entity for a in second} == {"fan.living_room"}
    assert Action("fan.living_room", "set_preset_mode", {"preset_mode": "high"}) in second


def test_it_alone_is_the_previous_turns_device(tmp_path: Path) -> None:
    _, second = _turns(tmp_path, "turn on the desk lamp", "dim it to 40%")
    assert second == [Action("light.desk_lamp", "set_brightness", {"brightness": 40})]
