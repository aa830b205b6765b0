"""LLM runtimes: llama.cpp in-process (xllamacpp) or any OpenAI-compatible server.

Both decode greedily (temperature 0) and constrain the output with a JSON schema, so the
same prompt gives the same answer; llama.cpp's prompt cache reuses the KV cache of the
stable prompt prefix between requests.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from hubagent.understand.modelfiles import ModelError, check_gguf

log = logging.getLogger(__name__)


@dataclass
class Completion:
    """One generated text with its token accounting."""

    text: str
    prompt_tokens: int = 0
    generated_tokens: int = 0
    cached_tokens: int = 0
    ms: float = 0.0


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

    def complete(
        self, prompt: str, json_schema: dict | None, max_tokens: int, grammar: str | None = None
    ) -> Completion:
        body: dict[str, Any] = {
            "prompt": prompt,
            "max_tokens": max_tokens,
            "temperature": 0.0,
            "top_k": 1,
            "cache_prompt": True,
            "seed": 0,
        }
        if grammar is not None:
            body["grammar"] = grammar
        elif json_schema is not None:
            body["json_schema"] = json_schema
        t0 = time.perf_counter()
        with self._lock:
            result = self._server.handle_completions(body)
        ms = (time.perf_counter() - t0) * 1000
        if not isinstance(result, dict) or "choices" not in result:
            raise ModelError(f"llama.cpp error: {str(result)[:200]}")
        usage = result.get("usage") or {}
        details = usage.get("prompt_tokens_details") or {}
        return Completion(
            text=result["choices"][0].get("text", ""),
            prompt_tokens=int(usage.get("prompt_tokens", 0)),
            generated_tokens=int(usage.get("completion_tokens", 0)),
            cached_tokens=int(details.get("cached_tokens", 0)),
            ms=ms,
        )

    @property
    def http_url(self) -> str:
        """The OpenAI-compatible endpoint llama.cpp's server also serves (loopback only)."""
        return f"{self._server.listening_address}/v1"

    def close(self) -> None:
        self._server = None  # type: ignore[assignment]


class OpenAIRuntime:
    """Any OpenAI-compatible `/v1/completions` server (llama.cpp server, vLLM, Ollama)."""

    supports_grammar = False  # vLLM and Ollama only take JSON schemas

    def __init__(self, url: str, model: str, key: str | None = None, timeout: float = 60.0):
        self.url = url.rstrip("/")
        self.model = model
        self.key = key
        self.timeout = timeout

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


def open_runtime(llm_cfg: Any) -> Runtime | None:
    """The runtime for `LlmConfig` (None when `backend` is "none")."""
    if llm_cfg.backend == "none":
        return None
    if llm_cfg.backend == "openai":
        return OpenAIRuntime(llm_cfg.openai_url, llm_cfg.openai_model, llm_cfg.openai_key)
    from hubagent.understand.modelfiles import resolve_model

    return XllamaRuntime(resolve_model(llm_cfg), llm_cfg.threads, llm_cfg.context)
