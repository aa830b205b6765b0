"""The automations directory: the change snapshot the engine polls, and loading every file
in it with duplicate ids rejected across files."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from hubagent.automations.model import Automation, AutomationError
from hubagent.automations.schema import load_file


def scan(directory: Path) -> dict[Path, tuple[int, int]]:
    """(mtime_ns, size) of every `*.yaml` and `*.yml` file in `directory`."""
    snapshot: dict[Path, tuple[int, int]] = {}
    if not directory.is_dir():
        return snapshot
    for path in [*directory.glob("*.yaml"), *directory.glob("*.yml")]:
        try:
            stat = path.stat()
        except OSError:
            continue  # removed between glob and stat
        snapshot[path] = (stat.st_mtime_ns, stat.st_size)
    return snapshot


def load_all(
    paths: Iterable[Path], known: set[str] | None, notify_topics: Iterable[str]
) -> tuple[list[Automation], list[AutomationError], list[str]]:
    """The valid automations of `paths` in order, the errors and the warnings; an id seen
    in an earlier file or earlier in the same file is an error."""
    automations: list[Automation] = []
    errors: list[AutomationError] = []
    warnings: list[str] = []
    seen: dict[str, Automation] = {}
    for path in paths:
        result = load_file(path, known, notify_topics)
        errors.extend(result.errors)
        warnings.extend(result.warnings)
        for automation in result.automations:
            if automation.id in seen:
                first = seen[automation.id]
                errors.append(
                    AutomationError(
                        automation.file,
                        automation.line,
                        f"duplicate id '{automation.id}' (first in {first.file}:{first.line})",
                    )
                )
                continue
            seen[automation.id] = automation
            automations.append(automation)
    return automations, errors, warnings
