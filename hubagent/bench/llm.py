"""LLM overhead: `LlmUnderstander.understand` on one command vs the bare `runtime.complete`
call with exactly the prompt, grammar (or schema) and token budget the understander sent.

The understander runs over a recording wrapper, so the bare calls replay byte-identical
arguments. The two passes run separately, each over the same sentence order, so in both the
llama.cpp prompt cache holds the previous *different* command: the shared prefix is reused,
the command tail is not, exactly as in service.

Start-up is measured the way the hub does it, on a freshly loaded runtime of the same model
(an empty cache; llama.cpp also keeps earlier prompts in RAM, so an old runtime cannot be
made cold): the prefix warm-up the hub runs in the background at start
(`LlmUnderstander.warm`), then the first request, timed against the p95 of the warm
requests. Full runs also time a first request on a fresh runtime with no warm-up (before).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hubagent.bench.report import SuiteResult, median, percentile, rss_kib

# Single commands the matcher misses (see latency.LLM_SENTENCES): one model call each.
SENTENCES = [
    "switch off the telly in the lounge thanks",
    "i would like you to switch on the espresso machine",
    "kindly turn off the reading lamp in the living room now",
    "hey turn on the worktop lights in the kitchen right now",
]


@dataclass
class Recorder:
    """A Runtime that forwards to `inner` and keeps every call's arguments and result."""

    inner: Any
    calls: list[tuple[tuple[Any, ...], dict[str, Any], Any]] = field(default_factory=list)

    @property
    def supports_grammar(self) -> bool:
        return bool(getattr(self.inner, "supports_grammar", False))

    def complete(self, *args: Any, **kwargs: Any) -> Any:
        completion = self.inner.complete(*args, **kwargs)
        self.calls.append((args, kwargs, completion))
        return completion

    def warm(self, prefix: str) -> Any:
        """Forwarded unrecorded: a warm-up is not one of the understander's calls."""
        warm = getattr(self.inner, "warm", None)
        return warm(prefix) if warm is not None else None

    def close(self) -> None:
        pass


def _tokens(completions: list[Any]) -> dict[str, float]:
    prompt = sum(c.prompt_tokens for c in completions)
    cached = sum(c.cached_tokens for c in completions)
    n = max(len(completions), 1)
    return {
        "prompt_tokens": prompt / n,
        "generated_tokens": sum(c.generated_tokens for c in completions) / n,
        "cached_tokens": cached / n,
        "prefix_cache_hit_rate": cached / prompt if prompt else 0.0,
    }


def _fresh_start(
    registry: Any, open_fresh: Callable[[], Any], text: str, *, warm: bool
) -> dict[str, float]:
    """A freshly loaded runtime: (with `warm`) the prefix warm-up, then the first request."""
    import gc

    from hubagent.understand.llm import LlmUnderstander

    facts: dict[str, float] = {}
    runtime = open_fresh()
    if runtime is None:
        return facts
    try:
        understander = LlmUnderstander(registry, runtime, always_ask=True)
        if warm:
            t0 = time.perf_counter()
            understander.warm()
            facts["warm_ms"] = (time.perf_counter() - t0) * 1000
            facts["warm_tokens"] = float(getattr(runtime.stats, "warm_tokens", 0))
        t0 = time.perf_counter()
        understander.understand(text)
        facts["first_ms"] = (time.perf_counter() - t0) * 1000
        facts["first_prompt_tokens"] = float(understander.stats.prompt_tokens)
        facts["first_cached_tokens"] = float(understander.stats.cached_tokens)
    finally:
        runtime.close()
        del runtime
        gc.collect()
    return facts


def run(
    registry: Any,
    runtime: Any,
    *,
    quick: bool,
    repeats: int,
    progress: Callable[[str], None] | None = None,
    open_fresh: Callable[[], Any] | None = None,
) -> SuiteResult:
    """The LLM suite over a registry that holds the home (the latency suite's hub);
    `open_fresh` loads another runtime of the same model for the start-up rows."""
    from hubagent.understand.llm import LlmUnderstander

    say = progress or (lambda _m: None)
    result = SuiteResult("llm")
    recorder = Recorder(runtime)
    understander = LlmUnderstander(registry, recorder, always_ask=True)
    sentences = SENTENCES[:2] if quick else SENTENCES
    start: dict[str, float] = {}
    if open_fresh is not None:
        say("llm: fresh runtime: prefix warm-up, then the first request")
        start = _fresh_start(registry, open_fresh, sentences[0], warm=True)
        if not quick:
            say("llm: fresh runtime: first request without a warm-up (before)")
            cold = _fresh_start(registry, open_fresh, sentences[0], warm=False)
            if cold:
                start["first_unwarmed_ms"] = cold["first_ms"]
    understander.understand(sentences[0])  # the shared runtime's cache: the prefix
    say(f"llm: {repeats} x {len(sentences)} warm requests, then the same bare calls")
    hub_ms: list[float] = []
    bare_ms: list[float] = []
    hub_c: list[Any] = []
    bare_c: list[Any] = []
    calls_per_request: list[int] = []
    own_ms: list[float] = []  # understand() minus the runtime's own time for its calls
    for _ in range(repeats):
        recorder.calls.clear()
        for text in sentences:
            before = len(recorder.calls)
            t0 = time.perf_counter()
            understander.understand(text)
            hub_ms.append((time.perf_counter() - t0) * 1000)
            calls_per_request.append(len(recorder.calls) - before)
            own_ms.append(hub_ms[-1] - sum(c.ms for _, _, c in recorder.calls[before:]))
        recorded = list(recorder.calls)
        hub_c += [c for _, _, c in recorded]
        # The bare pass: the same calls, same order, straight to the runtime.
        for args, kwargs, _ in recorded:
            t0 = time.perf_counter()
            bare_c.append(runtime.complete(*args, **kwargs))
            bare_ms.append((time.perf_counter() - t0) * 1000)
    # Requests with exactly one model call compare 1:1 with one bare call.
    hub_med, bare_med = median(hub_ms), median(bare_ms)
    result.add("decision time (understand)", hub_med, "ms", baseline=bare_med,
               baseline_name="bare runtime.complete", runs=len(hub_ms))  # fmt: skip
    overhead = (hub_med / bare_med - 1) * 100 if bare_med else 0.0
    result.add("overhead vs bare call (medians)", overhead, "%", note="target <= 5%")
    # Robust to a noisy machine: the hub's own work around each call, same request.
    own = median(own_ms)
    call_med = median([c.ms for c in hub_c])
    result.add("hub's own time per request", own, "ms", baseline=call_med,
               baseline_name="model call inside it", runs=len(own_ms))  # fmt: skip
    result.add("hub's own time / model call", own / call_med * 100 if call_med else 0.0,
               "%", note="target <= 5%")  # fmt: skip
    # Start-up: the first request after the background warm-up vs the warm requests' p95.
    p95 = percentile(hub_ms, 95)
    if "warm_ms" in start:
        result.add("prefix warm-up at start (background)", start["warm_ms"], "ms",
                   note=f"{start['warm_tokens']:.0f} prompt tokens evaluated")  # fmt: skip
        result.add("first request after start", start["first_ms"], "ms", baseline=p95,
                   baseline_name="warm p95", note="target <= p95")  # fmt: skip
        result.add("first request: prompt tokens from cache", start["first_cached_tokens"],
                   "tokens", baseline=start["first_prompt_tokens"],
                   baseline_name="prompt tokens")  # fmt: skip
    if "first_unwarmed_ms" in start:
        result.add("first request, no warm-up (before)", start["first_unwarmed_ms"], "ms",
                   baseline=p95, baseline_name="warm p95")  # fmt: skip
    result.add("decision time p95", p95, "ms", runs=len(hub_ms))
    speeds = [c.tokens_per_s for c in hub_c if getattr(c, "tokens_per_s", 0.0)]
    prompt_speeds = [
        (c.prompt_tokens - c.cached_tokens) / c.prompt_ms * 1000
        for c in hub_c
        if getattr(c, "prompt_ms", 0.0) and c.prompt_tokens > c.cached_tokens
    ]
    result.add("generation speed", median(speeds), "tok/s", runs=len(speeds))
    result.add("prompt speed (uncached tail)", median(prompt_speeds), "tok/s",
               runs=len(prompt_speeds))  # fmt: skip
    result.add("cached tokens per request", _tokens(hub_c)["cached_tokens"], "tokens",
               note="prompt tokens reused from the prefix cache")  # fmt: skip
    result.add("RSS of the bench process (model in use)", rss_kib() / 1024, "MiB")
    result.details.update(start=start)
    tok, bare_tok = _tokens(hub_c), _tokens(bare_c)
    for key in ("prompt_tokens", "generated_tokens", "prefix_cache_hit_rate"):
        result.add(key, tok[key], "ratio" if key.endswith("rate") else "tokens",
                   baseline=bare_tok[key], baseline_name="bare call")  # fmt: skip
    same = all(a.text == b.text for a, b in zip(hub_c, bare_c, strict=False))
    result.details.update(
        hub=tok, bare=bare_tok, hub_ms=hub_ms, bare_ms=bare_ms, own_ms=own_ms,
        calls_per_request=calls_per_request, same_outputs=same,
        grammar=recorder.supports_grammar,
    )  # fmt: skip
    result.notes.append(
        f"always_ask=True (every step is a model call); {median(calls_per_request):.0f} call(s) "
        f"per request; bare calls replay the recorded prompt/"
        f"{'grammar' if recorder.supports_grammar else 'schema'}/max_tokens; "
        f"identical outputs: {same}"
    )
    return result
