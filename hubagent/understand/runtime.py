"""LLM runtimes: llama.cpp in-process (xllamacpp) or any OpenAI-compatible server.

Both decode greedily (temperature 0) and constrain the output with a JSON schema, so the
same prompt gives the same answer; llama.cpp's prompt cache reuses the KV cache of the
stable prompt prefix between requests. `warm(prefix)` evaluates that prefix ahead of the
first request (at hub start and after registry changes), so no request pays for it.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from hubagent.understand.modelfiles import ModelError, check_gguf

log = logging.getLogger(__name__)

# llama.cpp's CPU backend uses OpenMP; with the default (active) wait policy its idle threads
# spin, and on a shared 2-core machine generation fell to ~1 token/s. libgomp reads this
# once when it loads, so it is set before xllamacpp is imported (a user's value is kept).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
PROMPT_RAM_CACHE_MIB = 256


@dataclass
class Completion:
    """One generated text with its token accounting."""

    text: str
    prompt_tokens: int = 0
    generated_tokens: int = 0
    cached_tokens: int = 0
    ms: float = 0.0
    prompt_ms: float = 0.0  # the runtime's own timings, when it reports them (llama.cpp)
    generated_ms: float = 0.0

    @property
    def tokens_per_s(self) -> float:
        """Generation speed (0 when the runtime reports no timings)."""
        return self.generated_tokens / self.generated_ms * 1000 if self.generated_ms else 0.0


@dataclass
class RuntimeStats:
    """What a runtime has done since it loaded: requests and prefix warm-ups."""

    requests: int = 0
    warms: int = 0
    warm_tokens: int = 0  # prompt tokens evaluated by the last warm-up (not from cache)
    warm_ms: float = 0.0  # duration of the last warm-up
    last_prefix: str = ""


class Runtime(Protocol):
    """What the understanders need from a language model."""

    def complete(
        self, prompt: str, json_schema: dict | None, max_tokens: int, grammar: str | None = None
    ) -> Completion:
        """Greedy completion of a raw (already templated) prompt.

        `grammar` (GBNF) replaces `json_schema` on runtimes with `supports_grammar`.
        """
        ...

    def close(self) -> None: ...

    # Optional: `warm(prefix) -> Completion | None` evaluates the stable prompt prefix into
    # the prompt cache, and `stats` (RuntimeStats) counts requests and warm-ups.


class XllamaRuntime:
    """llama.cpp's server engine in-process, one slot, prompt cache on."""

    supports_grammar = True

    def __init__(self, model_path: Path | str, threads: int = 0, context: int = 4096) -> None:
        path = Path(model_path)
        check_gguf(path)
        try:
            import xllamacpp
        except ImportError:
            raise ModelError("xllamacpp is not installed: pip install xllamacpp") from None
        params = xllamacpp.CommonParams()
        params.model.path = str(path)
        params.n_ctx = context
        params.n_parallel = 1  # one slot: its KV cache holds the shared prompt prefix
        n = threads if threads > 0 else (os.cpu_count() or 1)
        params.cpuparams.n_threads = n
        params.cpuparams_batch.n_threads = n
        params.cache_prompt = True
        # llama.cpp also keeps earlier prompts' KV state in RAM (8 GiB by default); a hub
        # only needs its last few prefixes (one per registry change) there.
        params.cache_ram_mib = PROMPT_RAM_CACHE_MIB
        params.warmup = False
        params.verbosity = -1
        params.sampling.temp = 0.0
        params.sampling.top_k = 1
        params.sampling.seed = 0
        t0 = time.perf_counter()
        try:
            self._server = xllamacpp.Server(params)
        except Exception as exc:  # noqa: BLE001 - llama.cpp raises plain RuntimeErrors
            raise ModelError(f"cannot load model {path}: {exc}".splitlines()[0]) from None
        self.load_ms = (time.perf_counter() - t0) * 1000
        self._lock = threading.Lock()  # one request at a time in the single slot
        self.stats = RuntimeStats()

    def warm(self, prefix: str) -> Completion | None:
        """One token generated after `prefix`: llama.cpp keeps the prefix's KV cache in the
        slot and reuses it for every request that starts with it (`cache_prompt`)."""
        if not prefix or self._server is None:
            return None
        t0 = time.perf_counter()
        completion = self._call({"prompt": prefix, "max_tokens": 1})
        self.stats.warms += 1
        self.stats.warm_tokens = completion.prompt_tokens - completion.cached_tokens
        self.stats.warm_ms = (time.perf_counter() - t0) * 1000
        self.stats.last_prefix = prefix
        return completion

    def complete(
        self, prompt: str, json_schema: dict | None, max_tokens: int, grammar: str | None = None
    ) -> Completion:
        body: dict[str, Any] = {"prompt": prompt, "max_tokens": max_tokens}
        if grammar is not None:
            body["grammar"] = grammar
        elif json_schema is not None:
            body["json_schema"] = json_schema
        completion = self._call(body)
        self.stats.requests += 1
        return completion

    def _call(self, body: dict[str, Any]) -> Completion:
        """One greedy completion in the single slot, prompt cache on."""
        body = {**body, "temperature": 0.0, "top_k": 1, "cache_prompt": True, "seed": 0}
        t0 = time.perf_counter()
        with self._lock:
            if self._server is None:
                raise ModelError("the model runtime is closed")
            result = self._server.handle_completions(body)
        ms = (time.perf_counter() - t0) * 1000
        if not isinstance(result, dict) or "choices" not in result:
            raise ModelError(f"llama.cpp error: {str(result)[:200]}")
        usage = result.get("usage") or {}
        details = usage.get("prompt_tokens_details") or {}
        timings = result.get("timings") or {}
        return Completion(
            text=result["choices"][0].get("text", ""),
            prompt_tokens=int(usage.get("prompt_tokens", 0)),
            generated_tokens=int(usage.get("completion_tokens", 0)),
            cached_tokens=int(details.get("cached_tokens", 0)),
            ms=ms,
            prompt_ms=float(timings.get("prompt_ms", 0.0) or 0.0),
            generated_ms=float(timings.get("predicted_ms", 0.0) or 0.0),
        )

    @property
    def http_url(self) -> str:
        """The OpenAI-compatible endpoint llama.cpp's server also serves (loopback only)."""
        return f"{self._server.listening_address}/v1"

    def close(self, timeout: float = 60.0) -> None:
        """Let a call in progress finish (freeing the model under running native code, or
        ending the interpreter during it, crashes the process), then drop the server."""
        acquired = self._lock.acquire(timeout=timeout)
        try:
            self._server = None  # type: ignore[assignment]
        finally:
            if acquired:
                self._lock.release()


class OpenAIRuntime:
    """Any OpenAI-compatible `/v1/completions` server (llama.cpp server, vLLM, Ollama)."""

    supports_grammar = False  # vLLM and Ollama only take JSON schemas

    def __init__(self, url: str, model: str, key: str | None = None, timeout: float = 60.0):
        self.url = url.rstrip("/")
        self.model = model
        self.key = key
        self.timeout = timeout
        self.stats = RuntimeStats()

    def warm(self, prefix: str) -> Completion | None:
        """Servers with a prompt cache (llama.cpp server) keep the prefix; others ignore it."""
        if not prefix:
            return None
        completion = self.complete(prefix, None, 1)
        self.stats.requests -= 1  # a warm-up is not a request
        self.stats.warms += 1
        self.stats.warm_tokens = completion.prompt_tokens - completion.cached_tokens
        self.stats.warm_ms = completion.ms
        self.stats.last_prefix = prefix
        return completion

    def complete(
        self, prompt: str, json_schema: dict | None, max_tokens: int, grammar: str | None = None
    ) -> Completion:
        body: dict[str, Any] = {
            "model": self.model,
            "prompt": prompt,
            "max_tokens": max_tokens,
            "temperature": 0,
            "cache_prompt": True,  # llama.cpp server: reuse the prefix KV cache
        }
        if json_schema is not None:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "steps", "schema": json_schema, "strict": True},
            }
            # llama.cpp's /v1/completions reads its native field, not response_format.
            body["json_schema"] = json_schema
        headers = {"Content-Type": "application/json"}
        if self.key:
            headers["Authorization"] = f"Bearer {self.key}"
        request = urllib.request.Request(
            f"{self.url}/completions", json.dumps(body).encode(), headers, method="POST"
        )
        t0 = time.perf_counter()
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as resp:
                data = json.loads(resp.read().decode("utf-8"))
        except (urllib.error.URLError, TimeoutError, ValueError) as exc:
            raise ModelError(f"LLM server {self.url} failed: {exc}") from None
        ms = (time.perf_counter() - t0) * 1000
        self.stats.requests += 1
        usage = data.get("usage") or {}
        details = usage.get("prompt_tokens_details") or {}
        choices = data.get("choices") or [{}]
        return Completion(
            text=choices[0].get("text", ""),
            prompt_tokens=int(usage.get("prompt_tokens", 0)),
            generated_tokens=int(usage.get("completion_tokens", 0)),
            cached_tokens=int(details.get("cached_tokens", 0) or 0),
            ms=ms,
        )

    def close(self) -> None:
        pass


class LazyRuntime:
    """A runtime opened on first use: `hubagent ask` loads the model only when neither the
    templates nor the wording decide the request (loading takes seconds)."""

    def __init__(self, opener: Callable[[], Runtime | None]) -> None:
        """`opener` returns the runtime, or None (after logging why) when it cannot load."""
        self._opener = opener
        self._inner: Runtime | None = None
        self._failed = False
        self.loads = 0  # how often the opener ran (0 or 1)

    @property
    def loaded(self) -> bool:
        return self._inner is not None

    def _get(self) -> Runtime:
        if self._inner is None:
            if self._failed:
                raise ModelError("the model is unavailable (see the message above)")
            self.loads += 1
            self._inner = self._opener()
            if self._inner is None:
                self._failed = True
                raise ModelError("the model is unavailable (see the message above)")
        return self._inner

    @property
    def supports_grammar(self) -> bool:
        return bool(getattr(self._get(), "supports_grammar", False))

    def complete(
        self, prompt: str, json_schema: dict | None, max_tokens: int, grammar: str | None = None
    ) -> Completion:
        return self._get().complete(prompt, json_schema, max_tokens, grammar=grammar)

    def close(self) -> None:
        if self._inner is not None:
            self._inner.close()


def open_runtime(llm_cfg: Any) -> Runtime | None:
    """The runtime for `LlmConfig` (None when `backend` is "none")."""
    if llm_cfg.backend == "none":
        return None
    if llm_cfg.backend == "openai":
        return OpenAIRuntime(llm_cfg.openai_url, llm_cfg.openai_model, llm_cfg.openai_key)
    from hubagent.understand.modelfiles import resolve_model

    path = resolve_model(llm_cfg, log.info)  # a first assembly logs its progress
    return XllamaRuntime(path, llm_cfg.threads, llm_cfg.context)
