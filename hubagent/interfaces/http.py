"""The hub's HTTP API on aiohttp.

aiohttp: well kept, asyncio-native, a small footprint on a hub, and the same stack Home
Assistant uses. Endpoints (documented in `GET /api/openapi.json`):

- `POST /api/conversation` {text, language?, conversation_id?, area?} -> the Reply
- `POST /api/actions` {actions: [Action...]} -> the Reply (same policy and audit as text)
- `GET /api/entities[?area=]` -> entities with state and verbs
- `GET /api/health`, `GET /api/openapi.json` -> open without a token: container health
  checks and API explorers need them, and neither reveals names, states or secrets.

Every other call needs `Authorization: Bearer <token>` (compared in constant time). The
token is `http.token` (env HUBAGENT_HTTP_TOKEN); without one, the hub generates a token at
first start and keeps it in `<store folder>/http-token` (mode 0600); the log names the file,
never the token. Agent calls block (matcher, LLM, SQLite), so they run in a worker thread.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import os
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from hubagent.agent import Reply
from hubagent.conversation import MAX_ID_LENGTH, Conversations, valid_conversation_id
from hubagent.interfaces.openapi import openapi_document
from hubagent.language import match as match_language
from hubagent.types import Action

if TYPE_CHECKING:
    from hubagent.app import Hub

log = logging.getLogger(__name__)

TOKEN_FILE = "http-token"
PUBLIC_PATHS = frozenset({"/api/health", "/api/openapi.json"})
MAX_BODY = 64 * 1024  # requests are sentences and a few actions

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class BadRequest(ValueError):
    """A client error whose message is safe to send back."""


def resolve_token(configured: str | None, folder: Path) -> tuple[str, Path | None]:
    """The API token and, when generated or reused from disk, the file that holds it."""
    if configured:
        return configured, None
    path = folder / TOKEN_FILE
    try:
        existing = path.read_text(encoding="utf-8").strip()
    except OSError:
        existing = ""
    if existing:
        os.chmod(path, 0o600)  # in case it was loosened since
        return existing, path
    token = secrets.token_urlsafe(32)
    folder.mkdir(parents=True, exist_ok=True)
    # Created 0600 from the start: no window in which another user could read it.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(token + "\n")
    os.chmod(path, 0o600)
    return token, path


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def _json_body(request: web.Request) -> dict[str, Any]:
    try:
        data = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise BadRequest("body is not valid JSON") from None
    if not isinstance(data, dict):
        raise BadRequest("body must be a JSON object")
    return data


def _optional_str(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise BadRequest(f"'{key}' must be a non-empty string")
    return value.strip()


class HttpApi:
    """The aiohttp application for one hub."""

    def __init__(self, hub: Hub, conversations: Conversations, token: str) -> None:
        self.hub = hub
        self.conversations = conversations
        self._token = token.encode()
        self.app = web.Application(middlewares=[self._errors, self._auth], client_max_size=MAX_BODY)
        self.app.router.add_post("/api/conversation", self.conversation)
        self.app.router.add_post("/api/actions", self.actions)
        self.app.router.add_get("/api/entities", self.entities)
        self.app.router.add_get("/api/health", self.health)
        self.app.router.add_get("/api/openapi.json", self.openapi)

    # -- middlewares ---------------------------------------------------------------------
    @web.middleware
    async def _errors(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """JSON errors for everything; a traceback goes to the log, never to the client."""
        try:
            return await handler(request)
        except BadRequest as exc:
            return _error(400, str(exc))
        except web.HTTPRequestEntityTooLarge:
            return _error(413, f"body larger than {MAX_BODY} bytes")
        except web.HTTPException as exc:
            if exc.status >= 400:
                return _error(exc.status, exc.reason)
            raise
        except Exception:
            log.exception("HTTP %s %s failed", request.method, request.path)
            return _error(500, "internal error (see the hub's log)")

    @web.middleware
    async def _auth(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in PUBLIC_PATHS:
            return await handler(request)
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode(), self._token
        ):
            return web.json_response(
                {"error": "missing or wrong bearer token"},
                status=401,
                headers={"WWW-Authenticate": 'Bearer realm="hubagent"'},
            )
        return await handler(request)

    # -- endpoints -----------------------------------------------------------------------
    async def conversation(self, request: web.Request) -> web.Response:
        data = await _json_body(request)
        text = data.get("text")
        if not isinstance(text, str) or not text.strip():
            raise BadRequest("'text' is required and must be a non-empty string")
        language = _optional_str(data, "language")
        served = self.conversations.agent.languages
        if language and match_language(language, served) is None:
            raise BadRequest(f"language '{language}' is not served (hub: {', '.join(served)})")
        conversation_id = _optional_str(data, "conversation_id")
        if conversation_id is not None and not valid_conversation_id(conversation_id):
            raise BadRequest(f"'conversation_id' must be at most {MAX_ID_LENGTH} characters")
        area = self._area(_optional_str(data, "area"))
        reply, conversation_id = await asyncio.to_thread(
            self.conversations.handle,
            text,
            conversation_id,
            channel="http",
            area=area,
            language=language,
        )
        return web.json_response(_reply(reply, conversation_id))

    async def actions(self, request: web.Request) -> web.Response:
        data = await _json_body(request)
        raw = data.get("actions")
        if not isinstance(raw, list) or not raw:
            raise BadRequest("'actions' must be a non-empty list of {entity, action, args?}")
        actions = [_action(item, i) for i, item in enumerate(raw)]
        reply = await asyncio.to_thread(
            self.hub.agent.execute, actions, requester="http", channel="http"
        )
        return web.json_response(_reply(reply, None))

    async def entities(self, request: web.Request) -> web.Response:
        area = self._area(request.query.get("area"))
        listed = [
            {
                "id": e.entity_id,
                "name": e.name,
                "area": e.area,
                "aliases": list(e.aliases),
                "device_class": e.device_class,
                "state": e.state,
                "available": e.available,
                "verbs": list(e.verbs),
            }
            for e in self.hub.registry.all()
            if area is None or e.area == area
        ]
        return web.json_response(listed, dumps=lambda v: json.dumps(v, default=str))

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response(self.hub.health())

    async def openapi(self, request: web.Request) -> web.Response:
        return web.json_response(openapi_document(_version()))

    def _area(self, name: str | None) -> str | None:
        if not name:
            return None
        area = self.hub.registry.find_area(name)
        if area is None:
            raise BadRequest(f"unknown area '{name}'")
        return area.id


def _action(item: Any, index: int) -> Action:
    if not isinstance(item, dict):
        raise BadRequest(f"actions[{index}] must be an object")
    entity, verb, args = item.get("entity"), item.get("action"), item.get("args", {})
    if not isinstance(entity, str) or not isinstance(verb, str):
        raise BadRequest(f"actions[{index}] needs string 'entity' and 'action'")
    if args is not None and not isinstance(args, dict):
        raise BadRequest(f"actions[{index}].args must be an object")
    return Action(entity, verb, dict(args or {}))


def _reply(reply: Reply, conversation_id: str | None) -> dict[str, Any]:
    out = reply.to_dict()
    if conversation_id is not None:
        out["conversation_id"] = conversation_id
    return out


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("hubagent")
    except PackageNotFoundError:
        return "0"


async def start_http(api: HttpApi, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Serve `api` on host:port (0 picks a free port); returns the runner and the port."""
    runner = web.AppRunner(api.app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    addresses = runner.addresses  # the bound (host, port) pairs: port 0 was resolved
    return runner, int(addresses[0][1]) if addresses else port
