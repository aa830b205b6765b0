"""Voice timers: start, pause, resume, add/remove time, cancel; persisted; announced.

`TimerManager` keeps the timers in memory and in the store (`hubagent.store.assist`), so a
restart loses none: a timer that ran out while the hub was down is announced at start.
One scheduler thread sleeps until the next timer ends; wall-clock end times survive a
restart, and a condition variable wakes it when timers change. Listeners (MQTT
notifications, the Wyoming satellite that started the timer) hear `started`, `updated`,
`cancelled` and `finished`; a timer with a command ("in 10 minutes turn off the oven
light") runs it through `run_command` when it finishes, so policy applies as to any request.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from hubagent.store.assist import TimerTable

log = logging.getLogger(__name__)

MAX_TIMERS = 100  # a voice request should never be able to fill the store
MAX_SECONDS = 7 * 24 * 3600

Listener = Callable[[str, "Timer"], None]
RunCommand = Callable[["Timer"], None]


@dataclass
class Timer:
    """One timer. `ends_at` (wall clock) while running; `left` holds the rest while paused."""

    id: str
    total_seconds: int
    name: str | None = None
    area: str | None = None  # the area's name, as people say it
    satellite: str | None = None  # the device that started it
    language: str = "en"
    command: str | None = None  # a request to run when it finishes
    requester: str = "timer"
    start_hours: int = 0
    start_minutes: int = 0
    start_seconds: int = 0
    created: float = field(default_factory=time.time)
    ends_at: float | None = None
    left: float | None = None

    @property
    def is_active(self) -> bool:
        return self.ends_at is not None

    def seconds_left(self, now: float | None = None) -> float:
        if self.ends_at is None:
            return max(0.0, self.left or 0.0)
        return max(0.0, self.ends_at - (now if now is not None else time.time()))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def view(self) -> dict[str, Any]:
        """What the HTTP API, MQTT and response templates show."""
        left = int(round(self.seconds_left()))
        hours, rest = divmod(left, 3600)
        minutes, seconds = divmod(rest, 60)
        r_h, r_m, r_s = _round_time(hours, minutes, seconds)
        return {
            "id": self.id,
            "name": self.name,
            "area": self.area,
            "satellite": self.satellite,
            "command": self.command,
            "is_active": self.is_active,
            "total_seconds": self.total_seconds,
            "total_seconds_left": left,
            "seconds_left": left,
            "rounded_hours_left": r_h,
            "rounded_minutes_left": r_m,
            "rounded_seconds_left": r_s,
            "start_hours": self.start_hours,
            "start_minutes": self.start_minutes,
            "start_seconds": self.start_seconds,
            "ends_at": self.ends_at,
        }


def _round_time(hours: int, minutes: int, seconds: int) -> tuple[int, int, int]:
    """Less precision for speech, as Home Assistant does: no seconds once hours count,
    whole minutes past ten minutes, five-second steps below that."""
    if hours > 0:
        return hours, minutes, 0
    if minutes >= 10:
        return 0, minutes, 0
    if minutes > 0:
        return 0, minutes, min(55, int(round(seconds / 5) * 5))
    return 0, 0, seconds


class TimerError(Exception):
    """No timer, or several, fit a request; `key` names the intents package's error."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


class TimerManager:
    """All timers of the hub; thread-safe. `start()` launches the scheduler thread."""

    def __init__(self, table: TimerTable | None, run_command: RunCommand | None = None) -> None:
        self.table = table
        self.run_command = run_command
        self._timers: dict[str, Timer] = {}
        self._listeners: list[Listener] = []
        self._cond = threading.Condition()
        self._stop = False
        self._thread: threading.Thread | None = None
        for data in table.load() if table is not None else []:
            try:
                timer = Timer(**data)
            except TypeError:
                log.warning("timer row not understood, dropped: %r", data)
                continue
            self._timers[timer.id] = timer

    # -- listeners and lifecycle ------------------------------------------------------------
    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def _emit(self, event: str, timer: Timer) -> None:
        for listener in list(self._listeners):
            try:
                listener(event, timer)
            except Exception:  # noqa: BLE001 - one broken listener must not stop the others
                log.exception("timer listener failed on %s", event)

    def start(self) -> None:
        if self._thread is None:
            self._stop = False
            self._thread = threading.Thread(target=self._run, name="timers", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None

    # -- queries ----------------------------------------------------------------------------
    def timers(self) -> list[Timer]:
        with self._cond:
            return sorted(self._timers.values(), key=lambda t: t.seconds_left())

    def get(self, timer_id: str) -> Timer | None:
        with self._cond:
            return self._timers.get(timer_id)

    def find(
        self,
        *,
        name: str | None = None,
        area: str | None = None,
        start: tuple[int, int, int] | None = None,
        satellite: str | None = None,
        active: bool | None = None,
    ) -> list[Timer]:
        """Timers fitting what was said, narrowed the way Home Assistant narrows them:
        by name, area and starting duration; then, when still several, those of the
        satellite asking; `active` keeps only running (True) or paused (False) ones."""
        found = self.timers()
        if active is not None:
            found = [t for t in found if t.is_active == active]
        if name:
            found = [t for t in found if (t.name or "").casefold() == name.strip().casefold()]
        if area:
            found = [t for t in found if (t.area or "").casefold() == area.strip().casefold()]
        if start is not None:
            found = [t for t in found if _started(t) == _seconds(*start)]
        if len(found) > 1 and satellite:
            own = [t for t in found if t.satellite == satellite]
            found = own or found
        return found

    def one(self, **kwargs: Any) -> Timer:
        found = self.find(**kwargs)
        if not found:
            raise TimerError("timer_not_found")
        if len(found) > 1:
            raise TimerError("multiple_timers_matched")
        return found[0]

    # -- changes ----------------------------------------------------------------------------
    def start_timer(self, seconds: int, **fields: Any) -> Timer:
        seconds = int(seconds)
        if seconds <= 0 or seconds > MAX_SECONDS:
            raise ValueError(f"a timer runs 1 s to {MAX_SECONDS // 86400} days")
        with self._cond:
            if len(self._timers) >= MAX_TIMERS:
                raise ValueError(f"{MAX_TIMERS} timers are running already")
            timer = Timer(
                id=uuid.uuid4().hex[:12],
                total_seconds=seconds,
                ends_at=time.time() + seconds,
                **fields,
            )
            self._timers[timer.id] = timer
            self._save(timer)
            self._cond.notify_all()
        self._emit("started", timer)
        return timer

    def cancel(self, timer: Timer) -> None:
        with self._cond:
            if self._timers.pop(timer.id, None) is None:
                return
            self._delete(timer)
            self._cond.notify_all()
        self._emit("cancelled", timer)

    def pause(self, timer: Timer) -> None:
        with self._cond:
            if timer.ends_at is not None:
                timer.left = timer.seconds_left()
                timer.ends_at = None
                self._save(timer)
                self._cond.notify_all()
        self._emit("updated", timer)

    def resume(self, timer: Timer) -> None:
        with self._cond:
            if timer.ends_at is None:
                timer.ends_at = time.time() + (timer.left or 0.0)
                timer.left = None
                self._save(timer)
                self._cond.notify_all()
        self._emit("updated", timer)

    def add_time(self, timer: Timer, seconds: int) -> None:
        """Add (or with a negative value remove) time; a timer cut to nothing finishes."""
        with self._cond:
            if timer.ends_at is not None:
                timer.ends_at = max(time.time(), timer.ends_at + seconds)
            else:
                timer.left = max(0.0, (timer.left or 0.0) + seconds)
            timer.total_seconds = max(0, timer.total_seconds + seconds)
            self._save(timer)
            self._cond.notify_all()
        self._emit("updated", timer)

    # -- persistence and the scheduler ------------------------------------------------------
    def _save(self, timer: Timer) -> None:
        if self.table is not None:
            self.table.save(timer.id, timer.to_dict())

    def _delete(self, timer: Timer) -> None:
        if self.table is not None:
            self.table.delete(timer.id)

    def _run(self) -> None:
        while True:
            with self._cond:
                if self._stop:
                    return
                now = time.time()
                due = [
                    t for t in self._timers.values() if t.ends_at is not None and t.ends_at <= now
                ]
                for timer in due:
                    del self._timers[timer.id]
                    self._delete(timer)
                if not due:
                    ends = [t.ends_at for t in self._timers.values() if t.ends_at is not None]
                    self._cond.wait(timeout=min(ends) - now if ends else None)
                    continue
            for timer in sorted(due, key=lambda t: t.ends_at or 0):
                self._finish(timer)

    def _finish(self, timer: Timer) -> None:
        late = time.time() - (timer.ends_at or time.time())
        log.info(
            "timer %s (%s) finished%s",
            timer.id,
            timer.name or "unnamed",
            f", {late:.0f} s late (hub was down)" if late > 5 else "",
        )
        self._emit("finished", timer)
        if timer.command and self.run_command is not None:
            # Its own thread: a slow command must not delay the next timer.
            threading.Thread(
                target=self._command, args=(timer,), name="timer-command", daemon=True
            ).start()

    def _command(self, timer: Timer) -> None:
        try:
            self.run_command(timer)  # type: ignore[misc]
        except Exception:  # noqa: BLE001 - a failed command is logged, the timers go on
            log.exception("timer %s: command %r failed", timer.id, timer.command)


def _seconds(hours: int, minutes: int, seconds: int) -> int:
    return int(hours) * 3600 + int(minutes) * 60 + int(seconds)


def _started(timer: Timer) -> int:
    return _seconds(timer.start_hours, timer.start_minutes, timer.start_seconds)
