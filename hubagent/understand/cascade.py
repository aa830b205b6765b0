"""The cascade: the local hassil matcher, the distilled student when it is confident, then the
registry-checked LLM understander.

The matcher answers the sentences Home Assistant's intent templates cover in a few ms. What
it misses (several commands in one sentence, free wording, relative changes) goes to the
understander, which decides from the registry and the wording where it can and asks the
model only for what stays open.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from hubagent.home.registry import Registry
from hubagent.types import Step, Understanding

if TYPE_CHECKING:
    from hubagent.compress.student import StudentPath
from hubagent.understand import tables_en
from hubagent.understand.llm import LlmUnderstander, refers_back
from hubagent.understand.matcher import LocalMatcher
from hubagent.understand.split import split_steps
from hubagent.understand.verify import verify

log = logging.getLogger(__name__)


MAX_CHARS = 1000
MAX_COMMANDS = 12


def _too_long(text: str) -> str | None:
    """Why a request is too long to understand, or None."""
    if len(text) > MAX_CHARS:
        return f"the request is too long ({len(text)} characters, at most {MAX_CHARS})"
    if len(split_steps(text)) > MAX_COMMANDS:
        return f"too many commands in one request (at most {MAX_COMMANDS})"
    return None


class Cascade:
    """Turns text into an Understanding by the cheapest path that understands it."""

    def __init__(
        self,
        matcher: LocalMatcher | None,
        understander: LlmUnderstander | None,
        student: StudentPath | None = None,
    ) -> None:
        self.matcher = matcher
        self.understander = understander
        self.student = student

    def understand(
        self,
        text: str,
        area: str | None = None,
        only: frozenset[str] | None = None,
        context: tuple[str, ...] = (),
    ) -> Understanding:
        """Steps with Actions or a precise error, or an answer for a question; with `only`,
        about those entities alone (the understander decides). `context` holds the devices
        of the conversation's previous turn: what "it" and "them" may mean when the request
        itself names nothing before them."""
        t0 = time.perf_counter()
        too_long = _too_long(text)
        if too_long:
            # Nobody says 2,000 characters to a voice assistant; a flood must not cost
            # minutes of matching (or model calls) before it is refused.
            step = Step(text[:80], error="not_allowed", detail=too_long)
            return Understanding(text, [step], "none", latency_ms=(time.perf_counter() - t0) * 1000)
        refers = bool(context) and refers_back(text)
        if (only is not None or refers) and self.understander is not None:
            result = self.understander.understand(text, area, only=only, context=context)
            result = verify(self.understander.registry, result)
            result.latency_ms = (time.perf_counter() - t0) * 1000
            return result
        result = self._local(text, area)
        if result is None and self.student is not None:
            result = self.student.understand(text, area)
        if result is None and self.understander is not None:
            result = self.understander.understand(text, area)
        if result is None:
            result = Understanding(
                text, [Step(text, error="unknown_device", detail="not understood")], "none"
            )
        registry = self._registry()
        if registry is not None:
            result = verify(registry, result)  # whichever path answered: check, never invent
        result.latency_ms = (time.perf_counter() - t0) * 1000
        return result

    def _registry(self) -> Registry | None:
        if self.matcher is not None:
            return self.matcher.registry
        return self.understander.registry if self.understander is not None else None

    def _local(self, text: str, area: str | None) -> Understanding | None:
        """The matcher's result when it understood every command of the request cleanly."""
        if self.matcher is None or tables_en.SELF_CORRECTION.match(text):
            return None  # "... - actually no, just mute it" is no template sentence
        pieces = split_steps(text) or [text]
        results = []
        for piece in pieces:
            found = self.matcher.match(piece, area)
            # A step the matcher could not resolve goes to the understander, which can
            # still find a device by alias or refuse it with the precise reason.
            if found is None or any(s.error for s in found.steps):
                return None
            results.append(found)
        if len(results) == 1:
            return results[0]
        answers = [r.answer for r in results if r.answer]
        return Understanding(
            text=text,
            steps=[s for r in results for s in r.steps],
            path="local",
            intent=results[0].intent,
            answer=" ".join(answers) or None,
            parts=results,
        )
