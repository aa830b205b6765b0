"""Wyoming `handle` server: Home Assistant Assist (or any Wyoming client) sends a transcript,
the hub acts on it and answers `handled` with the reply text, or `not-handled` when it
understood nothing it could do.

Built on the `wyoming` package's AsyncTcpServer / AsyncEventHandler. A conversation id in
the transcript's context (`context.conversation_id`) carries follow-ups; the reply's context
returns it so the client can send it back with the next transcript.
"""

from __future__ import annotations

import asyncio
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
from hubagent.conversation import Conversations
from hubagent.language import match as match_language

log = logging.getLogger(__name__)

_ATTRIBUTION = Attribution(name="hubagent", url="https://github.com/hubagent/hubagent")


def hub_info(languages: list[str], version: str | None = None) -> Info:
    """The `info` answer: one handle program that controls the home."""
    model = HandleModel(
        name="hubagent",
        attribution=_ATTRIBUTION,
        installed=True,
        description="Local matcher with LLM fallback over the hub's registry",
        version=version,
        languages=languages,
    )
    program = HandleProgram(
        name="hubagent",
        attribution=_ATTRIBUTION,
        installed=True,
        description="hubagent smart-home agent",
        version=version,
        models=[model],
        supports_home_control=True,
    )
    return Info(handle=[program])


def was_handled(reply: Reply) -> bool:
    """True when the hub did, asked or answered something (else `not-handled`)."""
    understanding = reply.understanding
    answered = understanding is not None and bool(understanding.answer)
    return bool(reply.actions) or reply.needs_confirmation or answered


class HandleEventHandler(AsyncEventHandler):
    """One client connection."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        conversations: Conversations,
        info: Info,
        language: str,
    ) -> None:
        super().__init__(reader, writer)
        self.conversations = conversations
        self.info = info
        self.language = language

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
        area_obj = self.conversations.agent.registry.find_area(area) if area else None
        reply, conversation_id = await asyncio.to_thread(
            self.conversations.handle,
            transcript.text,
            conversation_id,
            channel="wyoming",
            area=area_obj.id if area_obj else None,
            language=transcript.language or None,
        )
        context["conversation_id"] = conversation_id
        result = Handled if was_handled(reply) else NotHandled
        await self.write_event(result(text=reply.text, context=context).event())


class WyomingServer:
    """The TCP server; `start()` inside a running loop, `stop()` in the same loop."""

    def __init__(
        self, conversations: Conversations, host: str, port: int, language: str | Sequence[str]
    ) -> None:
        self.conversations = conversations
        languages = [language] if isinstance(language, str) else list(language)
        self.language = languages[0]
        self.info = hub_info(languages)
        self.server = AsyncTcpServer(host, port)
        self.host = host

    async def start(self) -> int:
        """Listen; returns the bound port (port 0 picks a free one)."""
        await self.server.start(self._handler)
        sockets = self.server._server.sockets if self.server._server else []  # noqa: SLF001
        return int(sockets[0].getsockname()[1]) if sockets else self.server.port

    def _handler(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> HandleEventHandler:
        return HandleEventHandler(reader, writer, self.conversations, self.info, self.language)

    async def stop(self) -> None:
        await self.server.stop()
