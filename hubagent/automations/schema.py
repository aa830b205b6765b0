"""Automation files -> validated dataclasses, with the file and line of every problem."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from hubagent.automations.model import Automation, AutomationError
from hubagent.automations.validation import Checker
from hubagent.automations.yamlfile import Loader, line_of

DEFAULT_NOTIFY_TOPICS = ("hubagent/notify/#",)  # never wider: see validation.NOTIFY_TREE


@dataclass
class LoadResult:
    """What one file gave: the valid automations, the errors and the warnings."""

    automations: list[Automation] = field(default_factory=list)
    errors: list[AutomationError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def load_text(
    text: str,
    file: str,
    known_entities: set[str] | None = None,
    notify_topics: Iterable[str] = DEFAULT_NOTIFY_TOPICS,
) -> LoadResult:
    """Parse one file's text: a mapping (one automation) or a list. Never raises."""
    result = LoadResult()
    try:
        data = yaml.load(text, Loader=Loader)  # noqa: S506 - Loader is a SafeLoader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        context, where = getattr(exc, "context", None), getattr(exc, "context_mark", None)
        if context and where is not None:
            problem += f" ({context} on line {where.line + 1})"
        result.errors.append(
            AutomationError(file, mark.line + 1 if mark else 1, f"invalid YAML: {problem}")
        )
        return result
    if data is None:
        return result
    items = data if isinstance(data, list) else [data]
    for item in items:
        checker = Checker(file, known_entities, notify_topics)
        try:
            automation = checker.automation(item, line_of(item, 1))
        except AutomationError as exc:
            result.errors.append(exc)
            continue
        result.automations.append(automation)
        result.warnings.extend(automation.warnings)
    return result


def load_file(
    path: Path,
    known_entities: set[str] | None = None,
    notify_topics: Iterable[str] = DEFAULT_NOTIFY_TOPICS,
) -> LoadResult:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return LoadResult(errors=[AutomationError(str(path), 1, f"cannot read: {exc}")])
    return load_text(text, str(path), known_entities, notify_topics)
