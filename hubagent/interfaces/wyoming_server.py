"""Wyoming `handle` server: Home Assistant Assist (or any Wyoming client) sends a transcript,
the hub acts on it and answers `handled` with the reply text, or `not-handled` when it
understood nothing it could do.

The `wyoming` package provides the events and their encoding; reading is bounded (see
`wyoming_io`). Wyoming has no authentication, so the server also bounds what one peer can
take: a connection cap (overall and per peer), an idle timeout that also limits how long one
event may take to arrive, transcripts of at most 4 KB, and understanding on a small thread
pool of its own so a burst of transcripts cannot hold up the HTTP API. A peer outside
`wyoming.trusted_peers` is unauthenticated: sensitive actions it asks for need a
confirmation from the app (see `act.requesters`).

A conversation id in the transcript's context (`context.conversation_id`) carries follow-ups;
the reply's context returns it so the client can send it back with the next transcript. A
`satellite_id` or `device_id` in the context names the satellite: its room (the `satellites`
map) is the request's area, and the timers it starts are reported to it as Wyoming timer
events (`timer-started`, `-updated`, `-cancelled`, `-finished`) while it stays connected.
"""

from __future__ import annotations

import asyncio
import importlib.util
import ipaddress
import logging
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from wyoming.asr import Transcript
from wyoming.error import Error
from wyoming.event import Event, async_write_event
from wyoming.handle import Handled, NotHandled
from wyoming.info import Attribution, Describe, HandleModel, HandleProgram, Info
from wyoming.ping import Ping, Pong

from hubagent.act.requesters import Origin
from hubagent.agent import Reply, acting_for
from hubagent.assist.context import origin as satellite_origin
from hubagent.config import WyomingConfig
from hubagent.conversation import Conversations
from hubagent.interfaces.wyoming_io import (
    HEADER_LIMIT,
    MAX_TRANSCRIPT_BYTES,
    BadEvent,
    EventTooLarge,
    read_event,
)
from hubagent.interfaces.wyoming_timers import SatelliteTimers, package_info
from hubagent.language import match as match_language

log = logging.getLogger(__name__)

LINGER_S, LINGER_BYTES = 1.0, 4 * 1024 * 1024  # after a refused event, see _linger
UNDERSTAND_THREADS = 2  # Wyoming's share of the CPU; the HTTP API has the loop's default pool


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


def parse_peers(entries: tuple[str, ...]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """`wyoming.trusted_peers` as networks; a bad entry is logged and left out."""
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(str(entry).strip(), strict=False))
        except ValueError:
            log.error("wyoming.trusted_peers: %r is not an IP address or CIDR; ignored", entry)
    return networks


class HandleEventHandler:
    """One client connection: read bounded events, answer each."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        server: WyomingServer,
        origin: Origin,
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.server = server
        self.origin = origin
        self.language = server.language
        self.satellite = f"wyoming-connection-{id(self):x}"  # until the client names one

    async def run(self) -> None:
        """Answer events until EOF, an idle timeout or an event over its limits."""
        timeout = self.server.cfg.idle_timeout_s
        try:
            while True:
                try:
                    async with asyncio.timeout(timeout):
                        event = await read_event(self.reader)
                except TimeoutError:
                    log.info("wyoming: %s idle for %g s; closed", self.origin.who, timeout)
                    return
                except (EventTooLarge, BadEvent) as exc:
                    log.warning("wyoming: %s sent a refused event: %s", self.origin.who, exc)
                    code = "too-large" if isinstance(exc, EventTooLarge) else "bad-event"
                    await self.write_event(Error(text=str(exc), code=code).event())
                    await self._linger()
                    return
                if event is None:
                    return
                await self.handle_event(event)
        except (ConnectionError, OSError) as exc:
            log.debug("wyoming: %s: %s", self.origin.who, exc)
        finally:
            if self.server.timers is not None:
                self.server.timers.leave(self)
            self.writer.close()

    async def _linger(self) -> None:
        """Send FIN after the error, then read and drop what the peer is still sending for a
        moment (bounded): closing with unread bytes sends a RST that can destroy the error
        event before the peer reads it."""
        if self.writer.can_write_eof():
            self.writer.write_eof()
        dropped = 0
        try:
            async with asyncio.timeout(LINGER_S):
                while dropped < LINGER_BYTES and (chunk := await self.reader.read(65536)):
                    dropped += len(chunk)
        except (TimeoutError, asyncio.LimitOverrunError, ValueError):
            pass

    async def write_event(self, event: Event) -> None:
        # A peer that stops reading would otherwise hold the connection (and its slot).
        async with asyncio.timeout(self.server.cfg.idle_timeout_s):
            await async_write_event(event, self.writer)

    async def handle_event(self, event: Event) -> None:
        try:
            if Describe.is_type(event.type):
                await self.write_event(self.server.info.event())
            elif Ping.is_type(event.type):
                await self.write_event(Pong(text=Ping.from_event(event).text).event())
            elif Transcript.is_type(event.type):
                await self._transcript(Transcript.from_event(event))
            else:
                log.debug("wyoming: ignoring event %s", event.type)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:  # malformed: say so
            log.warning("wyoming: bad %s event: %s", event.type, exc)
            await self.write_event(NotHandled(text="Sorry, I could not read that.").event())

    async def _transcript(self, transcript: Transcript) -> None:
        context: dict[str, Any] = dict(transcript.context or {})
        if not isinstance(transcript.text, str):
            raise TypeError("transcript text must be a string")
        if len(transcript.text.encode("utf-8")) > MAX_TRANSCRIPT_BYTES:
            text = "That is too long for me; please say it in fewer words."
            await self.write_event(NotHandled(text=text, context=context).event())
            return
        served = self.server.conversations.agent.languages
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
        if self.server.timers is not None:
            self.server.timers.join(self.satellite, self)
        loop = asyncio.get_running_loop()
        reply, conversation_id = await loop.run_in_executor(
            self.server.pool,
            self._handle,
            transcript.text,
            conversation_id,
            area,
            transcript.language or None,
        )
        context["conversation_id"] = conversation_id
        # A question ("Which one ...?", "Say yes to confirm") waits for the answer: the
        # protocol has no such flag, so the context tells clients that can listen again.
        context["continue_conversation"] = asks(reply)
        result = Handled if was_handled(reply) else NotHandled
        await self.write_event(result(text=reply.text, context=context).event())

    def _handle(
        self, text: str, conversation_id: str | None, area: str | None, language: str | None
    ) -> tuple[Reply, str]:
        conversations = self.server.conversations
        registry = conversations.agent.registry
        if self.server.satellites is not None:
            area_id = self.server.satellites.area_id(registry, self.satellite, area)
        else:
            area_obj = registry.find_area(area) if area else None
            area_id = area_obj.id if area_obj else None
        # Both set here, on the pool's thread: the requester (trust, budgets) and the
        # satellite (its timers report back to it).
        with acting_for(self.origin), satellite_origin(self.satellite, "wyoming"):
            return conversations.handle(
                text, conversation_id, channel="wyoming", area=area_id, language=language
            )


class WyomingServer:
    """The TCP server; `start()` inside a running loop, `stop()` in the same loop."""

    def __init__(
        self,
        conversations: Conversations,
        cfg: WyomingConfig,
        language: str | Sequence[str],
        *,
        satellites: Any = None,
        timers: Any = None,
    ) -> None:
        self.conversations = conversations
        self.cfg = cfg
        languages = [language] if isinstance(language, str) else list(language)
        self.language = languages[0]
        self.info = hub_info(languages)
        self.host = cfg.host
        self.trusted = parse_peers(cfg.trusted_peers)
        self.pool = ThreadPoolExecutor(UNDERSTAND_THREADS, thread_name_prefix="wyoming")
        self._server: asyncio.Server | None = None
        self._tasks: dict[asyncio.Task[None], str] = {}
        self.refused_connections = 0
        self.satellites = satellites  # hubagent.assist.satellites.Satellites
        self.timers = SatelliteTimers(timers) if timers is not None else None
        self._zeroconf: Any = None

    async def start(self) -> int:
        """Listen; returns the bound port (port 0 picks a free one)."""
        self._server = await asyncio.start_server(
            self._connection, self.cfg.host, self.cfg.port, limit=HEADER_LIMIT
        )
        port = int(self._server.sockets[0].getsockname()[1])
        if self.timers is not None:
            self.timers.attach(asyncio.get_running_loop())
        if self.cfg.zeroconf:
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

    def is_trusted(self, ip: str) -> bool:
        try:
            address = ipaddress.ip_address(ip.split("%")[0])
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        return any(address in network for network in self.trusted)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        ip = str(peer[0]) if isinstance(peer, tuple) and peer else "unknown"
        per_peer = Counter(self._tasks.values())
        trusted = self.is_trusted(ip)
        # Trusted peers (Home Assistant) are not counted against the overall cap, so
        # anonymous peers filling it cannot lock them out.
        anonymous = sum(n for peer, n in per_peer.items() if not self.is_trusted(peer))
        if (not trusted and anonymous >= self.cfg.max_connections) or (
            per_peer[ip] >= self.cfg.max_connections_per_peer
        ):
            self.refused_connections += 1
            if self.refused_connections in (1, 10, 100) or self.refused_connections % 1000 == 0:
                log.warning(
                    "wyoming: connection from %s refused: %d open (cap %d, %d per peer); "
                    "%d refused so far",
                    ip,
                    len(self._tasks),
                    self.cfg.max_connections,
                    self.cfg.max_connections_per_peer,
                    self.refused_connections,
                )
            writer.close()
            return
        task = asyncio.current_task()
        assert task is not None
        self._tasks[task] = ip
        origin = Origin(f"wyoming:{ip}", authenticated=trusted)
        try:
            await HandleEventHandler(reader, writer, self, origin).run()
        finally:
            self._tasks.pop(task, None)

    @property
    def open_connections(self) -> int:
        return len(self._tasks)

    async def stop(self) -> None:
        if self.timers is not None:
            self.timers.detach()
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=2.0)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
        self.pool.shutdown(wait=False, cancel_futures=True)
