"""The MQTT request topic: other programs ask the hub over the broker.

Request: publish JSON `{text, conversation_id?, area?, id?}` to `hubagent/request`.
Reply: JSON (the Reply plus `conversation_id`, `id`, `handled_by`) to the MQTT 5 response
topic property, with the correlation data copied back, else to `hubagent/response/<id>`.

Workers subscribe to `$share/hubagent/hubagent/request` (MQTT 5 shared subscription), so
several hubs on one broker split the requests, each request reaching exactly one of them.
On MQTT 3.1.1 the plain topic is used: run a single worker there.

Response topics must lie under `hubagent/response/`: the hub account may publish to device
command topics, and a requester must not be able to aim the hub's reply at one of them.

Requests arrive with their MQTT 5 response topic and correlation data
(`MqttClient.subscribe_messages`) and are answered in worker threads, never in paho's
network thread (an LLM answer takes seconds and would stall every other message).
"""

from __future__ import annotations

import json
import logging
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from hubagent.conversation import MAX_ID_LENGTH, Conversations, valid_conversation_id
from hubagent.language import match as match_language
from hubagent.mqtt.client import MqttClient, Received

log = logging.getLogger(__name__)

REQUEST_TOPIC = "hubagent/request"
SHARED_REQUEST_TOPIC = f"$share/hubagent/{REQUEST_TOPIC}"
RESPONSE_PREFIX = "hubagent/response/"
MAX_PENDING = 64  # queued requests beyond this are answered "busy" at once
# Ids may have levels ("alice/42") so an ACL `pattern read hubagent/response/%u/#` keeps each
# requester's replies to itself; no wildcards, no empty levels.
_ID = re.compile(r"^(?=.{1,128}$)[A-Za-z0-9_.:-]+(?:/[A-Za-z0-9_.:-]+)*$")


class MqttRequests:
    """Serves `hubagent/request` for one hub."""

    def __init__(
        self, mqtt: MqttClient, conversations: Conversations, worker: str, threads: int = 2
    ) -> None:
        self.mqtt = mqtt
        self.topic_filter = SHARED_REQUEST_TOPIC if mqtt.is_v5 else REQUEST_TOPIC
        self.conversations = conversations
        self.worker = worker
        self.handled = 0
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="mqtt-request")
        self._lock = threading.Lock()
        self._pending = 0

    def start(self) -> None:
        self.mqtt.subscribe_messages(self.topic_filter, self._on_message, qos=1)

    def stop(self) -> None:
        self.mqtt.unsubscribe(self.topic_filter, self._on_message)
        self._pool.shutdown(wait=True, cancel_futures=True)

    # -- in paho's network thread: parse, then hand off --------------------------------
    def _on_message(self, message: Received) -> None:
        response_topic, correlation = message.response_topic, message.correlation_data
        try:
            request = _parse(message.payload)
            reply_to = _reply_topic(response_topic, request.get("id"))
            with self._lock:
                busy = self._pending >= MAX_PENDING
                if not busy:
                    self._pending += 1
            if busy:
                self._answer(reply_to, correlation, {"error": "busy, try again"})
                return
            try:
                self._pool.submit(self._serve, request, reply_to, correlation)
            except RuntimeError:  # stopping: the pool takes no more work
                with self._lock:
                    self._pending -= 1
                self._answer(reply_to, correlation, {"error": "worker stopping, try again"})
        except _BadRequest as exc:
            log.warning("MQTT request refused: %s", exc)
            reply_to = _reply_topic(response_topic, getattr(exc, "request_id", None))
            self._answer(reply_to, correlation, {"error": str(exc)})
        except Exception:  # noqa: BLE001 - paho would otherwise stop its loop on a raise
            log.exception("MQTT request handling failed")

    # -- in a worker thread --------------------------------------------------------------
    def _serve(self, request: dict[str, Any], reply_to: str | None, correlation: Any) -> None:
        try:
            area = None
            if request.get("area"):
                found = self.conversations.agent.registry.find_area(request["area"])
                if found is None:
                    self._answer(reply_to, correlation, {"error": "unknown area", **_ids(request)})
                    return
                area = found.id
            language = request.get("language")
            served = self.conversations.agent.languages
            if language and match_language(language, served) is None:
                error = f"language '{language}' is not served (hub: {', '.join(served)})"
                self._answer(reply_to, correlation, {"error": error, **_ids(request)})
                return
            reply, conversation_id = self.conversations.handle(
                request["text"],
                request.get("conversation_id"),
                channel="mqtt",
                area=area,
                language=language,
            )
            body = {
                **reply.to_dict(),
                "conversation_id": conversation_id,
                "handled_by": self.worker,
                **_ids(request),
            }
            with self._lock:
                self.handled += 1
            self._answer(reply_to, correlation, body)
        except Exception:  # noqa: BLE001 - one request must never stop the worker
            log.exception("MQTT request %r failed", request.get("id"))
            self._answer(reply_to, correlation, {"error": "internal error", **_ids(request)})
        finally:
            with self._lock:
                self._pending -= 1

    def _answer(self, topic: str | None, correlation: Any, body: dict[str, Any]) -> None:
        if topic is None:
            log.debug("MQTT request without response topic or id: no reply sent")
            return
        payload = json.dumps(body, default=str)
        if not self.mqtt.publish(topic, payload, qos=1, correlation_data=correlation).ok:
            log.warning("MQTT reply to %s not sent (broker unreachable); requester retries", topic)


class _BadRequest(ValueError):
    request_id: str | None = None


def _ids(request: dict[str, Any]) -> dict[str, Any]:
    return {"id": request["id"]} if request.get("id") is not None else {}


def _parse(payload: bytes) -> dict[str, Any]:
    try:
        data = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise _BadRequest("payload is not valid JSON") from None
    if not isinstance(data, dict):
        raise _BadRequest("payload must be a JSON object")
    request_id = data.get("id")
    if request_id is not None:
        request_id = str(request_id)
        if not _ID.match(request_id):
            raise _BadRequest("'id' must be 1-128 of letters, digits, _.:- and inner '/'")
        data["id"] = request_id
    text = data.get("text")
    if not isinstance(text, str) or not text.strip():
        exc = _BadRequest("'text' is required and must be a non-empty string")
        exc.request_id = request_id
        raise exc
    if data.get("conversation_id") is not None and not valid_conversation_id(
        data["conversation_id"]
    ):
        exc = _BadRequest(f"'conversation_id' must be a string of at most {MAX_ID_LENGTH}")
        exc.request_id = request_id
        raise exc
    for key in ("conversation_id", "area", "language"):
        if data.get(key) is not None and not isinstance(data[key], str):
            exc = _BadRequest(f"'{key}' must be a string")
            exc.request_id = request_id
            raise exc
    return data


def _reply_topic(response_topic: str | None, request_id: str | None) -> str | None:
    if response_topic:
        if response_topic.startswith(RESPONSE_PREFIX) and not any(
            c in response_topic for c in "+#"
        ):
            return response_topic
        log.warning(
            "MQTT response topic %r refused: not a plain topic under %s",
            response_topic,
            RESPONSE_PREFIX,
        )
        return None
    if request_id and _ID.match(str(request_id)):
        return RESPONSE_PREFIX + str(request_id)
    return None
