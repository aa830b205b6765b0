"""Runs the hub's network entry points: HTTP API, Wyoming handle server, MQTT request topic.

HTTP and Wyoming share one asyncio loop in a background thread, so the hub's own threads
(paho's network loop, the outbox) stay as they are. All three go through one
`Conversations`, hence one agent, one policy and one audit log.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from hubagent.config import expand
from hubagent.conversation import Conversations
from hubagent.interfaces.http import HttpApi, resolve_token, start_http
from hubagent.interfaces.mqtt_request import REQUEST_TOPIC, MqttRequests
from hubagent.interfaces.wyoming_server import WyomingServer

if TYPE_CHECKING:
    from aiohttp import web

    from hubagent.app import Hub

log = logging.getLogger(__name__)


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


class Interfaces:
    """`start()` serves, `addresses()` says where, `stop()` closes everything."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.conversations = Conversations(hub.store, hub.agent)
        self.mqtt_requests = MqttRequests(
            hub.mqtt, self.conversations, worker=hub.cfg.mqtt.client_id
        )
        self.token: str | None = None
        self.token_file = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._wyoming: WyomingServer | None = None
        self._addresses: dict[str, str] = {}

    def start(self, timeout: float = 10.0) -> dict[str, str]:
        """Start every enabled interface; returns `addresses()`. Raises OSError when a port
        is taken, so the caller can say which one."""
        cfg = self.hub.cfg
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="hubagent-interfaces", daemon=True
        )
        self._thread.start()
        try:
            self._call(self._start_servers(), timeout)
        except BaseException:
            self.stop()
            raise
        self.mqtt_requests.start()
        scheme = "mqtts" if cfg.mqtt.tls else "mqtt"
        self._addresses["mqtt"] = (
            f"{scheme}://{_url_host(cfg.mqtt.host)}:{cfg.mqtt.port} topic {REQUEST_TOPIC}"
        )
        for name, address in self._addresses.items():
            log.info("%s: %s", name, address)
        if self.token_file is not None:
            log.info("HTTP API token: in %s (send it as 'Authorization: Bearer')", self.token_file)
        return self.addresses()

    async def _start_servers(self) -> None:
        cfg = self.hub.cfg
        if cfg.http.enabled:
            folder = expand(cfg.store.path).parent
            self.token, self.token_file = resolve_token(cfg.http.token, folder)
            api = HttpApi(self.hub, self.conversations, self.token)
            self._runner, port = await start_http(api, cfg.http.host, cfg.http.port)
            self._addresses["http"] = f"http://{_url_host(cfg.http.host)}:{port}"
        if cfg.wyoming.enabled:
            self._wyoming = WyomingServer(
                self.conversations, cfg.wyoming.host, cfg.wyoming.port, cfg.served_languages
            )
            port = await self._wyoming.start()
            self._addresses["wyoming"] = f"tcp://{_url_host(cfg.wyoming.host)}:{port}"

    async def _stop_servers(self) -> None:
        if self._wyoming is not None:
            await self._wyoming.stop()
            self._wyoming = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def _call(self, coro: Any, timeout: float) -> Any:
        assert self._loop is not None
        future: Future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return future.result(timeout)

    def addresses(self) -> dict[str, str]:
        """Where each interface listens, e.g. {"http": "http://127.0.0.1:8123", ...}."""
        return dict(self._addresses)

    def stop(self) -> None:
        """Stop serving; safe to call twice and after a failed start."""
        self.mqtt_requests.stop()
        if self._loop is not None and self._thread is not None:
            try:
                self._call(self._stop_servers(), 5.0)
            except Exception as exc:  # noqa: BLE001 - shutting down regardless
                log.warning("interfaces did not stop cleanly: %s", exc)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5.0)
            self._loop.close()
        self._loop = None
        self._thread = None
        self._addresses.clear()
