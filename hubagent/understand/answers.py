"""Short spoken answers rendered from the intents package's own response templates.

Home Assistant renders these Jinja2 templates with `slots`, `state` (the first matched
entity), `query` (matched / unmatched entities) and `state_attr`; so do we, from the
registry's current state, so answers read exactly like Home Assistant's.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from dataclasses import dataclass, field
from typing import Any

from hassil import normalize_whitespace
from jinja2 import TemplateError
from jinja2.sandbox import SandboxedEnvironment

from hubagent.types import Entity

log = logging.getLogger(__name__)

_ENV = SandboxedEnvironment(autoescape=False)


@functools.lru_cache(maxsize=512)
def _compiled(template: str) -> Any:
    """Compile each response template once (compiling costs more than rendering)."""
    return _ENV.from_string(template)


@dataclass
class TemplateState:
    """The parts of a Home Assistant `State` that response templates read."""

    entity_id: str
    name: str
    state: str
    domain: str
    state_with_unit: str
    attributes: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.state


def template_state(entity: Entity) -> TemplateState:
    """An entity's current state in the shape response templates expect."""
    raw = entity.state.get("state")
    text = "unknown" if raw is None else _fmt(raw)
    unit = entity.state.get("unit_of_measurement") or entity.mqtt.get("unit_of_measurement")
    attributes = {k: v for k, v in entity.state.items() if k != "state"}
    if entity.device_class:
        attributes.setdefault("device_class", entity.device_class)
    return TemplateState(
        entity_id=entity.entity_id,
        name=entity.name,
        state=text,
        domain=entity.domain,
        state_with_unit=f"{text} {unit}" if unit else text,
        attributes=attributes,
    )


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def split_by_state(entities: list[Entity], wanted: Any) -> tuple[list[Entity], list[Entity]]:
    """(matched, unmatched): entities whose state equals the `state` slot, and the rest."""
    if wanted is None:
        return list(entities), []
    want = {str(w).lower() for w in (wanted if isinstance(wanted, list) else [wanted])}
    matched = [e for e in entities if _fmt(e.state.get("state")).lower() in want]
    unmatched = [e for e in entities if e not in matched]
    return matched, unmatched


def render_answer(
    template: str | None,
    slots: dict[str, Any],
    matched: list[Entity],
    unmatched: list[Entity],
) -> str:
    """Render one response template; "" when there is none or it fails."""
    if not template:
        return ""
    states_m = [template_state(e) for e in matched]
    states_u = [template_state(e) for e in unmatched]
    by_id = {s.entity_id: s for s in (*states_m, *states_u)}
    now = dt.datetime.now()
    template_slots = {"date": now.date(), "time": now.time(), "canceled": 0, **slots}

    def state_attr(entity_id: str, attribute: str) -> Any:
        found = by_id.get(entity_id)
        return None if found is None else found.attributes.get(attribute)

    first = states_m[0] if states_m else (states_u[0] if states_u else None)
    try:
        text = _compiled(template).render(
            slots=template_slots,
            state=first,
            query={
                "matched": states_m,
                "unmatched": states_u,
                "total_results": len(states_m) + len(states_u),
            },
            state_attr=state_attr,
        )
    except (TemplateError, TypeError, ValueError, AttributeError) as exc:
        log.warning("could not render the response template: %s", exc)
        return ""
    return normalize_whitespace(text).strip()
