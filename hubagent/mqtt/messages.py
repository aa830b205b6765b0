"""What the MQTT client hands out: received messages, publish results and counters."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode

Handler = Callable[[str, bytes, bool], None]  # (topic, payload, retained)


@dataclass(frozen=True)
class Received:
    """One message with the MQTT 5 request/response properties (None on MQTT 3.1.1)."""

    topic: str
    payload: bytes
    retained: bool
    response_topic: str | None = None
    correlation_data: bytes | None = None


MessageHandler = Callable[[Received], None]


class WithProperties:
    """A MessageHandler among the plain handlers: dispatch hands it a `Received`."""

    __slots__ = ("fn", "__qualname__")

    def __init__(self, fn: MessageHandler) -> None:
        self.fn = fn
        self.__qualname__ = getattr(fn, "__qualname__", repr(fn))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, WithProperties) and other.fn == self.fn

    def __hash__(self) -> int:
        return hash(self.fn)


@dataclass
class PublishResult:
    """The outcome of one publish: `reason` says what paho or the broker reported."""

    ok: bool
    reason: str
    mid: int | None = None


@dataclass
class ClientStats:
    received: int = 0
    handler_errors: int = 0
    published: int = 0
    publish_failures: int = 0
    reconnects: int = 0


def describe(code: ReasonCode) -> str:
    """A reason code as text with its number ("Not authorized (0x87)")."""
    return f"{code} (0x{code.value:02x})"


def filter_matches(topic_filter: str, topic: str) -> bool:
    """Does `topic` match `topic_filter`? A shared subscription `$share/<group>/<filter>`
    delivers the topics matching <filter>."""
    if topic_filter.startswith("$share/"):
        parts = topic_filter.split("/", 2)
        topic_filter = parts[2] if len(parts) == 3 else ""
    return mqtt.topic_matches_sub(topic_filter, topic)


def received_from(topic: str, message: mqtt.MQTTMessage) -> Received:
    """A paho message as `Received`, with its response topic and correlation data."""
    props = getattr(message, "properties", None)
    correlation = getattr(props, "CorrelationData", None)
    return Received(
        topic,
        message.payload,
        bool(message.retain),
        getattr(props, "ResponseTopic", None) or None,
        bytes(correlation) if correlation is not None else None,
    )
