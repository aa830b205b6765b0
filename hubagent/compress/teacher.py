"""Teachers: who gives the student its soft targets.

`LlmTeacher` scores each candidate action with the local LLM: under the hub's own prompt
(hubagent.understand.prompt) it forces the answer `{"e": "<entity>", "a": "<verb>"}` with a
one-string grammar and sums the raw (pre-grammar) log-probabilities llama.cpp reports for
the forced tokens, i.e. log P(candidate | prompt). Only the top-K classes of a cheap prior
are scored; the rest get -inf. Scores are cached on disk, keyed by prompt prefix, text and
candidate, so reruns are free. `RulesTeacher` uses the prior itself (no model, for tests
and fast benchmark runs).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from hubagent.compress.dataset import Prior, classes_for, split_label
from hubagent.home.registry import Registry
from hubagent.understand.prompt import build_prefix, build_prompt
from hubagent.understand.schema import PREFILL

log = logging.getLogger(__name__)


class Teacher(Protocol):
    def logits(self, text: str, candidates: list[str]) -> dict[str, float]:
        """Unnormalised log-scores for each candidate class."""
        ...


def soft_targets(logits: dict[str, float], classes: list[str], temperature: float) -> np.ndarray:
    """softmax(z_T / T) over the class set; classes the teacher did not score get 0."""
    z = np.full(len(classes), -np.inf)
    index = {c: i for i, c in enumerate(classes)}
    for cls, value in logits.items():
        if cls in index and math.isfinite(value):
            z[index[cls]] = value / temperature
    if not np.isfinite(z).any():
        return np.full(len(classes), 1.0 / len(classes))
    e = np.exp(z - z[np.isfinite(z)].max())
    return e / e.sum()


class RulesTeacher:
    """The cheap prior as a teacher: word overlap with device, area and verb."""

    def __init__(self, registry: Registry, scale: float = 2.0) -> None:
        self.prior = Prior(registry, classes_for(registry))
        self.scale = scale

    def logits(self, text: str, candidates: list[str]) -> dict[str, float]:
        scores = self.prior.scores(text, candidates)
        return {c: self.scale * s for c, s in scores.items()}


class LlmTeacher:
    """Candidate scoring with the local model (xllamacpp), cached in a JSON file."""

    def __init__(self, registry: Registry, runtime: Any, cache: Path | None = None) -> None:
        server = getattr(runtime, "_server", None)
        if server is None or not hasattr(server, "handle_completions"):
            raise ValueError("the LLM teacher needs the in-process llama.cpp runtime (xllamacpp)")
        self._server = server
        self._lock = getattr(runtime, "_lock", None)
        self.prefix = build_prefix(registry)
        self.cache_path = cache
        self.cache: dict[str, float] = {}
        self.calls = 0
        if cache is not None and cache.is_file():
            try:
                self.cache = json.loads(cache.read_text(encoding="utf-8"))
            except ValueError as exc:
                log.warning("teacher cache %s unreadable (%s): starting empty", cache, exc)

    def _key(self, text: str, cls: str) -> str:
        raw = f"{self.prefix}\0{text}\0{cls}".encode()
        return hashlib.sha256(raw).hexdigest()[:32]

    def logits(self, text: str, candidates: list[str]) -> dict[str, float]:
        out = {}
        for cls in candidates:
            key = self._key(text, cls)
            if key not in self.cache:
                self.cache[key] = self._score(text, cls)
            out[cls] = self.cache[key]
        return out

    def _score(self, text: str, cls: str) -> float:
        """log P(`{"e": entity, "a": verb}` | prompt), summed over the forced tokens."""
        entity_id, verb = split_label(cls)
        answer = f'{entity_id}", "a": "{verb}"}}'
        literal = answer.replace("\\", "\\\\").replace('"', '\\"')
        body = {
            "prompt": build_prompt(self.prefix, text, PREFILL),
            "max_tokens": 48,
            "temperature": 0.0,
            "top_k": 1,
            "n_probs": 1,  # makes llama.cpp report each token's raw log-probability
            "cache_prompt": True,
            "grammar": f'root ::= "{literal}"\n',
        }
        self.calls += 1
        if self._lock is not None:
            with self._lock:
                result = self._server.handle_completions(body)
        else:
            result = self._server.handle_completions(body)
        try:
            content = result["choices"][0]["logprobs"]["content"]
            return float(sum(t["logprob"] for t in content))
        except (KeyError, IndexError, TypeError) as exc:
            log.warning("teacher could not score %r for %r: %s", cls, text, exc)
            return -math.inf

    def save(self) -> None:
        if self.cache_path is not None:
            self.cache_path.parent.mkdir(parents=True, exist_ok=True)
            self.cache_path.write_text(json.dumps(self.cache), encoding="utf-8")
