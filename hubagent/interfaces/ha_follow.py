"""Keeping Home Assistant's entities current in the registry.

`HaFollower.run` imports HA's entities (retrying while HA is still starting), then follows
`state_changed` events over HA's WebSocket API, so a light switched in HA's own UI is
current here at once. After every (re)connect the states are re-read once (changes made
while disconnected). When the WebSocket is unavailable (an old core, a proxy without
WebSocket), states are polled every `refresh_s` seconds and the WebSocket is tried again
a minute later. Each outage is logged once.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from hubagent.interfaces.homeassistant import HomeAssistantBridge, HomeAssistantError

log = logging.getLogger(__name__)

WEBSOCKET_RETRY_S = 60.0


class HaFollower:
    """Runs in its own thread; `close()` ends a blocking WebSocket read at once."""

    def __init__(self, bridge: HomeAssistantBridge, refresh_s: float = 5.0) -> None:
        self.bridge = bridge
        self.refresh_s = max(refresh_s, 0.5)
        self.live = False  # following events right now (for health and tests)
        self._client: Any = None  # the open WebsocketClient
        self._lock = threading.Lock()

    def run(self, stop: threading.Event) -> None:
        """Import, then follow states until `stop` is set (call `close()` too)."""
        if not self._import(stop):
            return
        warned = False
        while not stop.is_set():
            try:
                self._follow_events(stop)
                warned = False
            except Exception as exc:  # noqa: BLE001 - niquests/websocket raise many types
                if not stop.is_set() and not warned:
                    log.warning(
                        "Home Assistant live updates unavailable (%s); polling every %.0f s",
                        exc,
                        self.refresh_s,
                    )
                warned = True
            finally:
                self.live = False
            self._poll(stop, WEBSOCKET_RETRY_S if warned else self.refresh_s)

    def close(self) -> None:
        """Close the WebSocket, if open (unblocks `run`)."""
        with self._lock:
            client, self._client = self._client, None
        # homeassistant_api closes its socket only on leaving its context, which the blocked
        # reader cannot do; closing the socket it reads from is what ends the read.
        socket = getattr(client, "_ws", None)
        if socket is not None:
            try:
                socket.close()
            except Exception:  # noqa: BLE001 - closing is best effort
                log.debug("closing the Home Assistant WebSocket failed", exc_info=True)

    # -- steps ---------------------------------------------------------------------------
    def _import(self, stop: threading.Event) -> bool:
        delay = 1.0
        while not stop.is_set():
            try:
                self.bridge.import_entities()
                return True
            except HomeAssistantError as exc:
                log.warning("Home Assistant import failed, retrying in %.0f s: %s", delay, exc)
            stop.wait(delay)
            delay = min(delay * 2, 60.0)
        return False

    def _follow_events(self, stop: threading.Event) -> None:
        from homeassistant_api import WebsocketClient
        from niquests import Session

        session = Session()
        session.verify = self.bridge.verify_ssl
        with WebsocketClient(self.bridge.websocket_url, self.bridge.token, session=session) as ws:
            with self._lock:
                self._client = ws
            if stop.is_set():
                return
            self.bridge.refresh_states()  # what changed while we were not listening
            with ws.listen_events("state_changed") as events:
                self.live = True
                log.info("following Home Assistant state changes")
                for event in events:
                    if stop.is_set():
                        return
                    new_state = getattr(event, "data", {}).get("new_state")
                    if isinstance(new_state, dict):
                        self.bridge.apply_state(new_state)

    def _poll(self, stop: threading.Event, seconds: float) -> None:
        """Re-read the states every `refresh_s` for `seconds` (or until `stop`)."""
        failing = False
        waited = 0.0
        while waited < seconds and not stop.wait(self.refresh_s):
            waited += self.refresh_s
            try:
                self.bridge.refresh_states()
            except HomeAssistantError as exc:
                if not failing:
                    log.warning("Home Assistant states not refreshed (retrying): %s", exc)
                failing = True
                continue
            if failing:
                log.info("Home Assistant reachable again; states refreshed")
            failing = False
