"""The executor's per-action context: config lookups, clamping, templates, message list.

Shared by the platform builders (executor_platforms, executor_light) and build_messages.
"""

from __future__ import annotations

import math
from typing import Any

from hubagent.mqtt.discovery import valid_publish_topic
from hubagent.mqtt.templates import TemplateError, renderer
from hubagent.types import Entity, MqttMessage

DEFAULT_QOS = 1


class ExecutionError(ValueError):
    """An action the entity's MQTT config cannot carry out."""


class _Ctx:
    """One action on one entity: config lookups, clamping, templates, message list."""

    def __init__(self, entity: Entity, component: str) -> None:
        self.entity = entity
        self.cfg = entity.mqtt
        self.component = component
        self.messages: list[MqttMessage] = []
        qos = self.cfg.get("qos")
        self.qos = qos if qos in (0, 1, 2) else DEFAULT_QOS
        self.retain = bool(self.cfg.get("retain", False))

    def get(self, key: str, default: Any = None) -> Any:
        value = self.cfg.get(key)
        return default if value is None else value

    def fail(self, why: str) -> ExecutionError:
        return ExecutionError(f"{self.entity.entity_id}: {why}")

    def publish(self, topic_key: str, payload: Any) -> None:
        topic = self.cfg.get(topic_key)
        if not valid_publish_topic(topic):
            raise self.fail(f"no usable {topic_key} in its MQTT config")
        self.messages.append(MqttMessage(topic, str(payload), self.qos, self.retain))

    def render(self, template_key: str, value: Any, **extra: Any) -> Any:
        """HA's MqttCommandTemplate: no template -> the value itself."""
        source = self.cfg.get(template_key)
        if not source:
            return value
        variables = {"entity_id": self.entity.entity_id, "name": self.entity.name, **extra}
        try:
            return renderer.render_command(source, value, variables)
        except TemplateError as exc:
            raise self.fail(f"{template_key} failed: {exc}") from exc

    def number(self, args: dict[str, Any], key: str, attr: str | None = None) -> float:
        if key not in args:
            raise self.fail(f"missing argument {key!r}")
        try:
            value = float(args[key])
        except (TypeError, ValueError):
            raise self.fail(f"{key} must be a number, got {args[key]!r}") from None
        if not math.isfinite(value):
            raise self.fail(f"{key} must be finite")
        rng = self.entity.attributes.get(attr or key) or {}
        if isinstance(rng.get("min"), int | float):
            value = max(float(rng["min"]), value)
        if isinstance(rng.get("max"), int | float):
            value = min(float(rng["max"]), value)
        return value

    def option(self, args: dict[str, Any], key: str, attr: str) -> str:
        value = args.get(key, args.get("option", args.get("value")))
        if value is None:
            raise self.fail(f"missing argument {key!r}")
        options = (self.entity.attributes.get(attr) or {}).get("options")
        if options:
            match = [o for o in options if str(o).lower() == str(value).lower()]
            if not match:
                raise self.fail(f"{value!r} is not one of {options}")
            return str(match[0])
        return str(value)

    def simple(self, topic_key: str, payload_key: str, default: str, tpl: str = "") -> None:
        payload = self.get(payload_key, default)
        self.publish(topic_key, self.render(tpl, payload) if tpl else payload)
