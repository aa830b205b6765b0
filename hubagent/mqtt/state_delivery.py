"""State and availability delivery for `DiscoveryManager`: payloads -> registry state.

`_Tracked` is what the manager knows of one routed entity. `StateDeliveryMixin` looks up
the routes of an incoming topic, caches shared payloads for entities announced later,
parses state (templates included) and applies availability payloads. An entity whose
template goes over its budget is marked unavailable and left alone until its config changes. It is mixed into
`DiscoveryManager`, which owns the routing tables, counters and log-once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from paho.mqtt.client import topic_matches_sub

from hubagent.home.registry import Registry
from hubagent.mqtt.state_parse import Availability, extract_state, renders_empty
from hubagent.mqtt.template_guard import MAX_OUTPUT_CHARS, rendered_size
from hubagent.mqtt.templates import TemplateBudgetError, TemplateError, renderer

T = TypeVar("T")
_MAX_CACHED = 65_536  # longest state payload kept for replay to late entities
MAX_STATE_CHARS = MAX_OUTPUT_CHARS  # one state value, with or without a template
WINDOW_S = 10.0  # an entity's messages may take at most WINDOW_CPU_S of CPU per WINDOW_S
WINDOW_CPU_S = 1.0  # 10 % of a core; real devices with templates use well under 0.1 %


def _fits(values: dict[str, Any]) -> bool:
    """Whether every value is at most MAX_STATE_CHARS when printed (a raw payload on a
    sensor's topic becomes its state as is: 20 MB in, 20 MB in every /api/entities)."""
    return all(rendered_size(v, MAX_STATE_CHARS) <= MAX_STATE_CHARS for v in values.values())


@dataclass
class _Tracked:
    key: str
    discovery_topic: str
    entity_id: str
    component: str
    config: dict[str, Any]
    availability: Availability | None
    over_budget: str = ""  # why its templates are no longer rendered (until a new config)
    window_start: float = 0.0  # CPU spent on its messages in the current window
    window_cpu: float = 0.0


class StateDeliveryMixin:
    """Routes state and availability payloads of `DiscoveryManager` (see the module docstring)."""

    # Set up by DiscoveryManager.__init__.
    registry: Registry
    counters: dict[str, int]
    _lock: threading.RLock
    _tracked: dict[str, _Tracked]
    _routes: dict[str, list[tuple[str, str]]]
    _wildcards: dict[str, list[tuple[str, str]]]
    _last: dict[str, str]

    if TYPE_CHECKING:  # provided by DiscoveryManager

        def _warn_once(self, key: str, message: str, *args: Any) -> None: ...

    # -- state and availability ----------------------------------------------------------
    def _state(self, topic: str, payload: bytes) -> None:
        with self._lock:
            routes = list(self._routes.get(topic, ()))
            for pattern, extra in self._wildcards.items():
                if topic_matches_sub(pattern, topic):
                    routes.extend(extra)
        if not routes:
            return
        try:
            text = payload.decode("utf-8")
        except UnicodeDecodeError:
            self.counters["bad_state"] += 1
            self._warn_once(f"utf8:{topic}", "ignoring non-UTF-8 payload on %s", topic[:200])
            return
        if topic in self._routes and len(text) <= _MAX_CACHED:
            # Shared topics (a bridge's availability, a device's JSON state) are subscribed
            # once, so the broker will not resend them to entities announced later.
            self._last[topic] = text
        self._deliver(routes, text)

    def _replay(self, key: str, topics: list[str]) -> None:
        """Give a new entity the last message of topics that were already subscribed."""
        for topic in topics:
            text = self._last.get(topic)
            if text is not None:
                self._deliver([r for r in self._routes.get(topic, ()) if r[0] == key], text)

    def _deliver(self, routes: list[tuple[str, str]], text: str) -> None:
        for key, role in routes:
            tracked = self._tracked.get(key)
            if tracked is None or tracked.over_budget:
                continue
            if role.startswith("availability:"):
                self._availability_message(tracked, int(role.split(":", 1)[1]), text)
            else:
                self._state_message(tracked, role, text)

    def _state_message(self, tracked: _Tracked, role: str, text: str) -> None:
        key = tracked.key

        def parse() -> tuple[dict[str, Any], bool]:
            values = extract_state(tracked.component, tracked.config, role, text)
            return values, not values and renders_empty(tracked.config, role, text)

        parsed = self._budgeted(tracked, f"tpl:{key}:{role}", parse)
        if parsed is None:
            return
        values, empty = parsed
        if values and not _fits(values):
            self.counters["bad_state"] += 1
            self._warn_once(
                f"large:{key}:{role}",
                "%s: ignoring a %s value longer than %d characters",
                tracked.entity_id,
                role,
                MAX_STATE_CHARS,
            )
        elif values:
            self.registry.update_state(tracked.entity_id, values)
        elif not empty:
            self.counters["bad_state"] += 1
            self._warn_once(
                f"unparsed:{key}:{role}",
                "%s: ignoring %s payload %r",
                tracked.entity_id,
                role,
                text[:80],
            )

    def _charge(self, tracked: _Tracked, cpu_s: float) -> None:
        """Each render is within budget, but a device may send many: an entity whose
        messages take more than WINDOW_CPU_S of CPU per WINDOW_S is over budget too."""
        now = time.monotonic()
        if now - tracked.window_start > WINDOW_S:
            tracked.window_start, tracked.window_cpu = now, 0.0
        tracked.window_cpu += cpu_s
        if tracked.window_cpu > WINDOW_CPU_S and not tracked.over_budget:
            spent = f"{tracked.window_cpu:.2f} s of CPU within {WINDOW_S:.0f} s"
            self._over_budget(tracked, TemplateBudgetError(f"its state messages took {spent}"))

    def _over_budget(self, tracked: _Tracked, exc: TemplateBudgetError) -> None:
        """A template past its time or size budget is hostile or broken: the entity is
        unavailable and its templates are not rendered again until its config changes, so
        one retained message cannot cost the budget again and again."""
        tracked.over_budget = str(exc)
        self.counters["template_budget"] += 1
        self.registry.set_available(tracked.entity_id, False)
        self._warn_once(
            f"budget:{tracked.key}",
            "%s marked unavailable until its discovery config changes: %s",
            tracked.entity_id,
            exc,
        )

    def _budgeted(self, tracked: _Tracked, log_key: str, render: Callable[[], T]) -> T | None:
        """`render()` charged to the entity's CPU budget; None (counted, logged once) when a
        template fails or the entity went over its budget (this render included)."""
        start = time.thread_time()
        try:
            result = render()
        except TemplateBudgetError as exc:
            self._over_budget(tracked, exc)
            return None
        except TemplateError as exc:
            self.counters["template_errors"] += 1
            self._warn_once(log_key, "%s: %s", tracked.entity_id, exc)
            return None
        finally:
            self._charge(tracked, time.thread_time() - start)
        return None if tracked.over_budget else result

    def _availability_message(self, tracked: _Tracked, index: int, text: str) -> None:
        avail = tracked.availability
        if avail is None or index >= len(avail.topics):
            return
        _topic, on, off, template = avail.topics[index]
        value = text.strip()
        if template:
            rendered = self._budgeted(
                tracked, f"avty:{tracked.key}", lambda: renderer.render_value(template, text)
            )
            if rendered is None:
                return
            value = rendered
        if value == on:
            status = True
        elif value == off:
            status = False
        else:
            return
        avail.seen[index] = status
        avail.latest = status
        self.registry.set_available(tracked.entity_id, avail.available())
