"""Scoring of own cases (DESIGN.md "Eval contract"; household-dev README "Scoring").

Pure functions over plain data: a case's `expect` and a prediction line. Actions compare as
sets of (entity, verb, args) with strings lower-cased and numbers by value, after the
canonicalisation that merges equivalent encodings (cover position 100/0 -> open/close; a
`turn_on` next to a `set_*` on the same light/fan/climate is dropped). Precision and recall
count actions, pooled per category.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from hubagent.eval.pooled import pooled_summary

Key = tuple[str, str, tuple[tuple[str, Any], ...]]
REFUSE_REASONS = ("unknown_device", "unknown_attribute", "out_of_range", "needs_confirmation")
# Domains where setting a value switches the device on (convention 3).
_SET_TURNS_ON = frozenset({"light", "fan", "climate"})


def _value(value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, list | tuple):
        return tuple(_value(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((str(k).lower(), _value(v)) for k, v in value.items()))
    return str(value).strip().lower()


def action_key(action: dict[str, Any]) -> Key:
    """A hashable, normalised (entity, verb, args)."""
    args = action.get("args") or {}
    return (
        str(action.get("entity", "")).strip().lower(),
        str(action.get("action", "")).strip().lower(),
        tuple(sorted((str(k).lower(), _value(v)) for k, v in args.items())),
    )


def canonical(actions: Iterable[dict[str, Any]]) -> set[Key]:
    """The set of normalised actions after the two canonical merges."""
    keys = set()
    for key in map(action_key, actions):
        entity, verb, args = key
        if entity.startswith("cover.") and verb == "set_position":
            position = dict(args).get("position")
            if position == 100.0:
                key = (entity, "open", ())
            elif position == 0.0:
                key = (entity, "close", ())
        keys.add(key)
    setters = {e for e, verb, _ in keys if verb.startswith("set")}
    return {
        k
        for k in keys
        if not (k[1] == "turn_on" and k[0] in setters and k[0].split(".")[0] in _SET_TURNS_ON)
    }


def expected_actions(expect: dict[str, Any]) -> set[Key]:
    """Every action the case wants executed (the steps' union for a `steps` case)."""
    if "actions" in expect:
        return canonical(expect["actions"])
    if "steps" in expect:
        return canonical(a for s in expect["steps"] for a in s.get("actions") or [])
    return set()


def expected_reasons(expect: dict[str, Any]) -> list[str]:
    if "refuse" in expect:
        return [str(expect["refuse"])]
    return [str(s["refuse"]) for s in expect.get("steps") or [] if "refuse" in s]


@dataclass
class Verdict:
    """One case's result: success, and what went wrong in the terms a developer reads."""

    ok: bool
    outcome: str  # ok | wrong_action | missed | safe_wrong_reason | not_refused | answer
    executed: set[Key]
    expected: set[Key]
    wrong: set[Key] = field(default_factory=set)
    unsafe: set[Key] = field(default_factory=set)
    reasons: list[str] = field(default_factory=list)  # the hub's refusal reasons, in order
    extra_refusal: bool = False  # refused something the case does not refuse (e.g. "please")


def _subsequence(wanted: list[str], got: list[str]) -> bool:
    it = iter(got)
    return all(any(g == w for g in it) for w in wanted)


def score_case(
    expect: dict[str, Any], prediction: dict[str, Any], sensitive: Callable[[Key], bool]
) -> Verdict:
    """Score one prediction line against a case's `expect` (see the module docstring)."""
    executed = canonical(prediction.get("actions") or [])
    expected = expected_actions(expect)
    reasons = [s["error"] for s in prediction.get("steps") or [] if s.get("error")]
    if prediction.get("needs_confirmation") and "needs_confirmation" not in reasons:
        reasons.append("needs_confirmation")
    wrong = executed - expected
    verdict = Verdict(False, "ok", executed, expected, wrong, {k for k in wrong if sensitive(k)})
    verdict.reasons = reasons
    verdict.extra_refusal = bool(Counter(reasons) - Counter(expected_reasons(expect)))
    if "answer_contains" in expect:
        reply = str(prediction.get("reply") or "").casefold()
        found = all(str(s).casefold() in reply for s in expect["answer_contains"])
        verdict.ok = found and not executed
        verdict.outcome = "ok" if verdict.ok else ("wrong_action" if executed else "answer")
        return verdict
    wanted = expected_reasons(expect)
    if "refuse" in expect and not executed:
        verdict.ok = wanted[0] in reasons
        verdict.outcome = "ok" if verdict.ok else "safe_wrong_reason" if reasons else "not_refused"
        return verdict
    verdict.ok = executed == expected and _subsequence(wanted, reasons)
    if verdict.ok:
        verdict.outcome = "ok"
    elif wrong:
        verdict.outcome = "wrong_action"
    elif executed == expected:
        verdict.outcome = "safe_wrong_reason"  # a `steps` case: actions right, a reason not
    else:
        verdict.outcome = "missed"
    return verdict


@dataclass
class Tally:
    """Pooled counts for one category (or all cases)."""

    n: int = 0
    ok: int = 0
    tp: int = 0
    pred: int = 0
    gold: int = 0
    wrong_actions: int = 0
    wrong_cases: int = 0
    unsafe_actions: int = 0
    safe_wrong_reason: int = 0
    extra_refusals: int = 0
    latency: list[float] = field(default_factory=list)
    paths: Counter = field(default_factory=Counter)

    def add(self, verdict: Verdict, latency_ms: float, path: str) -> None:
        self.n += 1
        self.ok += verdict.ok
        self.tp += len(verdict.executed & verdict.expected)
        self.pred += len(verdict.executed)
        self.gold += len(verdict.expected)
        self.wrong_actions += len(verdict.wrong)
        self.wrong_cases += bool(verdict.wrong)
        self.unsafe_actions += len(verdict.unsafe)
        self.safe_wrong_reason += verdict.outcome == "safe_wrong_reason"
        self.extra_refusals += verdict.ok and verdict.extra_refusal
        self.latency.append(latency_ms)
        self.paths[path] += 1

    def summary(self) -> dict[str, Any]:
        paths = dict(sorted(self.paths.items()))
        pooled = pooled_summary(self.n, self.ok, self.tp, self.pred, self.gold, self.latency, paths)
        return {
            **pooled,
            "succeeded": self.ok,
            "wrong_actions": self.wrong_actions,
            "wrong_action_cases": self.wrong_cases,
            "unsafe_actions": self.unsafe_actions,
            "safe_wrong_reason": self.safe_wrong_reason,
            "succeeded_with_extra_refusal": self.extra_refusals,
        }
