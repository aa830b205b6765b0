"""Read a command in another language into the hub's canonical command form.

The registry's own names come first: every alias of an area, floor or device in the
request's script is replaced by the English name of what it names (an alias shared by
several devices by a name they share, so nothing is resolved early). The language's tables
(`tables_zh`) then give verbs, attributes, options, amounts and numerals. What comes out is
read by the same structure, value and target code as an English command.
"""

from __future__ import annotations

import re
import weakref
from dataclasses import dataclass

from hubagent.home.registry import Registry, normalize_name
from hubagent.understand import tables_zh

_Aliases = tuple[int, list[tuple[str, str, str]]]  # version, [(alias, english, kind)]
_CACHE: weakref.WeakKeyDictionary[Registry, _Aliases] = weakref.WeakKeyDictionary()


@dataclass
class Pivoted:
    """A command in canonical form, and whether it names a device of its own."""

    text: str
    names_device: bool
    question: bool


def _aliases(registry: Registry) -> list[tuple[str, str, str]]:
    cached = _CACHE.get(registry)
    if cached is not None and cached[0] == registry.version:
        return cached[1]
    owners: dict[str, set[str]] = {}
    for e in registry.all():
        for alias in e.aliases:
            if tables_zh.has_cjk(alias):
                owners.setdefault(alias, set()).add(e.entity_id)
    english: dict[frozenset[str], str] = {}
    for e in registry.all():
        for name in (e.name, *e.aliases):
            if not tables_zh.has_cjk(name):
                key = normalize_name(name)
                ids = frozenset(
                    x.entity_id
                    for x in registry.all()
                    if key in {normalize_name(n) for n in (x.name, *x.aliases)}
                )
                # The shortest English name: "curtains", not "Bedroom curtains", so a room
                # said with it ("客厅的窗帘") is checked against the device's own room.
                if ids not in english or len(name) < len(english[ids]):
                    english[ids] = name
    out: list[tuple[str, str, str]] = []
    for alias, ids in owners.items():
        label = english.get(frozenset(ids))
        if label is None:  # no English name shared by exactly these: say the kind only
            label = next((en.strip() for zh, en in tables_zh.KINDS if zh in alias), alias)
        rooms = {registry.area(registry.get(i).area) for i in ids if registry.get(i)}
        for room in rooms:
            said = any(a in alias for a in room.aliases if tables_zh.has_cjk(a)) if room else False
            if room is not None and said and room.name.lower() not in label.lower():
                label = f"{room.name} {label}"  # "卧室窗帘" keeps its room
        out.append((alias, label, "device"))
    for area in registry.areas:
        out += [(a, area.name, "area") for a in area.aliases if tables_zh.has_cjk(a)]
    for floor in registry.floors:
        out += [(a, floor.name, "floor") for a in floor.aliases if tables_zh.has_cjk(a)]
    out.sort(key=lambda t: -len(t[0]))
    _CACHE[registry] = (registry.version, out)
    return out


def _apply(text: str, table: tuple[tuple[str, str], ...]) -> str:
    for zh, en in sorted(table, key=lambda t: -len(t[0])):
        text = text.replace(zh, en)
    return text


_VALUE_TAIL = re.compile(r"(调到|调成|设成|设为|设置为|设置成|切换到|改成|改为|开到)(.+)$")


def pivot_zh(registry: Registry, command: str) -> Pivoted:
    """ "把客厅空调调高两度" -> "living room air conditioner raise by 2 degrees"."""
    question = tables_zh.is_question(command)
    text = tables_zh.fractional_numerals(command)  # 一点五, 两度半: before 一点 is "a bit"
    text = tables_zh.SOUND_OFF.sub(lambda m: f"{m[1]}静音", text)  # 关掉X的声音: mute X
    value = _VALUE_TAIL.search(text)
    if value:
        # What follows 调到 / 设成 is a value ("调到睡眠模式": the sleep preset), never a
        # device, even when a device happens to have it as an alias.
        tail = _apply(
            _apply(_apply(value[2], tables_zh.AMOUNTS), tables_zh.OPTIONS), tables_zh.ATTRIBUTES
        )
        text = text[: value.start(2)] + tail
    named = False
    for alias, english, kind in _aliases(registry):
        if alias in text:
            article = "the " if kind == "device" else ""
            text = text.replace(alias, f" {article}{english} ")
            named = named or kind == "device"
    plural = any(w in text for w in tables_zh.ALL_WORDS)
    text = _apply(text, tables_zh.AMOUNTS)
    text = _apply(text, tables_zh.ATTRIBUTES)
    text = _apply(text, tables_zh.OPTIONS)
    text = tables_zh.numerals(text)
    before = text
    text = _apply(text, tables_zh.KINDS)
    named = named or any(
        zh in before for zh, en in tables_zh.KINDS if en.strip() not in ("his", "her", "its")
    )
    text = _apply(text, tables_zh.VERBS)
    text = re.sub(
        r"(set to|raise by|lower by)\s*([高中低])",
        lambda m: f"{m[1]} {tables_zh.LEVELS[m[2]]}",
        text,
    )
    for zh in tables_zh.ALL_WORDS:
        text = text.replace(zh, " all ")
    for zh in tables_zh.AND_WORDS:
        text = text.replace(zh, " and ")  # "咖啡机和水壶": both, split like English
    text = re.sub(r"[\u3400-\u9fff，。！？、；：“”‘’【】（）]", " ", text)
    text = re.sub(r"\s+", " ", text).strip()
    if plural:
        text = re.sub(r"\b(light|lamp|blind|curtain|fan)\b", r"\1s", text)
    if question:
        text = f"what is {text}?"
    return Pivoted(text, named, question)
