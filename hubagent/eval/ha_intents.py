"""`hubagent eval --format ha-intents`: Home Assistant's own intent tests on the local matcher.

Each case names a fixture (the test file's own floors, areas and entities); we build a
registry from it, run the local matcher with the case's context (the satellite's area)
and score the intent name and slots exactly, the way the upstream tests compare them.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hubagent.assist.targets import assist_target
from hubagent.home.registry import Registry
from hubagent.types import Area, Entity, Floor
from hubagent.understand.matcher import QUERY_INTENTS, UNSUPPORTED_INTENTS, LocalMatcher

log = logging.getLogger(__name__)

# Upstream's name for a satellite area that the test file does not name.
CONTEXT_AREA = "__context_area__"


# HA's test entities declare no supported features: they support what their sentences
# ask of them. These capabilities let the hub's verbs apply to them likewise.
_TEST_CAPABILITIES: dict[str, dict[str, dict[str, Any]]] = {
    "light": {
        "brightness": {"min": 0, "max": 100},
        "color": {},
        "color_temp": {"min": 2000, "max": 6500},
    },
    "cover": {"position": {"min": 0, "max": 100}},
    "valve": {"position": {"min": 0, "max": 100}},
    "fan": {"percentage": {"min": 0, "max": 100}},
    "climate": {"temperature": {"min": -50, "max": 100}},
    "media_player": {"volume": {"min": 0, "max": 100}},
}


def _slug(name: str) -> str:
    """Upstream's id synthesis: casefold, spaces -> underscores."""
    return name.strip().casefold().replace(" ", "_")


def fixture_registry(fixture: dict[str, Any]) -> Registry:
    """A registry holding one test file's floors, areas and entities (HA test format)."""
    registry = Registry()
    floors = [
        Floor(id=str(f.get("id") or _slug(f["name"])), name=str(f["name"]))
        for f in fixture.get("floors") or []
    ]
    areas = []
    for a in fixture.get("areas") or []:
        floor = a.get("floor_id") or (_slug(a["floor"]) if a.get("floor") else None)
        aliases = tuple(a.get("aliases") or ())
        areas.append(
            Area(
                id=str(a.get("id") or _slug(a["name"])),
                name=a["name"],
                floor=floor,
                aliases=aliases,
            )
        )
    area_ids = {_slug(a.name): a.id for a in areas} | {a.id: a.id for a in areas}
    entities = []
    for e in fixture.get("entities") or []:
        attributes = dict(e.get("attributes") or {})
        domain = e.get("domain") or str(e.get("entity_id", "unknown.x")).split(".", 1)[0]
        state = {k: v for k, v in attributes.items() if k != "device_class"}
        if "state" in e:
            state["state"] = e["state"]
        area = e.get("area")
        entities.append(
            Entity(
                entity_id=str(e.get("entity_id") or e.get("id") or f"{domain}.{_slug(e['name'])}"),
                name=str(e["name"]),
                area=area_ids.get(_slug(area), _slug(area)) if area else None,
                aliases=tuple(e.get("aliases") or ()),
                device_class=e.get("device_class") or attributes.get("device_class"),
                attributes={k: dict(v) for k, v in _TEST_CAPABILITIES.get(domain, {}).items()},
                state=state,
                source="homeassistant",
            )
        )
    registry.load(floors, areas, entities)
    return registry


def context_area(case: dict[str, Any], fixture: dict[str, Any]) -> str | None:
    """The satellite's area for a case: the fixture's marked area, else upstream's sentinel."""
    context = case.get("context") or {}
    marked = [a["name"] for a in fixture.get("areas") or [] if a.get("context_area")]
    if "area" not in context and not case.get("requires_satellite_area"):
        return None
    return context.get("area") or (marked[0] if marked else CONTEXT_AREA)


def _norm(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, (list, set, tuple, frozenset)):
        return frozenset(_norm(v) for v in value)
    text = str(value).strip().casefold()
    try:
        return float(text)
    except ValueError:
        return text


def slots_equal(expected: dict[str, Any], actual: dict[str, Any]) -> bool:
    """Slot names equal and every value equal (text case-insensitive, numbers by value);
    a list on one side means "any of" / "subset of", as upstream compares."""
    if set(expected) != set(actual):
        return False
    for key, want in expected.items():
        w, a = _norm(want), _norm(actual[key])
        if isinstance(w, frozenset) and isinstance(a, frozenset):
            ok = a <= w
        elif isinstance(w, frozenset):
            ok = a in w
        elif isinstance(a, frozenset):
            ok = w in a
        else:
            ok = w == a
        if not ok:
            return False
    return True


@dataclass
class Summary:
    total: int = 0
    exact: int = 0
    per_intent: dict[str, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))
    misses: list[dict[str, Any]] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    answers: list[int] = field(default_factory=lambda: [0, 0])  # [equal to HA's, asked]
    targets: list[int] = field(default_factory=lambda: [0, 0])  # [same entities, known]

    def to_dict(self) -> dict[str, Any]:
        lat = sorted(self.latencies) or [0.0]
        return {
            "total": self.total,
            "exact": self.exact,
            "exact_rate": round(self.exact / self.total, 4) if self.total else 0.0,
            "per_intent": {
                k: {"exact": v[0], "total": v[1], "rate": round(v[0] / v[1], 4)}
                for k, v in sorted(self.per_intent.items())
            },
            "answers_exact": self.answers[0],
            "answers_total": self.answers[1],
            "targets_exact": self.targets[0],
            "targets_total": self.targets[1],
            "latency_ms": {
                "p50": round(statistics.median(lat), 2),
                "p95": round(lat[min(len(lat) - 1, int(0.95 * len(lat)))], 2),
            },
            "misses": self.misses,
        }


def _cases_path(arg: str | None) -> Path:
    path = Path(arg or "../shared/benchmarks/ha-intents-dev")
    return path / "cases.jsonl" if path.is_dir() else path


def load_cases(path: Path) -> list[dict[str, Any]]:
    """Cases of a cases.jsonl; a bad line is logged and skipped."""
    cases = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            cases.append(json.loads(line))
        except json.JSONDecodeError as exc:
            log.warning("%s:%d: not JSON (%s), skipped", path, number, exc)
    return cases


def evaluate(cases_path: Path, limit: int | None = None, out: Path | None = None) -> Summary:
    """Score the local matcher on the cases; one matcher per fixture, built once."""
    fixtures_file = cases_path.parent / "fixtures.yaml"
    fixtures = {}
    if fixtures_file.exists():
        fixtures = (yaml.safe_load(fixtures_file.read_text(encoding="utf-8")) or {}).get(
            "files"
        ) or {}
    cases = load_cases(cases_path)[: limit or None]
    matchers: dict[str, LocalMatcher] = {}
    summary = Summary()
    sink = out.open("w", encoding="utf-8") if out else None
    try:
        for case in cases:
            key = str(case.get("fixture") or "")
            fixture = fixtures.get(key) or {}
            if key not in matchers:
                matchers[key] = LocalMatcher(
                    fixture_registry(fixture), case.get("lang", "en"), handled=UNSUPPORTED_INTENTS
                )
            matcher = matchers[key]
            area = context_area(case, fixture)
            start = time.perf_counter()
            found = matcher.recognize(case["text"], area)
            understanding = None
            if found is not None and found.name not in UNSUPPORTED_INTENTS:
                understanding = matcher.resolve(case["text"], found, area)
            summary.latencies.append((time.perf_counter() - start) * 1000)
            _score(summary, case, found)
            _score_answer(summary, case, understanding)
            _score_targets(summary, case, understanding, found, matcher.registry, area)
            if sink is not None:
                sink.write(json.dumps(_prediction(case, found, understanding, summary)) + "\n")
    finally:
        if sink is not None:
            sink.close()
    return summary


def _score(summary: Summary, case: dict[str, Any], found: Any) -> None:
    expected = case.get("intent")
    ok = (
        found is not None
        and found.name == expected
        and slots_equal(case.get("slots") or {}, found.slots)
    )
    summary.total += 1
    summary.exact += ok
    summary.per_intent[str(expected)][0] += ok
    summary.per_intent[str(expected)][1] += 1
    if not ok:
        summary.misses.append(
            {
                "id": case.get("id"),
                "text": case.get("text"),
                "expected": {"name": expected, "slots": case.get("slots")},
                "got": None if found is None else {"name": found.name, "slots": found.slots},
            }
        )


def _score_answer(summary: Summary, case: dict[str, Any], understanding: Any) -> None:
    """State questions: is our answer the sentence Home Assistant's test expects?"""
    if case.get("intent") not in QUERY_INTENTS or not case.get("response"):
        return
    got = (understanding.answer or "") if understanding is not None else ""
    summary.answers[1] += 1
    summary.answers[0] += (
        " ".join(got.split()).casefold() == " ".join(str(case["response"]).split()).casefold()
    )


def _score_targets(
    summary: Summary,
    case: dict[str, Any],
    understanding: Any,
    found: Any,
    registry: Registry,
    area: str | None,
) -> None:
    """Commands whose upstream target entities are known: did we act on exactly those?
    For the assistant's intents: is the list, weather entity or player it uses that one?"""
    expected = case.get("derived_target_entities")
    if not expected or case.get("intent") in QUERY_INTENTS:
        return
    got = {a.entity for a in understanding.actions} if understanding is not None else set()
    if found is not None and found.name in UNSUPPORTED_INTENTS:
        area_obj = registry.find_area(area) if area else None
        target = assist_target(registry, found.name, found.slots, area_obj.id if area_obj else None)
        got = {target} if target else set()
    summary.targets[1] += 1
    summary.targets[0] += got == set(expected)


def _prediction(
    case: dict[str, Any], found: Any, understanding: Any, summary: Summary
) -> dict[str, Any]:
    steps = understanding.steps if understanding is not None else []
    return {
        "id": case.get("id"),
        "text": case.get("text"),
        "intent": None if found is None else {"name": found.name, "slots": found.slots},
        "actions": [a.to_dict() for s in steps for a in s.actions],
        "steps": [s.to_dict() for s in steps],
        "refused": False,
        "reply": (understanding.answer or "") if understanding is not None else "",
        "path": "local" if found is not None else "none",
        "latency_ms": round(summary.latencies[-1], 3),
    }


def main(args: argparse.Namespace) -> int:
    """Run the eval; prints the summary (or JSON with --json). Exit 1 when no cases."""
    path = _cases_path(getattr(args, "cases", None))
    if not path.exists():
        print(f"no cases at {path}", file=sys.stderr)
        return 1
    out = Path(args.out) if getattr(args, "out", None) else None
    summary = evaluate(path, getattr(args, "limit", None), out)
    data = summary.to_dict()
    if getattr(args, "json", False):
        print(json.dumps(data, indent=2, ensure_ascii=False))
        return 0 if summary.total else 1
    print(f"HA intents: {data['exact']}/{data['total']} exact ({data['exact_rate']:.1%})")
    for intent, row in data["per_intent"].items():
        print(f"  {intent:28} {row['exact']:4}/{row['total']:<4} {row['rate']:.1%}")
    print(f"state answers equal to HA's: {data['answers_exact']}/{data['answers_total']}")
    print(f"commands on HA's target entities: {data['targets_exact']}/{data['targets_total']}")
    print(f"latency p50 {data['latency_ms']['p50']} ms, p95 {data['latency_ms']['p95']} ms")
    for miss in data["misses"]:
        print(
            f"  MISS {miss['id']}: {miss['text']!r} expected {miss['expected']} got {miss['got']}"
        )
    return 0 if summary.total else 1
