"""Clock triggers (`time`, `time_pattern`) that fall due between two wall-clock readings."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any

from hubagent.automations.model import Automation
from hubagent.automations.triggers import crossed


def due_clock_triggers(
    automations: Iterable[Automation], last: datetime, now: datetime
) -> Iterator[tuple[Automation, dict[str, Any]]]:
    """(automation, trigger info) for each clock trigger due in (last, now], in order:
    a `time` trigger once per `at` passed, a `time_pattern` once per matching minute."""
    for automation in automations:
        for trigger in automation.triggers:
            if trigger.platform == "time":
                for at in trigger.options["at"]:
                    if crossed(last, now, at):
                        yield automation, {"platform": "time", "at": at.isoformat()}
            elif trigger.platform == "time_pattern":
                spec = trigger.options["cron"]
                minute = last.replace(second=0, microsecond=0) + timedelta(minutes=1)
                while minute <= now:
                    if spec.matches(minute):
                        yield automation, {"platform": "time_pattern", "at": minute.isoformat()}
                    minute += timedelta(minutes=1)
