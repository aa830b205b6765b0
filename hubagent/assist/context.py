"""Who is asking: the satellite (or other device) a request comes from, for one request.

Interfaces set it around `Conversations.handle`; the assistant reads it, so a timer
started from the kitchen satellite is announced on that satellite. A context variable
rather than one more argument through every layer: only the assistant needs it.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass(frozen=True)
class Origin:
    """Where a request came from."""

    satellite: str | None = None  # satellite or device id (Wyoming, HTTP), None if unknown
    channel: str = "api"


_ORIGIN: contextvars.ContextVar[Origin | None] = contextvars.ContextVar(
    "hubagent_origin", default=None
)


def current() -> Origin:
    return _ORIGIN.get() or Origin()


@contextmanager
def origin(satellite: str | None, channel: str) -> Iterator[None]:
    """Requests inside the block come from `satellite` over `channel`."""
    token = _ORIGIN.set(Origin(satellite, channel))
    try:
        yield
    finally:
        _ORIGIN.reset(token)
