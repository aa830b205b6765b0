"""What every evaluator reports per category from pooled counts: success, precision, recall
and F1 over predicted vs expected items, latency percentiles and the share of each path."""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from typing import Any


def pooled_summary(
    n: int,
    ok: int,
    tp: int,
    pred: int,
    gold: int,
    latency: list[float],
    paths: Mapping[str, int],
    digits: int = 1,
) -> dict[str, Any]:
    """Percentages rounded to `digits`; `paths` in the order given."""
    p = tp / pred if pred else 0.0
    r = tp / gold if gold else 0.0
    lat = sorted(latency)
    return {
        "n": n,
        "success": round(100 * ok / n, digits) if n else 0.0,
        "precision": round(100 * p, digits),
        "recall": round(100 * r, digits),
        "f1": round(100 * 2 * p * r / (p + r), digits) if p + r else 0.0,
        "latency_p50_ms": round(statistics.median(lat), 1) if lat else 0.0,
        "latency_p95_ms": round(lat[min(len(lat) - 1, int(0.95 * len(lat)))], 1) if lat else 0.0,
        "paths": {k: round(v / n, 3) for k, v in paths.items()} if n else {},
    }
