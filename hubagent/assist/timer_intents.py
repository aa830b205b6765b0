"""Home Assistant's timer intents over the TimerManager: start (with a name, an area or a
command to run when done), cancel, cancel all, pause, resume, add/remove time, status."""

from __future__ import annotations

from typing import Any

from hubagent.assist.dispatch import AssistRequest, Handler, error, phrase, speak
from hubagent.assist.timers import Timer, TimerError, TimerManager
from hubagent.home.registry import Registry

# Spoken fractions HA's English sentences allow for a duration ("half an hour").
_FRACTIONS = {"half": 0.5, "1/2": 0.5, "quarter": 0.25, "1/4": 0.25, "半": 0.5}


def _number(value: Any) -> float:
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).strip().casefold()
    if text in _FRACTIONS:
        return _FRACTIONS[text]
    return float(text)


def duration(slots: dict[str, Any], prefix: str = "") -> tuple[int, int, int] | None:
    """(hours, minutes, seconds) from the `hours`/`minutes`/`seconds` slots (with `prefix`,
    e.g. `start_` for the duration a timer was started with); None when none is given."""
    keys = [f"{prefix}{unit}" for unit in ("hours", "minutes", "seconds")]
    if not any(k in slots for k in keys):
        return None
    values = [_number(slots.get(k, 0)) for k in keys]
    total = values[0] * 3600 + values[1] * 60 + values[2]
    if all(v.is_integer() for v in values):
        return int(values[0]), int(values[1]), int(values[2])
    hours, rest = divmod(int(round(total)), 3600)
    return hours, *divmod(rest, 60)  # type: ignore[return-value]


def _spoken(slots: dict[str, Any]) -> dict[str, Any]:
    """Slots as response templates see them in Home Assistant: numbers as their text, so
    "1 hour" is singular (the templates compare with "1")."""
    return {k: str(v) if isinstance(v, (int, float)) else v for k, v in slots.items()}


def _seconds(parts: tuple[int, int, int]) -> int:
    return parts[0] * 3600 + parts[1] * 60 + parts[2]


class TimerIntents:
    """The handlers; `handlers()` maps HA intent names to them."""

    def __init__(self, timers: TimerManager, registry: Registry) -> None:
        self.timers = timers
        self.registry = registry

    def handlers(self) -> dict[str, Handler]:
        return {
            "HassStartTimer": self.start,
            "HassCancelTimer": self.cancel,
            "HassCancelAllTimers": self.cancel_all,
            "HassPauseTimer": self.pause,
            "HassUnpauseTimer": self.unpause,
            "HassIncreaseTimer": self.increase,
            "HassDecreaseTimer": self.decrease,
            "HassTimerStatus": self.status,
        }

    def _selector(self, request: AssistRequest, active: bool | None = None) -> dict[str, Any]:
        """What the request says about which timer (HA's name/area/start_* slots)."""
        slots = request.slots
        return {
            "name": slots.get("name"),
            "area": slots.get("area"),
            "start": duration(slots, "start_"),
            "satellite": request.satellite,
            "active": active,
        }

    def _one(self, request: AssistRequest, active: bool | None = None) -> Timer:
        return self.timers.one(**self._selector(request, active))

    def start(self, request: AssistRequest) -> str:
        parts = duration(request.slots)
        if parts is None or _seconds(parts) <= 0:
            return error("timer_not_found", request.language)
        command = request.slots.get("conversation_command")
        name = request.slots.get("name")
        try:
            self.timers.start_timer(
                _seconds(parts),
                name=str(name).strip() if name else None,
                area=request.area_name(self.registry),
                satellite=request.satellite,
                language=request.language,
                command=str(command).strip() if command else None,
                requester=request.requester,
                start_hours=parts[0],
                start_minutes=parts[1],
                start_seconds=parts[2],
            )
        except ValueError as exc:
            return phrase("too_many", request.language, reason=str(exc))
        return speak(request.intent, "command" if command else "default", _spoken(request.slots))

    def _each(self, request: AssistRequest, active: bool | None, act: Any) -> str:
        try:
            timer = self._one(request, active)
        except TimerError as exc:
            return error(exc.key, request.language)
        act(timer)
        return speak(request.intent, "default", _spoken(request.slots))

    def cancel(self, request: AssistRequest) -> str:
        return self._each(request, None, self.timers.cancel)

    def pause(self, request: AssistRequest) -> str:
        return self._each(request, True, self.timers.pause)

    def unpause(self, request: AssistRequest) -> str:
        return self._each(request, False, self.timers.resume)

    def increase(self, request: AssistRequest) -> str:
        seconds = _seconds(duration(request.slots) or (0, 0, 0))
        return self._each(request, None, lambda t: self.timers.add_time(t, seconds))

    def decrease(self, request: AssistRequest) -> str:
        seconds = _seconds(duration(request.slots) or (0, 0, 0))
        return self._each(request, None, lambda t: self.timers.add_time(t, -seconds))

    def cancel_all(self, request: AssistRequest) -> str:
        area = request.slots.get("area")
        found = self.timers.find(area=area) if area else self.timers.timers()
        for timer in found:
            self.timers.cancel(timer)
        slots = {**request.slots, "canceled": len(found)}
        return speak(request.intent, "area" if area else "default", slots)

    def status(self, request: AssistRequest) -> str:
        selector = self._selector(request)
        said = any(selector[k] for k in ("name", "area", "start"))
        found = self.timers.find(**selector) if said else self.timers.timers()
        if said and not found:
            return error("timer_not_found", request.language)
        slots = {**request.slots, "timers": [t.view() for t in found]}
        return " ".join(speak(request.intent, "default", slots).split())
