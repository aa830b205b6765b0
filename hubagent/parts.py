"""The parts of a hub that are built from the configuration alone: the model runtime, the
distilled student, the home files. Shared by the running hub, `ask`, `eval` and `bench`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from hubagent.config import Config, expand
from hubagent.home.homefile import apply_home, load_home
from hubagent.home.registry import Registry
from hubagent.types import Entity

if TYPE_CHECKING:
    from hubagent.understand.runtime import Runtime

log = logging.getLogger(__name__)


def open_llm(cfg: Config, use_llm: bool = True) -> Runtime | None:
    """The configured model runtime, or None (logged) when it is off or cannot load."""
    if not use_llm or cfg.llm.backend == "none":
        return None
    from hubagent.understand.runtime import open_runtime

    try:
        return open_runtime(cfg.llm)
    except (ValueError, OSError, ImportError) as exc:
        log.error("LLM unavailable, running with the local matcher only: %s", exc)
        return None


def open_student(cfg: Config, registry: Registry) -> Any:
    """The configured distilled student's cascade path, or None (logged) when it is off."""
    if not cfg.llm.student:
        return None
    from hubagent.compress.student import Student, StudentPath

    try:
        student = Student.load(expand(cfg.llm.student))
    except ValueError as exc:
        log.warning("student not loaded, continuing without it: %s", exc)
        return None
    return StudentPath(student, registry, cfg.llm.student_threshold)


def load_homes(
    registry: Registry, paths: tuple[str, ...] | list[str], *, static: bool
) -> list[Entity]:
    """Apply home files; returns the static entities that have their own MQTT topics.

    With `static` False, devices only enrich what discovery announces (names, aliases, areas)
    unless they declare `mqtt` topics themselves.
    """
    own_topics: list[Entity] = []
    for path in paths:
        home = load_home(expand(path))
        apply_home(registry, home, enrich_only=True)
        for entity in home.entities:
            if static or entity.mqtt.get("command_topic") or entity.mqtt.get("state_topic"):
                registry.upsert(entity)
                if entity.mqtt:
                    own_topics.append(entity)
    return own_topics
