"""The LLM prompt: a stable prefix (instructions, devices, examples) and a short tail.

The prefix only changes when the registry's structure changes, and devices are listed in
sorted order, so llama.cpp's prompt cache reuses its KV cache for every request; the
command (and nothing fast-changing such as state) goes last.
"""

from __future__ import annotations

from hubagent.home.registry import Registry
from hubagent.types import Entity

INSTRUCTIONS = """You control a smart home. For ONE command, answer with one JSON object:
{"e": "<entity id>", "a": "<action>"}
Pick the entity whose device and room the command names, and the action it asks for.
Use a set_* action or "set" when the command changes a value (the value is read later).
Use "get_state" for questions. If the home has no such device in that room, answer
{"e": "none", "a": "none"}. Never pick a different kind of device.
Examples:
Command: turn off the kitchen light -> {"e": "light.kitchen_light", "a": "turn_off"}
Command: set the bedroom thermostat to 21 -> {"e": "climate.bedroom_thermostat", "a": "set_temperature"}
Command: open the garage door -> {"e": "cover.garage_door", "a": "open"}
Command: turn on the sauna heater (no sauna heater listed) -> {"e": "none", "a": "none"}"""


def device_line(entity: Entity, registry: Registry) -> str:
    """One device: id, name, area and settable attributes (no state: it changes often).

    Actions are not listed: the grammar offers each entity exactly its own verbs, and a
    short line keeps the cached prefix small.
    """
    area = registry.area(entity.area)
    where = f" ({area.name})" if area else ""
    attrs = ", ".join(sorted(entity.attributes))
    extra = f": {attrs}" if attrs else ""
    return f"{entity.entity_id}{where}{extra}"


def build_prefix(registry: Registry) -> str:
    """System turn with instructions and the sorted device list (cache-stable)."""
    lines = [device_line(e, registry) for e in registry.all()]
    return f"<|im_start|>system\n{INSTRUCTIONS}\nDevices:\n" + "\n".join(lines) + "<|im_end|>\n"


def build_prompt(prefix: str, command: str, answer_start: str = "") -> str:
    """The full prompt for one command (Qwen chat template); `answer_start` is prefilled."""
    return (
        f"{prefix}<|im_start|>user\nCommand: {command}<|im_end|>\n"
        f"<|im_start|>assistant\n{answer_start}"
    )
