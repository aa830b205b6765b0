"""Hashed word and character n-gram features for the student.

The hashing trick keeps the feature space fixed (no vocabulary to store or grow): each
n-gram is hashed with CRC32, which unlike Python's `hash` is stable across processes, so
a saved student computes the same features tomorrow.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import asdict, dataclass

import numpy as np

_WORD = re.compile(r"[a-z0-9]+")


@dataclass(frozen=True)
class FeatureConfig:
    """How text becomes a vector (stored with the student)."""

    dim: int = 4096
    word_ngrams: int = 2  # words 1..N
    char_ngrams: tuple[int, int] = (3, 5)  # char n-grams lo..hi inside word boundaries

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> FeatureConfig:
        return cls(
            int(data.get("dim", 4096)),
            int(data.get("word_ngrams", 2)),
            tuple(int(x) for x in data.get("char_ngrams", (3, 5))),  # type: ignore[arg-type]
        )


def ngrams(text: str, cfg: FeatureConfig) -> list[str]:
    """The word n-grams and character n-grams of `text` (lower case, punctuation dropped)."""
    tokens = _WORD.findall(text.lower())
    grams = []
    for n in range(1, cfg.word_ngrams + 1):
        grams += ["w:" + " ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
    lo, hi = cfg.char_ngrams
    for token in tokens:
        # Digits say "a value follows", not which entity: fold them so "set to 37" and
        # "set to 40" share features.
        padded = f"<{re.sub(r'[0-9]', '0', token)}>"
        for n in range(lo, hi + 1):
            grams += ["c:" + padded[i : i + n] for i in range(len(padded) - n + 1)]
    return grams


def featurize(text: str, cfg: FeatureConfig) -> tuple[np.ndarray, np.ndarray]:
    """Sparse (indices, values): hashed n-gram counts, L2-normalised; sign hashing halves
    the bias collisions add."""
    counts: dict[int, float] = {}
    for gram in ngrams(text, cfg):
        h = zlib.crc32(gram.encode("utf-8"))
        index = h % cfg.dim
        counts[index] = counts.get(index, 0.0) + (1.0 if (h >> 31) & 1 == 0 else -1.0)
    if not counts:
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    idx = np.fromiter(counts.keys(), np.int64, len(counts))
    val = np.fromiter(counts.values(), np.float32, len(counts))
    norm = float(np.linalg.norm(val))
    return idx, val / norm if norm > 0 else val


def matrix(texts: list[str], cfg: FeatureConfig) -> np.ndarray:
    """Dense (n, dim) float32 feature matrix for training."""
    x = np.zeros((len(texts), cfg.dim), np.float32)
    for row, text in enumerate(texts):
        idx, val = featurize(text, cfg)
        np.add.at(x[row], idx, val)
    return x
