"""The login side of a connection: building the paho client, and noticing that another
client keeps taking its session over.

Two clients with the same client id kick each other: the broker closes the older
connection, both reconnect, and so on (a device account connecting as `hubagent` caused 81
kicks in 40 s). The generated broker configs bind client ids to usernames
(`use_username_as_clientid`), so only a second login with the *same account* can do this;
when it happens the hub should say so once, plainly, instead of logging a disconnect
every few hundred milliseconds.

MQTT 5 names the cause (DISCONNECT reason 0x8E "Session taken over"), but mosquitto 2.0.11
over TLS closes the socket without a DISCONNECT paho can read (measured: paho reports
0x80 "Unspecified error"). So the pattern counts too: connections the broker closes
within `short_s` of being accepted, `threshold` times within `window_s`.
"""

from __future__ import annotations

import os
import time
from collections import deque
from dataclasses import dataclass, field

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from hubagent.config import MqttConfig

SESSION_TAKEN_OVER = 0x8E  # MQTT 5 reason code 142


@dataclass
class TakeoverWatch:
    """Feed it connects and unexpected disconnects; it answers when to warn (once)."""

    threshold: int = 3
    window_s: float = 60.0
    short_s: float = 10.0
    suspected: int = 0  # short-lived connections seen in total
    warned: bool = False
    last_short: bool = False  # the last disconnect fits the pattern
    _connected_at: float | None = None
    _short: deque[float] = field(default_factory=deque)

    def connected(self, now: float | None = None) -> None:
        self._connected_at = time.monotonic() if now is None else now

    def disconnected(self, reason: int, now: float | None = None) -> str | None:
        """A disconnect the client did not ask for; a warning text the first time the
        pattern (or an explicit 0x8E) says someone else holds this client id."""
        now = time.monotonic() if now is None else now
        began, self._connected_at = self._connected_at, None
        explicit = reason == SESSION_TAKEN_OVER
        self.last_short = explicit or (began is not None and now - began <= self.short_s)
        if not self.last_short:
            return None
        self.suspected += 1
        self._short.append(now)
        while self._short and now - self._short[0] > self.window_s:
            self._short.popleft()
        if self.warned or not (explicit or len(self._short) >= self.threshold):
            return None
        self.warned = True
        if explicit:
            return "the broker says another client took over this session (reason 0x8E)"
        return (
            f"the broker closed this connection {len(self._short)} times within "
            f"{self.window_s:g} s, each soon after it was accepted: most likely another "
            "client logs in with the same client id or account (session taken over)"
        )


def new_paho_client(
    cfg: MqttConfig, client_id: str, protocol: int, status_topic: str | None
) -> mqtt.Client:
    """A paho client for `cfg`: TLS files, login, last will and reconnect backoff.

    The client id is what the broker binds the session to; with the generated configs
    (`use_username_as_clientid`) the broker replaces it by the username anyway.
    """
    v5 = protocol == mqtt.MQTTv5
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=protocol,
        clean_session=None if v5 else True,
    )
    if cfg.tls:
        try:
            client.tls_set(
                ca_certs=_expand(cfg.ca_file),
                certfile=_expand(cfg.cert_file),
                keyfile=_expand(cfg.key_file),
            )
        except OSError as exc:  # missing or unreadable CA/cert/key (ssl.SSLError included)
            raise ValueError(
                f"mqtt TLS files (ca_file={cfg.ca_file}, cert_file={cfg.cert_file}, "
                f"key_file={cfg.key_file}): {exc}"
            ) from None
    if cfg.username:
        client.username_pw_set(cfg.username, cfg.password)
    if status_topic:
        client.will_set(status_topic, "offline", qos=1, retain=True)
    client.reconnect_delay_set(cfg.reconnect_min_s, cfg.reconnect_max_s)  # type: ignore[arg-type]
    return client


def _expand(value: str | None) -> str | None:
    return os.path.expanduser(value) if value else None
