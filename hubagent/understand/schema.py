"""The tool schema the LLM must follow, built from the live registry.

One step is `{"e": <entity id | "none">, "a": <verb | "none">}`: the entity enum holds only
entities that exist, and each entity only admits the verbs it supports (an `anyOf` branch
per entity), so the model cannot name a device or action the home does not have. `"none"`
is the explicit way to say the command names something the home lacks. Values are read
from the command text and the entity's capabilities afterwards (see `cues`), which keeps
the generated part a dozen tokens long.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from hubagent.types import Entity

NONE = "none"


def entity_verbs(entity: Entity, questions: bool = True) -> list[str]:
    """Verbs offered to the model for an entity (all it supports, in a stable order);
    without `questions`, no `get_state` unless reading is all the entity can do (a request
    like "get the telly going" must not be answered with the TV's state)."""
    # "set" needs an attribute to set: a plain switch only turns on and off.
    verbs = [v for v in entity.verbs if v != "set" or entity.attributes]
    acting = [v for v in verbs if v != "get_state"]
    return verbs if questions or not acting else acting


def step_schema(entities: list[Entity], questions: bool = True) -> dict[str, Any]:
    """JSON schema for one step over `entities` (sorted by id for a stable grammar)."""
    branches: list[dict[str, Any]] = [
        {
            "type": "object",
            "properties": {"e": {"const": NONE}, "a": {"const": NONE}},
            "required": ["e", "a"],
            "additionalProperties": False,
        }
    ]
    for entity in sorted(entities, key=lambda e: e.entity_id):
        branches.append(
            {
                "type": "object",
                "properties": {
                    "e": {"const": entity.entity_id},
                    "a": {"enum": entity_verbs(entity, questions)},
                },
                "required": ["e", "a"],
                "additionalProperties": False,
            }
        )
    return {"anyOf": branches}


PREFILL = '{"e": "'
_MID = '", "a": "'


def _lit(text: str) -> str:
    """A GBNF string literal."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def step_grammar(entities: list[Entity], questions: bool = True) -> tuple[str, str]:
    """(prefill, GBNF) for llama.cpp: same language as `step_schema`, answer started early.

    The answer starts inside the prompt, so forced characters are read in one batch instead
    of being generated a token at a time; with one candidate only the verb is generated.
    """
    ordered = sorted(entities, key=lambda e: e.entity_id)
    end = ' "\\"}"'
    if len(ordered) == 1:
        verbs = " | ".join(_lit(v) for v in entity_verbs(ordered[0], questions))
        return f"{PREFILL}{ordered[0].entity_id}{_MID}", f"root ::= ( {verbs} ){end}\n"
    branches = []
    for entity in ordered:
        verbs = " | ".join(_lit(v) for v in entity_verbs(entity, questions))
        branches.append(f"{_lit(entity.entity_id + _MID)} ( {verbs} )")
    return PREFILL, "root ::= ( " + " | ".join(branches) + f" ){end}\n"


@dataclass
class StepChoice:
    """What the model picked for one step, after validation against the registry."""

    entity: str | None
    verb: str | None
    error: str | None = None


def parse_step(text: str, entities: dict[str, Entity]) -> StepChoice:
    """Validate the model's JSON again: entity exists, verb supported (never trust output)."""
    try:
        data = json.loads(text)
    except ValueError:
        return StepChoice(None, None, "unknown_device")
    if not isinstance(data, dict):
        return StepChoice(None, None, "unknown_device")
    entity_id, verb = data.get("e"), data.get("a")
    if entity_id == NONE or not isinstance(entity_id, str):
        return StepChoice(None, None, "unknown_device")
    entity = entities.get(entity_id)
    if entity is None:
        return StepChoice(None, None, "unknown_device")
    if not isinstance(verb, str) or verb not in entity.verbs:
        return StepChoice(entity_id, None, "unknown_attribute")
    return StepChoice(entity_id, verb)
