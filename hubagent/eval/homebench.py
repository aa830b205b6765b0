"""HomeBench (ACL 2025) evaluation: import its homes, run the understander, score upstream-style.

Each upstream home becomes a Registry; HomeBench device methods are translated into the
hub's own verbs here (the hub's vocabulary stays intact) and the hub's steps are written
back as HomeBench tokens `room.device.method(args)` / `error_input`. Scoring follows the
upstream `code/eval.py`: strip spaces, split on commas, SUCC = equal token multisets,
precision/recall/F1 pooled per category.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hubagent.eval.pooled import pooled_summary
from hubagent.home.registry import Registry
from hubagent.types import VERB_CAPABILITY, Action, Area, Entity, Understanding

log = logging.getLogger(__name__)

DEVICE_DOMAIN = {
    "light": "light",
    "air_conditioner": "climate",
    "heating": "climate",
    "water_heater": "climate",
    "curtain": "cover",
    "blinds": "cover",
    "garage_door": "cover",
    "fan": "fan",
    "air_purifiers": "fan",
    "humidifier": "humidifier",
    "dehumidifiers": "humidifier",
    "media_player": "media_player",
    "vacuum_robot": "vacuum",
    "trash": "button",
    "aromatherapy": "switch",
}
# Upstream attribute names -> the hub's capability names, per domain.
ATTRIBUTE_RENAME = {
    "cover": {"degree": "position"},
    "climate": {"mode": "hvac_mode", "fan_speed": "fan_mode", "swing": "swing_mode"},
    "fan": {"mode": "preset_mode"},
    "vacuum": {"area": "cleaning_area"},
}
NO_ARG_VERBS = {
    "pack": "press",
    "charge": "return_to_base",
}  # upstream no-argument methods the hub names differently
ROOM_NAMES = {"ding_room": "dining room"}  # upstream spelling -> what people say
CATEGORY_ORDER = (
    "normal",
    "unexist_device",
    "unexist_attribute",
    "multi_normal",
    "multi_mix",
    "multi_unexist",
)


@dataclass
class HomebenchHome:
    """A HomeBench home as a Registry plus the way back to upstream tokens."""

    registry: Registry
    prefix: dict[str, str] = field(default_factory=dict)  # entity id -> "room.device"
    methods: dict[str, dict[tuple[str, str | None], str]] = field(default_factory=dict)


def _rename(domain: str, attr: str) -> str:
    attr = attr.strip()  # upstream has " degree" with a leading space
    return ATTRIBUTE_RENAME.get(domain, {}).get(attr, attr)


def _spec(raw: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if "options" in raw:
        spec["options"] = list(raw["options"])
    for key, ours in (("lowest", "min"), ("highest", "max")):
        if key in raw:
            with contextlib.suppress(TypeError, ValueError):
                spec[ours] = float(raw[key])
    return spec


def import_home(data: dict[str, Any]) -> HomebenchHome:
    """Build a Registry from one upstream home JSON (bad devices are logged and skipped)."""
    home = HomebenchHome(Registry())
    status = data.get("home_status") or {}
    entities: dict[tuple[str, str], Entity] = {}
    areas: list[Area] = []
    for room, devices in status.items():
        if not isinstance(devices, dict):
            continue
        if room == "VacuumRobot":  # top-level device without a room
            devices = {"vacuum_robot": devices}
            room_id = None
        else:
            room_id = room
            areas.append(Area(room, ROOM_NAMES.get(room, room.replace("_", " "))))
        for device, info in devices.items():
            if device == "room_name" or not isinstance(info, dict):
                continue
            domain = DEVICE_DOMAIN.get(device, "switch")
            slug = f"{room_id}_{device}" if room_id else device
            attrs: dict[str, dict[str, Any]] = {}
            state: dict[str, Any] = {"state": info.get("state")}
            for name, raw in (info.get("attributes") or {}).items():
                if isinstance(raw, dict):
                    key = _rename(domain, name)
                    attrs[key] = _spec(raw)
                    state[key] = raw.get("value")
            entity = Entity(
                entity_id=f"{domain}.{slug}",
                name=device.replace("_", " "),
                area=room_id,
                attributes=attrs,
                state=state,
                source="homebench",
            )
            entities[(room_id or "", device)] = entity
            home.prefix[entity.entity_id] = f"{room_id}.{device}" if room_id else device
            home.methods[entity.entity_id] = {}
    for method in data.get("method") or []:
        room, device = method.get("room_name") or "", method.get("device_name", "")
        entity = entities.get((room if room != "None" else "", device)) or entities.get(
            ("", device)
        )
        if entity is None:
            continue
        op, params = method.get("operation", ""), method.get("parameters") or []
        if params:
            attr = _rename(entity.domain, params[0].get("name", ""))
            entity.attributes.setdefault(attr, {})
            home.methods[entity.entity_id][("set", attr)] = op
        else:
            home.methods[entity.entity_id][(NO_ARG_VERBS.get(op, op), None)] = op
    home.registry.load([], areas, entities.values())
    return home


def to_token(home: HomebenchHome, action: Action) -> str:
    """One Action as `room.device.method(args)`; `error_input` when HomeBench cannot say it."""

    table = home.methods.get(action.entity, {})
    prefix = home.prefix.get(action.entity)
    if prefix is None:
        return "error_input"
    if action.action == "set":
        attr, value = action.args.get("attribute"), action.args.get("value")
    elif action.action in VERB_CAPABILITY:
        attr = VERB_CAPABILITY[action.action]
        value = next(iter(action.args.values()), None)
    else:
        method = table.get((action.action, None))
        return f"{prefix}.{method}()" if method else "error_input"
    method = table.get(("set", attr))
    if method is None:
        return "error_input"
    if attr == "cleaning_area":
        value = str(value).replace("_", "")  # upstream writes rooms as "storeroom"
    return f"{prefix}.{method}({_fmt(value)})"


def _fmt(value: Any) -> str:
    if isinstance(value, list | tuple):
        return "(" + ",".join(_fmt(v) for v in value) + ")"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def tokens(label: str) -> list[str]:
    """Upstream normalisation: drop quotes and spaces, split on commas, drop empties."""
    text = label.replace("'''", "").replace(" ", "")
    return [t for t in text.split(",") if t]


def predict_tokens(home: HomebenchHome, result: Understanding) -> list[str]:
    out: list[str] = []
    for step in result.steps:
        if step.error or not step.actions:
            out.append("error_input")
        else:
            out.extend(to_token(home, a) for a in step.actions)
    return out


@dataclass
class CategoryScore:
    n: int = 0
    succ: int = 0
    tp: int = 0
    pred: int = 0
    gold: int = 0
    latency: list[float] = field(default_factory=list)
    paths: Counter = field(default_factory=Counter)

    def summary(self) -> dict[str, Any]:
        return pooled_summary(
            self.n, self.succ, self.tp, self.pred, self.gold, self.latency, self.paths, digits=2
        )

    def add(self, pred: list[str], gold: list[str], latency: float, path: str) -> bool:
        common = sum((Counter(pred) & Counter(gold)).values())
        ok = Counter(pred) == Counter(gold)
        self.n += 1
        self.succ += ok
        self.tp += common
        self.pred += len(pred)
        self.gold += len(gold)
        self.latency.append(latency)
        self.paths[path] += 1
        return ok


def load_cases(where: Path) -> tuple[list[dict[str, Any]], Path]:
    """Cases and the homes folder from a benchmark folder or its cases.jsonl."""
    cases_file = where / "cases.jsonl" if where.is_dir() else where
    if not cases_file.is_file():
        raise ValueError(f"HomeBench cases not found: {cases_file}")
    cases = []
    for n, line in enumerate(cases_file.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                cases.append(json.loads(line))
            except ValueError as exc:
                log.warning("%s:%d: bad JSON line skipped: %s", cases_file, n, exc)
    return cases, cases_file.parent / "homes"


def main(args: argparse.Namespace) -> int:
    """`hubagent eval --format homebench FOLDER|cases.jsonl [--limit N] [--json] [--out F]`."""
    from hubagent.config import load_config
    from hubagent.understand.runtime import open_runtime

    if not args.cases:
        raise ValueError("give the HomeBench folder or its cases.jsonl")
    cases, homes_dir = load_cases(Path(args.cases))
    if args.limit:
        cases = cases[: args.limit]
    cfg = load_config(getattr(args, "config", None))
    runtime = None if args.no_llm else open_runtime(cfg.llm)
    try:
        with contextlib.ExitStack() as stack:
            out = (
                stack.enter_context(Path(args.out).open("w", encoding="utf-8"))
                if args.out
                else None
            )
            scores, understanders = _run(cases, homes_dir, runtime, out)
    finally:
        if runtime is not None:
            runtime.close()
    summary = _summary(scores, [u.stats for u in understanders])
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        _print_table(summary)
    return 0


def _run(
    cases: list[dict[str, Any]], homes_dir: Path, runtime: Any, out: Any
) -> tuple[dict[str, CategoryScore], list[Any]]:
    from hubagent.understand.llm import LlmUnderstander

    homes: dict[Any, HomebenchHome] = {}
    understanders: dict[Any, LlmUnderstander] = {}
    scores: dict[str, CategoryScore] = {}
    # Cases of one home together: the prompt prefix (its device list) stays cached.
    for case in sorted(cases, key=lambda c: str(c.get("home_id"))):
        hid = case.get("home_id")
        if hid not in homes:
            path = homes_dir / f"{hid}.json"
            try:
                homes[hid] = import_home(json.loads(path.read_text(encoding="utf-8")))
            except (OSError, ValueError) as exc:
                log.warning("home %s unusable (%s): case %s skipped", hid, exc, case.get("id"))
                continue
            understanders[hid] = LlmUnderstander(homes[hid].registry, runtime)
        t0 = time.perf_counter()
        result = understanders[hid].understand(str(case.get("text", "")))
        ms = (time.perf_counter() - t0) * 1000
        pred, gold = predict_tokens(homes[hid], result), tokens(case.get("expected", ""))
        score = scores.setdefault(case.get("category", "unknown"), CategoryScore())
        ok = score.add(pred, gold, ms, result.path)
        if out is not None:
            record = {
                "id": case.get("id"),
                "text": case.get("text"),
                "intent": result.intent,
                "actions": [a.to_dict() for a in result.actions],
                "steps": [s.to_dict() for s in result.steps],
                "refused": any(s.error for s in result.steps),
                "reply": result.answer or "",
                "path": result.path,
                "latency_ms": round(ms, 1),
                "category": case.get("category"),
                "predicted": pred,
                "expected": gold,
                "success": ok,
            }
            out.write(json.dumps(record) + "\n")
    return scores, list(understanders.values())


def _summary(scores: dict[str, CategoryScore], stats: list[Any]) -> dict[str, Any]:
    summary = {c: scores[c].summary() for c in _ordered(scores)}
    total = CategoryScore()
    for s in scores.values():
        total.n += s.n
        total.succ += s.succ
        total.tp, total.pred, total.gold = total.tp + s.tp, total.pred + s.pred, total.gold + s.gold
        total.latency += s.latency
        total.paths.update(s.paths)
    summary["all"] = total.summary()
    ms = sorted(m for s in stats for m in s.ms)
    summary["llm"] = {
        "steps": sum(s.steps for s in stats),
        "model_calls": sum(s.calls for s in stats),
        "prompt_tokens": sum(s.prompt_tokens for s in stats),
        "generated_tokens": sum(s.generated_tokens for s in stats),
        "cached_tokens": sum(s.cached_tokens for s in stats),
        "call_p50_ms": round(statistics.median(ms), 1) if ms else 0.0,
    }
    return summary


def _print_table(summary: dict[str, Any]) -> None:
    head = f"{'category':<18}{'n':>4}{'succ':>8}{'P':>8}{'R':>8}{'F1':>8}{'p50ms':>9}{'p95ms':>9}"
    print(head + "  paths")
    for cat, s in summary.items():
        if cat == "llm":
            continue
        paths = " ".join(f"{k}={v:.0%}" for k, v in s["paths"].items())
        print(
            f"{cat:<18}{s['n']:>4}{s['success']:>8.1f}{s['precision']:>8.1f}{s['recall']:>8.1f}"
            f"{s['f1']:>8.1f}{s['latency_p50_ms']:>9.0f}{s['latency_p95_ms']:>9.0f}  {paths}"
        )
    print("llm: " + ", ".join(f"{k}={v}" for k, v in summary["llm"].items()))


def _ordered(scores: dict[str, CategoryScore]) -> list[str]:
    known = [c for c in CATEGORY_ORDER if c in scores]
    return known + sorted(c for c in scores if c not in CATEGORY_ORDER)
