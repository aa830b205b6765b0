"""Wyoming `handle` server: Home Assistant Assist (or any Wyoming client) sends a transcript,
the hub acts on it and answers `handled` with the reply text, or `not-handled` when it
understood nothing it could do.

Built on the `wyoming` package's AsyncTcpServer / AsyncEventHandler. A conversation id in
the transcript's context (`context.conversation_id`) carries follow-ups; the reply's context
returns it so the client can send it back with the next transcript. A `satellite_id` or
`device_id` in the context names the satellite: its room (the `satellites` map) is the
request's area, and the timers it starts are reported to it as Wyoming timer events
(`timer-started`, `-updated`, `-cancelled`, `-finished`) while it stays connected.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
from collections.abc import Sequence
from typing import Any

from wyoming.asr import Transcript
from wyoming.event import Event
from wyoming.handle import Handled, NotHandled
from wyoming.info import Attribution, Describe, HandleModel, HandleProgram, Info
from wyoming.ping import Ping, Pong
from wyoming.server import AsyncEventHandler, AsyncTcpServer

from hubagent.agent import Reply
from hubagent.assist.context import origin
from hubagent.conversation import Conversations
from hubagent.interfaces.wyoming_timers import SatelliteTimers, package_info
from hubagent.language import match as match_language

log = logging.getLogger(__name__)


def hub_info(languages: list[str], version: str | None = None) -> Info:
    """The `info` answer: one handle program that controls the home."""
    package_version, url = package_info()
    version = version or package_version
    attribution = Attribution(name="hubagent", url=url)
    model = HandleModel(
        name="hubagent",
        attribution=attribution,
        installed=True,
        description="Local matcher with LLM fallback over the hub's registry",
        version=version,
        languages=languages,
    )
    program = HandleProgram(
        name="hubagent",
        attribution=attribution,
        installed=True,
        description="hubagent smart-home agent",
        version=version,
        models=[model],
        supports_home_control=True,
    )
    return Info(handle=[program])


def asks(reply: Reply) -> bool:
    """True when the reply is a question the next transcript answers."""
    understanding = reply.understanding
    steps = understanding.steps if understanding is not None else []
    return reply.needs_confirmation or any(
        (s.detail or "").startswith("which one? ") for s in steps
    )


def was_handled(reply: Reply) -> bool:
    """True when the hub did, asked or answered something (else `not-handled`); "Which
    one ...?" is a question like "Say yes to confirm", and "nevermind" is done quietly."""
    understanding = reply.understanding
    answered = understanding is not None and bool(understanding.answer)
    dismissed = (
        understanding is not None and (understanding.intent or {}).get("name") == "HassNevermind"
    )
    return bool(reply.actions) or asks(reply) or answered or dismissed


class HandleEventHandler(AsyncEventHandler):
    """One client connection."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        conversations: Conversations,
        info: Info,
        language: str,
        satellites: Any = None,
        timers: SatelliteTimers | None = None,
    ) -> None:
        super().__init__(reader, writer)
        self.conversations = conversations
        self.info = info
        self.language = language
        self.satellites = satellites  # hubagent.assist.satellites.Satellites
        self.timers = timers
        self.satellite = f"wyoming-connection-{id(self):x}"  # until the client names one

    async def disconnect(self) -> None:
        if self.timers is not None:
            self.timers.leave(self)

    async def handle_event(self, event: Event) -> bool:
        try:
            if Describe.is_type(event.type):
                await self.write_event(self.info.event())
            elif Ping.is_type(event.type):
                await self.write_event(Pong(text=Ping.from_event(event).text).event())
            elif Transcript.is_type(event.type):
                await self._transcript(Transcript.from_event(event))
            else:
                log.debug("wyoming: ignoring event %s", event.type)
        except (KeyError, TypeError, ValueError) as exc:  # a malformed event: say so, go on
            log.warning("wyoming: bad %s event: %s", event.type, exc)
            await self.write_event(NotHandled(text="Sorry, I could not read that.").event())
        return True

    async def _transcript(self, transcript: Transcript) -> None:
        context: dict[str, Any] = dict(transcript.context or {})
        served = self.conversations.agent.languages
        if transcript.language and match_language(transcript.language, served) is None:
            await self.write_event(
                NotHandled(text=f"I only speak {', '.join(served)}.", context=context).event()
            )
            return
        raw_id = context.get("conversation_id")
        conversation_id = str(raw_id) if raw_id else None
        area = context.get("area") if isinstance(context.get("area"), str) else None
        for key in ("satellite_id", "device_id"):
            if isinstance(context.get(key), str) and context[key]:
                self.satellite = context[key]
                break
        registry = self.conversations.agent.registry
        if self.satellites is not None:
            area_id = self.satellites.area_id(registry, self.satellite, area)
        else:
            area_obj = registry.find_area(area) if area else None
            area_id = area_obj.id if area_obj else None
        if self.timers is not None:
            self.timers.join(self.satellite, self)
        with origin(self.satellite, "wyoming"):  # to_thread copies it: timers know the satellite
            reply, conversation_id = await asyncio.to_thread(
                self.conversations.handle,
                transcript.text,
                conversation_id,
                channel="wyoming",
                area=area_id,
                language=transcript.language or None,
            )
        context["conversation_id"] = conversation_id
        # A question ("Which one ...?", "Say yes to confirm") waits for the answer: the
        # protocol has no such flag, so the context tells clients that can listen again.
        context["continue_conversation"] = asks(reply)
        result = Handled if was_handled(reply) else NotHandled
        await self.write_event(result(text=reply.text, context=context).event())


class WyomingServer:
    """The TCP server; `start()` inside a running loop, `stop()` in the same loop."""

    def __init__(
        self,
        conversations: Conversations,
        host: str,
        port: int,
        language: str | Sequence[str],
        *,
        satellites: Any = None,
        timers: Any = None,
        zeroconf: bool = False,
    ) -> None:
        """`satellites`: hubagent.assist Satellites (id -> area); `timers`: the hub's
        TimerManager, whose events go to the satellite that started each timer."""
        self.conversations = conversations
        languages = [language] if isinstance(language, str) else list(language)
        self.language = languages[0]
        self.info = hub_info(languages)
        self.server = AsyncTcpServer(host, port)
        self.host = host
        self.satellites = satellites
        self.timers = SatelliteTimers(timers) if timers is not None else None
        self.zeroconf = zeroconf
        self._zeroconf: Any = None

    async def start(self) -> int:
        """Listen; returns the bound port (port 0 picks a free one)."""
        await self.server.start(self._handler)
        sockets = self.server._server.sockets if self.server._server else []  # noqa: SLF001
        port = int(sockets[0].getsockname()[1]) if sockets else self.server.port
        if self.timers is not None:
            self.timers.attach(asyncio.get_running_loop())
        if self.zeroconf:
            await self._announce(port)
        return port

    async def _announce(self, port: int) -> None:
        """`_wyoming._tcp` over mDNS so Home Assistant discovers the service."""
        if importlib.util.find_spec("zeroconf") is None:  # wyoming.zeroconf would log FATAL
            log.warning("wyoming.zeroconf is on but the 'zeroconf' package is not installed")
            return
        from wyoming.zeroconf import HomeAssistantZeroconf

        host = None if self.host in ("0.0.0.0", "::") else self.host
        try:
            self._zeroconf = HomeAssistantZeroconf(port=port, name="hubagent", host=host)
            await self._zeroconf.register_server()
        except OSError as exc:
            log.warning("zeroconf announcement failed: %s", exc)

    def _handler(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> HandleEventHandler:
        return HandleEventHandler(
            reader,
            writer,
            self.conversations,
            self.info,
            self.language,
            self.satellites,
            self.timers,
        )

    async def stop(self) -> None:
        if self.timers is not None:
            self.timers.detach()
        await self.server.stop()
