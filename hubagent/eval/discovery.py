"""`hubagent eval --format discovery`: MQTT discovery conformance, without a broker.

Feeds `discovery.jsonl` through the real DiscoveryManager, then for each case of
`commands.jsonl` resolves the intent on the entity of `discovery_topic` (intent_map) and
builds the device message (executor). A case passes when exactly one built message goes
to `expected_command_topic` and its payload equals `expected_payload` (parsed JSON for
`payload_format: json`, exact text otherwise). Messages HA would send to other topics in
the same call (e.g. brightness before ON) are allowed. A discovery topic announced several
times (renames) keeps every version; a case uses the newest one that answers to its
`entity_name`.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hubagent.act.executor import ExecutionError, build_messages
from hubagent.act.intent_map import intent_to_action
from hubagent.home.registry import Registry, normalize_name
from hubagent.mqtt.state import DiscoveryManager
from hubagent.types import Entity, MqttMessage

log = logging.getLogger(__name__)


@dataclass
class CaseResult:
    index: int
    case: dict[str, Any]
    component: str
    firmware: str
    ok: bool
    entity_id: str | None = None
    action: dict[str, Any] | None = None
    messages: list[MqttMessage] = field(default_factory=list)
    reason: str = ""


def _paths(args: argparse.Namespace) -> tuple[Path, Path]:
    discovery, commands = getattr(args, "discovery", None), getattr(args, "commands", None)
    folder = getattr(args, "cases", None)
    if folder and Path(folder).is_dir():
        discovery = discovery or str(Path(folder) / "discovery.jsonl")
        commands = commands or str(Path(folder) / "commands.jsonl")
    if not discovery or not commands:
        raise ValueError("discovery eval needs a benchmark folder or --discovery and --commands")
    for path in (discovery, commands):
        if not Path(path).is_file():
            raise ValueError(f"no such file: {path}")
    return Path(discovery), Path(commands)


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except ValueError as exc:
            raise ValueError(f"{path}:{number}: not JSON ({exc})") from exc
    return rows


def load_discovery(
    rows: list[dict[str, Any]], prefix: str = "homeassistant"
) -> tuple[DiscoveryManager, dict[str, list[Entity]]]:
    """A manager fed with every discovery row in order (later configs update earlier ones),
    and every version of the entities each discovery topic announced along the way."""
    manager = DiscoveryManager(Registry(), prefix=prefix)
    versions: dict[str, list[Entity]] = defaultdict(list)
    for row in rows:
        raw = row.get("payload_raw")
        payload = raw if isinstance(raw, str) else json.dumps(row.get("payload"))
        topic = str(row.get("topic", ""))
        manager.handle_message(topic, payload.encode(), retained=True)
        for entity_id in manager.entity_ids(topic):
            versions[topic].append(copy.deepcopy(manager.registry.get(entity_id)))
    return manager, versions


def _names(entity: Entity) -> set[str]:
    device = entity.device.get("name") if isinstance(entity.device, dict) else None
    # Not the entity id: it stays the same when a config renames the entity.
    names = {entity.name, str(device or ""), str(entity.mqtt.get("object_id") or "")}
    return {normalize_name(n) for n in names if n}


def pick_version(versions: list[Entity], name: str | None) -> Entity | None:
    """The newest version of a re-announced entity that still answers to `name` (the
    dataset keeps renamed configs as separate rows), else the newest version."""
    if not versions:
        return None
    if name:
        wanted = normalize_name(str(name))
        for entity in reversed(versions):
            if wanted in _names(entity):
                return entity
    return versions[-1]


def _payload_matches(message: MqttMessage, expected: Any, fmt: str) -> bool:
    if fmt == "json":
        try:
            return json.loads(message.payload) == expected
        except ValueError:
            return False
    return message.payload == (expected if isinstance(expected, str) else json.dumps(expected))


def run_case(
    versions: dict[str, list[Entity]], case: dict[str, Any], index: int, components: dict[str, str]
) -> CaseResult:
    """Resolve, build and compare one command case."""
    topic = str(case.get("discovery_topic", ""))
    result = CaseResult(
        index, case, components.get(topic, "?"), str(case.get("firmware", "?")), False
    )
    slots = dict(case.get("slots") or {})
    entity = pick_version(versions.get(topic, []), case.get("entity_name") or slots.get("name"))
    if entity is None:
        result.reason = "no entity discovered for this topic"
        return result
    result.entity_id = entity.entity_id
    action = intent_to_action(entity, str(case.get("intent", "")), slots)
    if action is None:
        result.reason = f"intent {case.get('intent')} has no action on {entity.entity_id}"
        return result
    result.action = action.to_dict()
    try:
        result.messages = build_messages(entity, action)
    except ExecutionError as exc:
        result.reason = f"executor: {exc}"
        return result
    want_topic = case.get("expected_command_topic")
    on_topic = [m for m in result.messages if m.topic == want_topic]
    fmt = str(case.get("payload_format", "text"))
    if len(on_topic) != 1:
        result.reason = f"{len(on_topic)} messages on {want_topic}"
    elif not _payload_matches(on_topic[0], case.get("expected_payload"), fmt):
        result.reason = f"payload {on_topic[0].payload!r} != {case.get('expected_payload')!r}"
    else:
        result.ok = True
    return result


def evaluate(
    discovery: Path, commands: Path, limit: int | None = None
) -> tuple[dict[str, Any], list[CaseResult]]:
    """Run the whole benchmark; returns (summary, per-case results)."""
    rows = _read_jsonl(discovery)
    started = time.perf_counter()
    manager, versions = load_discovery(rows)
    discovery_ms = (time.perf_counter() - started) * 1000
    components = {str(r.get("topic")): str(r.get("component", "?")) for r in rows}
    cases = _read_jsonl(commands)[:limit] if limit else _read_jsonl(commands)
    results = [run_case(versions, c, i, components) for i, c in enumerate(cases)]

    def rates(key: str) -> dict[str, dict[str, Any]]:
        groups: dict[str, list[bool]] = defaultdict(list)
        for r in results:
            groups[getattr(r, key)].append(r.ok)
        return {
            k: {"passed": sum(v), "total": len(v), "rate": round(sum(v) / len(v), 4)}
            for k, v in sorted(groups.items())
        }

    passed = sum(r.ok for r in results)
    summary = {
        "cases": len(results),
        "passed": passed,
        "rate": round(passed / len(results), 4) if results else 0.0,
        "by_component": rates("component"),
        "by_firmware": rates("firmware"),
        "discovery": {
            "messages": len(rows),
            "entities": len(manager.registry),
            "ms": round(discovery_ms, 1),
            **manager.counters,
        },
        "mismatches": [
            {
                "index": r.index,
                "discovery_topic": r.case.get("discovery_topic"),
                "intent": r.case.get("intent"),
                "slots": r.case.get("slots"),
                "expected": [r.case.get("expected_command_topic"), r.case.get("expected_payload")],
                "got": [[m.topic, m.payload] for m in r.messages],
                "reason": r.reason,
            }
            for r in results
            if not r.ok
        ],
    }
    return summary, results


def _print(summary: dict[str, Any]) -> None:
    print(f"discovery conformance: {summary['passed']}/{summary['cases']} = {summary['rate']:.2%}")
    d = summary["discovery"]
    print(
        f"  discovery: {d['messages']} messages -> {d['entities']} entities in {d['ms']} ms "
        f"(bad configs {d['bad_config']}, rejected {d['rejected']})"
    )
    for title, key in (("per component", "by_component"), ("per firmware", "by_firmware")):
        print(f"{title}:")
        for name, row in summary[key].items():
            print(f"  {name:<55} {row['passed']:>4}/{row['total']:<4} {row['rate']:.2%}")
    if summary["mismatches"]:
        print("mismatches:")
    for m in summary["mismatches"]:
        print(f"  #{m['index']} {m['intent']} {m['slots']} on {m['discovery_topic']}")
        print(f"      expected {m['expected']}, got {m['got']}: {m['reason']}")


def main(args: argparse.Namespace) -> int:
    """Entry point of `hubagent eval --format discovery`."""
    discovery, commands = _paths(args)
    summary, results = evaluate(discovery, commands, getattr(args, "limit", None))
    out = getattr(args, "out", None)
    if out:
        with open(out, "w", encoding="utf-8") as handle:
            for r in results:
                row = {
                    "id": r.index,
                    "discovery_topic": r.case.get("discovery_topic"),
                    "entity": r.entity_id,
                    "action": r.action,
                    "messages": [{"topic": m.topic, "payload": m.payload} for m in r.messages],
                    "ok": r.ok,
                    "reason": r.reason,
                }
                handle.write(json.dumps(row) + "\n")
    if getattr(args, "json", False):
        json.dump(summary, sys.stdout, indent=2)
        print()
    else:
        _print(summary)
    return 0
