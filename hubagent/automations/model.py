"""The automation model: the format's vocabulary, the validated dataclasses and the error."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hubagent.automations.yamlfile import as_tuple

TRIGGER_TYPES = ("state", "numeric_state", "mqtt", "time", "time_pattern", "hub_start")
CONDITION_TYPES = ("state", "numeric_state", "time", "and", "or", "not")
ACTION_KINDS = ("action", "say", "delay", "notify")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class AutomationError(ValueError):
    """One invalid automation: `file:line: reason`."""

    def __init__(self, file: str, line: int, reason: str) -> None:
        super().__init__(f"{file}:{line}: {reason}")
        self.file, self.line, self.reason = file, line, reason


@dataclass(frozen=True)
class Trigger:
    platform: str
    options: dict[str, Any]
    line: int
    for_s: float | None = None

    @property
    def entity_ids(self) -> tuple[str, ...]:
        return as_tuple(self.options.get("entity_id"))


@dataclass(frozen=True)
class Condition:
    kind: str
    options: dict[str, Any]
    line: int
    children: tuple[Condition, ...] = ()


@dataclass(frozen=True)
class Step:
    """One action step: kind is action | say | delay | notify."""

    kind: str
    value: Any
    line: int


@dataclass(frozen=True)
class Automation:
    id: str
    alias: str
    triggers: tuple[Trigger, ...]
    conditions: tuple[Condition, ...]
    actions: tuple[Step, ...]
    file: str
    line: int
    allow_sensitive: bool = False
    mode: str = "single"  # single: a trigger while running is ignored; parallel: runs again
    max_runs_per_minute: int = 10
    warnings: tuple[str, ...] = field(default=())
