"""The ranges and choices of the configuration's settings, checked once it is built.

Kept apart from `config` (the dataclasses and the loader) so each stays small; `config`
calls `check_bounds` and `check_model` at load and re-exports nothing from here.
"""

from __future__ import annotations

import math
from typing import Any

LLM_BACKENDS = ("local", "openai", "none")
MODEL_CHOICES = ("small", "large")


class ConfigError(ValueError):
    """An invalid configuration: the message names file, key and problem."""


# Numeric settings and their allowed ranges (inclusive; None: unbounded; POSITIVE: more than
# 0). Durations must be positive unless 0 has a meaning (noted); a port 0 lets the system
# pick a free one.
POSITIVE: tuple[float | None, float | None] = (None, None)
_PORT = (0, 65535)
BOUNDS: dict[str, tuple[float | None, float | None]] = {
    "mqtt.port": (1, 65535),
    "mqtt.keepalive": (1, 65535),
    "mqtt.reconnect_min_s": POSITIVE,
    "mqtt.reconnect_max_s": POSITIVE,
    "broker.plain_listener.port": _PORT,  # 0: off
    "llm.threads": (0, 1024),  # 0: all cores
    "llm.context": (256, None),
    "llm.student_threshold": (0, 1),
    "llm.warm_debounce_s": (0, None),  # 0: warm at once
    "policy.confirm_window_s": POSITIVE,
    "policy.rate_limit_per_entity": (1, None),
    "policy.rate_window_s": POSITIVE,
    "store.history_days": (0, None),  # 0: keep no history
    "store.outbox_ttl_s": POSITIVE,
    "store.outbox_resume_delay_s": (0, None),  # 0: replay at once
    "store.history_max_rows": (1, None),
    "store.history_max_bytes": (1, None),
    "store.max_state_bytes": (1, None),
    "store.audit_pending_max": (1, None),
    "http.port": _PORT,
    "http.idle_timeout_s": POSITIVE,
    "http.body_timeout_s": POSITIVE,
    "http.max_connections": (1, None),
    "wyoming.port": _PORT,
    "wyoming.max_connections": (1, None),
    "wyoming.max_connections_per_peer": (1, None),
    "wyoming.idle_timeout_s": POSITIVE,
    "homeassistant.timeout_s": POSITIVE,
    "homeassistant.refresh_s": POSITIVE,
}
CHOICES: dict[str, tuple[str, ...]] = {"llm.backend": LLM_BACKENDS}


def check_bounds(cfg: Any, where: str) -> None:
    """Ranges and choices of `BOUNDS` / `CHOICES`; a `ConfigError` naming the first bad key."""
    for key, bounds in BOUNDS.items():
        value = _lookup(cfg, key)
        low, high = bounds
        if bounds is POSITIVE:
            ok, allowed = value > 0, "more than 0"
        elif high is None:
            ok, allowed = value >= low, f"at least {low:g}"
        else:
            ok, allowed = low <= value <= high, f"between {low:g} and {high:g}"
        if key.endswith(".port") and low == 0:
            allowed += " (0: " + ("off" if "plain" in key else "any free port") + ")"
        if not (math.isfinite(value) and ok):
            raise ConfigError(f"{where}: '{key}' must be {allowed}, got {value!r}")
    for key, allowed_values in CHOICES.items():
        value = _lookup(cfg, key)
        if value not in allowed_values:
            raise ConfigError(
                f"{where}: '{key}' must be one of {', '.join(allowed_values)}, got {value!r}"
            )
    if cfg.mqtt.reconnect_max_s < cfg.mqtt.reconnect_min_s:
        raise ConfigError(
            f"{where}: 'mqtt.reconnect_max_s' ({cfg.mqtt.reconnect_max_s:g}) must not be less "
            f"than 'mqtt.reconnect_min_s' ({cfg.mqtt.reconnect_min_s:g})"
        )


def _lookup(cfg: Any, key: str) -> Any:
    value: Any = cfg
    for part in key.split("."):
        value = getattr(value, part)
    return value


def check_model(llm: Any, where: str) -> None:
    """`llm.model` names something that exists (a typo fails at load)."""
    name = llm.model.strip()
    if name in (*MODEL_CHOICES, "default") or name.lower().endswith(".gguf"):
        return
    if "/" in name or "\\" in name:  # a path to a model file without the usual suffix
        return
    raise ConfigError(
        f"{where}: 'llm.model' must be {', '.join(MODEL_CHOICES)}, default or a path to a "
        f".gguf file, got {llm.model!r}"
    )
