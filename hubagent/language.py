"""Languages: BCP 47 tag matching and the language of one request.

A hub serves one or more languages (`languages: [en, zh-hans]`). Each request gets one of
them: the tag its interface sends (HTTP `language`, Wyoming's transcript language, the MQTT
request's `language` field), else the text's script (CJK -> Chinese), else the hub's first
language. Tags are compared the way BCP 47 lookup does for what the hub can tell apart:
`zh`, `zh-CN`, `zh-Hans`, `zh_cn` all mean Simplified Chinese; `en-GB` means `en`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from contextvars import ContextVar

# Our canonical tags: the reply tables and the matchers are keyed by these.
ENGLISH, CHINESE = "en", "zh-hans"
# Regions and scripts that all write Simplified Chinese.
_SIMPLIFIED = frozenset({"zh", "zh-cn", "zh-hans", "zh-hans-cn", "zh-sg", "zh-hans-sg", "cmn"})
_TRADITIONAL = frozenset({"zh-tw", "zh-hk", "zh-mo", "zh-hant", "zh-hant-tw", "zh-hant-hk"})
_TAG = re.compile(r"^[A-Za-z]{2,8}(?:[-_][A-Za-z0-9]{1,8})*$")
# Han ideographs (CJK Unified, Extension A, Compatibility): what makes a request Chinese.
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")

# The language of the request being handled, for code that is language-specific but is
# reached through interfaces that do not carry it (the matcher inside the cascade).
_CURRENT: ContextVar[str | None] = ContextVar("hubagent_request_language", default=None)


class LanguageError(ValueError):
    """A language tag that is malformed or not served by this hub."""


def canonical(tag: str) -> str:
    """Our tag for a BCP 47 tag: `zh-CN`/`zh_Hans`/`zh` -> `zh-hans`, `en-US` -> `en`,
    `zh-TW` -> `zh-hant`, `pt-BR` -> `pt-br`; lower-case."""
    if not isinstance(tag, str) or not _TAG.match(tag.strip()):
        raise LanguageError(f"not a language tag: {tag!r}")
    key = tag.strip().replace("_", "-").lower()
    if key in _SIMPLIFIED or (key.startswith("zh-hans-")):
        return CHINESE
    if key in _TRADITIONAL or key.startswith("zh-hant-"):
        return "zh-hant"
    if key.startswith("zh-"):
        return CHINESE  # zh-<unknown region>: Simplified is what people mean most
    # A region or script only counts where the sentence templates tell it apart (pt-BR).
    return key if key in _distinct_tags() else key.split("-", 1)[0]


@functools.cache
def _distinct_tags() -> frozenset[str]:
    try:
        from home_assistant_intents import get_languages
    except ImportError:
        return frozenset()
    return frozenset(code.lower() for code in get_languages() if "-" in code)


def served_languages(languages: Sequence[str]) -> tuple[str, ...]:
    """Canonical, de-duplicated, in the configured order (the first is the default)."""
    out: list[str] = []
    for tag in languages:
        code = canonical(tag)
        if code not in out:
            out.append(code)
    return tuple(out) or (ENGLISH,)


def match(tag: str | None, served: Sequence[str]) -> str | None:
    """The served language `tag` names, or None (also for a malformed tag)."""
    if not tag:
        return None
    try:
        code = canonical(tag)
    except LanguageError:
        return None
    if code in served:
        return code
    base = code.split("-", 1)[0]  # BCP 47 lookup: pt-BR falls back to pt (not zh-hant to zh)
    return base if base in served and base != "zh" else None


def detect(text: str, served: Sequence[str]) -> str:
    """The language of `text` among `served`: Chinese when it has Han characters and the hub
    serves Chinese, else the first served language that is not Chinese."""
    if CHINESE in served and _HAN.search(text or ""):
        return CHINESE
    others = [code for code in served if code != CHINESE]
    return others[0] if others else served[0]


def choose(tag: str | None, text: str, served: Sequence[str]) -> str:
    """The request's language: the interface's tag when served, else detected from text.

    Raises LanguageError for a tag the hub does not serve, so the interface can say so."""
    if tag:
        code = match(tag, served)
        if code is None:
            raise LanguageError(f"language '{tag}' is not served (hub: {', '.join(served)})")
        return code
    return detect(text, served)


def current(default: str = ENGLISH) -> str:
    """The language of the request being handled; `default` outside of one."""
    return _CURRENT.get() or default


def active() -> str | None:
    """The current request's language when an outer layer (a conversation) has set one."""
    return _CURRENT.get()


def set_current(code: str) -> object:
    """Make `code` the current request's language; returns a token for `reset_current`."""
    return _CURRENT.set(code)


def reset_current(token: object) -> None:
    _CURRENT.reset(token)  # type: ignore[arg-type]
