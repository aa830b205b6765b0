"""Bounded reading of Wyoming events.

The `wyoming` package's reader buffers whatever length a header declares (a 300 MB
`payload_length` grew the hub by 324 MiB), so events are read here: every part is checked
against its limit before it is read, and a larger one is refused without buffering it.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from wyoming.event import Event

MAX_TRANSCRIPT_BYTES = 4096
MAX_DATA_BYTES = 16 * 1024  # an event's data: the transcript plus its context
MAX_PAYLOAD_BYTES = 64 * 1024
HEADER_LIMIT = 64 * 1024  # the JSON header line (which may carry the data inline)


class EventTooLarge(ValueError):
    """An event whose header, data or payload is over its limit: refused, not buffered."""


class BadEvent(ValueError):
    """Bytes that are not a Wyoming event."""


def _length(header: dict[str, Any], key: str, limit: int) -> int:
    value = header.get(key)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BadEvent(f"{key} must be a non-negative integer")
    if value > limit:
        raise EventTooLarge(f"{key} {value} is over the limit of {limit} bytes")
    return value


async def read_event(reader: asyncio.StreamReader) -> Event | None:
    """One event, every part checked against its limit before it is read; None at EOF."""
    try:
        line = await reader.readuntil(b"\n")
    except asyncio.IncompleteReadError as exc:
        if exc.partial.strip():
            raise BadEvent("connection closed inside an event header") from None
        return None
    except asyncio.LimitOverrunError:
        raise EventTooLarge(f"event header over {HEADER_LIMIT} bytes") from None
    try:
        header = json.loads(line)
    except (ValueError, RecursionError):  # RecursionError: "[[[[..." nested past the stack
        raise BadEvent("event header is not JSON") from None
    if not isinstance(header, dict) or not isinstance(header.get("type"), str):
        raise BadEvent("event header without a type")
    data_length = _length(header, "data_length", MAX_DATA_BYTES)
    payload_length = _length(header, "payload_length", MAX_PAYLOAD_BYTES)
    data = header.get("data") or {}
    if not isinstance(data, dict):
        raise BadEvent("event data must be an object")
    try:
        if data_length:
            extra = json.loads(await reader.readexactly(data_length))
            if not isinstance(extra, dict):
                raise BadEvent("event data must be an object")
            data.update(extra)
        payload = await reader.readexactly(payload_length) if payload_length else None
    except asyncio.IncompleteReadError:
        raise BadEvent("connection closed inside an event") from None
    except (ValueError, RecursionError):
        raise BadEvent("event data is not JSON") from None
    return Event(type=header["type"], data=data, payload=payload)
