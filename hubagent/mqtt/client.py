"""The hub's MQTT connection: paho-mqtt 2.x with TLS, reconnect, birth/will and checked publishes.

paho runs its network loop in its own thread (`loop_start`). Handlers registered with
`subscribe` run in that thread; an exception in one is caught, logged and counted so a
malformed payload can never stop message delivery. Subscriptions live here, not in the
broker session, and are sent again on every (re)connect.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections import OrderedDict
from collections.abc import Callable

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from hubagent.config import MqttConfig
from hubagent.mqtt.messages import (
    ClientStats,
    Handler,
    MessageHandler,
    PublishResult,
    Received,
    WithProperties,
    describe,
    filter_matches,
    received_from,
)
from hubagent.mqtt.takeover import TakeoverWatch, new_paho_client

__all__ = ["ClientStats", "MqttClient", "PublishResult", "Received"]

log = logging.getLogger(__name__)

ConnectionCallback = Callable[[bool], None]

_DISPATCH_MEMORY = 65_536  # distinct topics whose handlers are remembered
_ACK_MEMORY = 4096  # acks nobody waits for are forgotten; mids wrap at 65535
_PROTOCOLS = {"5": mqtt.MQTTv5, "5.0": mqtt.MQTTv5, "3.1.1": mqtt.MQTTv311, "311": mqtt.MQTTv311}


class MqttClient:
    """One MQTT connection with TLS, reconnect backoff, birth/last-will and handler dispatch."""

    def __init__(
        self,
        cfg: MqttConfig,
        *,
        client_id: str | None = None,
        status_topic: str | None = "hubagent/status",
    ) -> None:
        protocol = _PROTOCOLS.get(str(cfg.protocol).strip().lower().lstrip("v"))
        if protocol is None:
            raise ValueError(f"mqtt.protocol must be '5' or '3.1.1', got {cfg.protocol!r}")
        self.cfg = cfg
        self.status_topic = status_topic
        self.stats = ClientStats()
        self._v5 = protocol == mqtt.MQTTv5
        self._lock = threading.Lock()
        self._subs: dict[str, tuple[int, list[Handler]]] = {}
        # Dispatch index: exact topics are looked up in O(1); only wildcard and shared
        # filters are matched one by one (a 1,000-device home has ~1,000 exact filters).
        self._exact: dict[str, list[Handler]] = {}
        self._wild: dict[str, list[Handler]] = {}
        # topic -> its handlers, so wildcard filters are matched once per topic, not per
        # message (paho's topic_matches_sub builds a matcher on every call); cleared on
        # every (un)subscribe.
        self._dispatch: dict[str, tuple[Handler, ...]] = {}
        self._conn_callbacks: list[ConnectionCallback] = []
        self._connected = threading.Event()
        self._ever_connected = False
        self._failing = False  # a connection failure was already logged since the last success
        self._started = False
        self._stopping = False
        self._failed_handlers: set[int] = set()
        self._own_inputs: set[str] = set()  # topics this client serves; never published to
        self._refusals_logged: set[str] = set()  # own-input publishes already logged
        self.takeover = TakeoverWatch()
        self._loop_ident: int | None = None  # the paho network thread
        self.last_error: str | None = None
        # Acks (PUBACK / SUBACK reason codes) by message id, for callers that wait for them.
        self._acks: OrderedDict[int, ReasonCode] = OrderedDict()
        self._ack_cond = threading.Condition()

        client = new_paho_client(cfg, client_id or cfg.client_id, protocol, status_topic)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        client.on_subscribe = self._on_subscribe
        self._client = client

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Connect in the background; paho retries with backoff until stop()."""
        if self._started:
            return
        self._started = True
        self._stopping = False
        self._client.connect_async(self.cfg.host, self.cfg.port, keepalive=self.cfg.keepalive)
        self._client.loop_start()

    def wait_connected(self, timeout: float | None = None) -> bool:
        """Block until connected (True) or `timeout` seconds passed (False)."""
        return self._connected.wait(timeout)

    def stop(self, timeout: float = 2.0) -> None:
        """Publish `offline`, disconnect cleanly and stop the network thread."""
        if not self._started:
            return
        self._stopping = True
        if self.connected and self.status_topic:
            self.publish(self.status_topic, "offline", qos=1, retain=True, timeout=timeout)
        self._client.disconnect()
        self._client.loop_stop()
        self._started = False
        if self._connected.is_set():
            self._connected.clear()
            self._notify(False)

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def is_v5(self) -> bool:
        """Does this connection speak MQTT 5 (properties, shared subscriptions)?"""
        return self._v5

    def on_connection_change(self, callback: ConnectionCallback) -> None:
        """Call `callback(True|False)` (in the network thread) when the connection changes."""
        with self._lock:
            self._conn_callbacks.append(callback)

    def refuse_publish(self, topic: str) -> None:
        """Never publish to `topic`: one of the hub's own input topics (the request topic),
        so nothing the hub sends can come back to it as a request. The broker ACL denies it
        too; this also holds on MQTT 3.1.1, where a denied publish looks successful."""
        with self._lock:
            self._own_inputs.add(topic)

    # -- subscribe / publish ---------------------------------------------------------------

    def subscribe(
        self, topic_filter: str, handler: Handler, qos: int = 1, timeout: float | None = None
    ) -> bool:
        """Call `handler(topic, payload, retained)` for every message matching the filter.

        The subscription is restored after every reconnect. With `timeout`, waits for the
        SUBACK and returns whether the broker granted it; otherwise returns True.
        """
        with self._lock:
            old_qos, handlers = self._subs.get(topic_filter, (qos, []))
            handlers = [*handlers, handler]
            self._subs[topic_filter] = (max(old_qos, qos), handlers)
            exact = not any(c in topic_filter for c in "+#") and not topic_filter.startswith(
                "$share/"
            )
            (self._exact if exact else self._wild)[topic_filter] = handlers
            self._dispatch.clear()
            now = self._connected.is_set()
        if not now:
            return timeout is None  # sent by on_connect
        rc, mid = self._client.subscribe(topic_filter, qos)
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS or mid is None:
            log.warning("subscribe %s failed: %s", topic_filter, mqtt.error_string(rc))
            return False
        if timeout is None:
            return True
        if threading.get_ident() == self._loop_ident:
            return True  # called from a handler: the SUBACK cannot arrive while we wait
        code = self._wait_ack(mid, timeout)
        return code is not None and not code.is_failure

    def subscribe_messages(
        self, topic_filter: str, handler: MessageHandler, qos: int = 1, timeout: float | None = None
    ) -> bool:
        """Like `subscribe`, handing `handler` a `Received` with the MQTT 5 response topic and
        correlation data (for request/response over the broker)."""
        return self.subscribe(topic_filter, WithProperties(handler), qos, timeout)  # type: ignore[arg-type]

    def unsubscribe(self, topic_filter: str, handler: Handler | MessageHandler) -> None:
        """Stop calling `handler` for `topic_filter`; the last one gone unsubscribes."""
        with self._lock:
            qos, handlers = self._subs.get(topic_filter, (1, []))
            left = [h for h in handlers if h != handler and h != WithProperties(handler)]  # type: ignore[arg-type]
            index = self._wild if topic_filter in self._wild else self._exact
            self._dispatch.clear()
            if left:
                self._subs[topic_filter] = (qos, left)
                index[topic_filter] = left
                return
            self._subs.pop(topic_filter, None)
            index.pop(topic_filter, None)
            now = self._connected.is_set()
        if now:
            self._client.unsubscribe(topic_filter)

    def publish(
        self,
        topic: str,
        payload: str | bytes,
        qos: int = 1,
        retain: bool = False,
        timeout: float | None = None,
        correlation_data: bytes | None = None,
    ) -> PublishResult:
        """Publish and check every outcome paho and the broker can report.

        Without `timeout` a QoS 1 publish is ok once queued on the connection. With it, the
        PUBACK is awaited: MQTT 5 reason codes >= 0x80 (e.g. 0x87 Not authorized) are
        failures, 0x10 (no matching subscribers) is not. `correlation_data` is sent as the
        MQTT 5 property (dropped on 3.1.1, which has none).
        """
        if topic in self._own_inputs:
            if topic not in self._refusals_logged:  # once per topic, not per retry
                self._refusals_logged.add(topic)
                log.warning("refused to publish to %s: the hub's own input topic", topic[:200])
            return self._result(False, "refused: the hub's own input topic")
        if not self._connected.is_set():
            # paho would queue a QoS>0 message and send it after reconnecting; the caller's
            # outbox owns retries, so refuse here to avoid sending it twice.
            return self._result(False, "not connected")
        props = None
        if correlation_data is not None and self._v5:
            props = Properties(PacketTypes.PUBLISH)
            props.CorrelationData = correlation_data
        try:
            info = self._client.publish(topic, payload, qos=qos, retain=retain, properties=props)
        except (ValueError, TypeError) as exc:  # bad topic / payload type / qos
            return self._result(False, f"invalid publish: {exc}")
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            reason = mqtt.error_string(info.rc)
            if info.rc == MQTTErrorCode.MQTT_ERR_QUEUE_SIZE:
                reason = "queue full: " + reason
            return self._result(False, reason, info.mid)
        if timeout is not None and threading.get_ident() == self._loop_ident:
            # Called from a handler: the network thread cannot wait for its own PUBACK.
            log.debug("publish to %s from the network thread: not waiting for the ack", topic)
            timeout = None
        if timeout is None:
            return self._result(True, "queued", info.mid)
        if qos == 0:
            try:
                info.wait_for_publish(timeout)
            except RuntimeError as exc:  # paho: connection lost while waiting
                return self._result(False, str(exc), info.mid)
            ok = info.is_published()
            return self._result(ok, "sent" if ok else "timeout", info.mid)
        code = self._wait_ack(info.mid, timeout)
        if code is None:
            return self._result(False, f"no PUBACK within {timeout:g} s", info.mid)
        return self._result(not code.is_failure, describe(code), info.mid)

    # -- internals -------------------------------------------------------------------------

    def _result(self, ok: bool, reason: str, mid: int | None = None) -> PublishResult:
        with self._lock:
            if ok:
                self.stats.published += 1
            else:
                self.stats.publish_failures += 1
        if not ok:
            log.debug("publish failed: %s", reason)
        return PublishResult(ok, reason, mid)

    def _wait_ack(self, mid: int, timeout: float) -> ReasonCode | None:
        with self._ack_cond:
            self._ack_cond.wait_for(lambda: mid in self._acks, timeout)
            return self._acks.pop(mid, None)

    def _record_ack(self, mid: int, code: ReasonCode) -> None:
        with self._ack_cond:
            self._acks[mid] = code
            while len(self._acks) > _ACK_MEMORY:
                self._acks.popitem(last=False)
            self._ack_cond.notify_all()

    def _notify(self, up: bool) -> None:
        with self._lock:
            callbacks = list(self._conn_callbacks)
        for callback in callbacks:
            try:
                callback(up)
            except Exception:
                log.exception("connection-change callback %r failed", callback)

    def _on_connect(self, client: mqtt.Client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            self.last_error = f"connection refused: {describe(reason_code)}"
            if not self._failing:  # paho retries with backoff; say it once, not every time
                self._failing = True
                log.warning(
                    "MQTT %s:%s refused the connection: %s; retrying",
                    self.cfg.host,
                    self.cfg.port,
                    reason_code,
                )
            return
        self._loop_ident = threading.get_ident()
        sock = client.socket()
        if sock is not None:
            try:
                # paho leaves Nagle on: QoS 1 round trips would take ~88 ms instead of ~0.3.
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError as exc:
                log.debug("TCP_NODELAY not set: %s", exc)
        with self._lock:
            if self._ever_connected:
                self.stats.reconnects += 1
            self._ever_connected = True
            self._failing = False
            self.last_error = None
            self._connected.set()
            self.takeover.connected()
            subs = [(f, qos) for f, (qos, _) in self._subs.items()]
        for topic_filter, qos in subs:
            client.subscribe(topic_filter, qos)
        if self.status_topic:
            client.publish(self.status_topic, "online", qos=1, retain=True)
        log.info("MQTT connected to %s:%s", self.cfg.host, self.cfg.port)
        self._notify(True)

    def _on_connect_fail(self, client: mqtt.Client, userdata) -> None:
        self.last_error = "connection failed (broker unreachable or TLS handshake refused)"
        if not self._failing:
            self._failing = True
            log.warning("MQTT %s:%s: %s; retrying", self.cfg.host, self.cfg.port, self.last_error)

    def _on_disconnect(self, client: mqtt.Client, userdata, flags, reason_code, properties) -> None:
        was = self._connected.is_set()
        self._connected.clear()
        refused = (self.last_error or "").startswith("connection refused")
        if reason_code.is_failure and (was or not refused):  # keep the CONNACK's reason
            self.last_error = f"disconnected: {describe(reason_code)}"
        if was:
            taken = None if self._stopping else self.takeover.disconnected(reason_code.value)
            level = logging.INFO if self._stopping else logging.WARNING
            if self.takeover.warned and self.takeover.last_short and not taken:
                level = logging.DEBUG  # said once below; not a line per kick
            log.log(level, "MQTT disconnected: %s", reason_code)
            if taken:
                log.error(
                    "MQTT %s:%s as %r: %s. The broker binds client ids to accounts, so "
                    "another process uses this account: stop it or give it its own account",
                    self.cfg.host,
                    self.cfg.port,
                    self.cfg.username,
                    taken,
                )
            self._notify(False)
        elif reason_code.is_failure and not self._failing:
            self._failing = True
            log.warning("MQTT %s:%s: %s; retrying", self.cfg.host, self.cfg.port, self.last_error)

    def _on_publish(self, client: mqtt.Client, userdata, mid, reason_code, properties) -> None:
        self._record_ack(mid, reason_code)

    def _on_subscribe(self, client: mqtt.Client, userdata, mid, reason_codes, properties) -> None:
        self._record_ack(mid, reason_codes[0])

    def _on_message(self, client: mqtt.Client, userdata, message: mqtt.MQTTMessage) -> None:
        try:
            topic = message.topic
        except UnicodeDecodeError:
            log.warning("dropped a message whose topic is not UTF-8")
            return
        with self._lock:
            self.stats.received += 1
            handlers = self._dispatch.get(topic)
            if handlers is None:
                handlers = (
                    *self._exact.get(topic, ()),
                    *(h for f, hs in self._wild.items() if filter_matches(f, topic) for h in hs),
                )
                if len(self._dispatch) >= _DISPATCH_MEMORY:
                    self._dispatch.clear()  # topics are unbounded in a hostile home
                self._dispatch[topic] = handlers
        for handler in handlers:
            try:
                if type(handler) is WithProperties:
                    handler.fn(received_from(topic, message))
                else:
                    handler(topic, message.payload, bool(message.retain))
            except Exception as exc:
                with self._lock:
                    self.stats.handler_errors += 1
                    first = id(handler) not in self._failed_handlers
                    self._failed_handlers.add(id(handler))
                # The traceback once per handler; later failures are one line each.
                log.warning(
                    "handler %s failed on %s: %s: %s",
                    getattr(handler, "__qualname__", handler),
                    topic,
                    type(exc).__name__,
                    exc,
                    exc_info=first,
                )
