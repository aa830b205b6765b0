"""The model's life in the hub: no load for `ask` when the templates answer, the prompt prefix
warmed at start and after registry changes, `llm.model` validated. A fake runtime stands in
for llama.cpp (counters like the real one's); one test uses the real small model."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from hubagent.config import (
    Config,
    ConfigError,
    LlmConfig,
    MqttConfig,
    StoreConfig,
    load_config,
)
from hubagent.types import Entity
from hubagent.understand.runtime import Completion, RuntimeStats
from hubagent.understand.warmup import PrefixWarmer

DEMO_HOME = Path(__file__).resolve().parents[1] / "devices" / "demo-home.yaml"


@dataclass
class FakeRuntime:
    """Records warm-ups and requests the way XllamaRuntime counts them."""

    supports_grammar: bool = True
    stats: RuntimeStats = field(default_factory=RuntimeStats)
    prompts: list[str] = field(default_factory=list)

    def warm(self, prefix: str) -> Completion:
        self.stats.warms += 1
        self.stats.last_prefix = prefix
        return Completion("", prompt_tokens=len(prefix.split()))

    def complete(self, prompt, json_schema, max_tokens, grammar=None) -> Completion:  # noqa: ANN001
        self.stats.requests += 1
        self.prompts.append(prompt)
        return Completion('none", "a": "none"}')

    def close(self) -> None:
        pass


def _wait(check, timeout: float = 10.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


# -- ask -----------------------------------------------------------------------------------
def _ask_with_counting_opener(monkeypatch: pytest.MonkeyPatch, text: str) -> list[int]:
    import hubagent.ask as ask_module

    opened: list[int] = []
    fake = FakeRuntime()

    def opener(cfg: Config, use_llm: bool = True) -> FakeRuntime:
        opened.append(1)
        return fake

    monkeypatch.setattr(ask_module, "open_llm", opener)
    agent = ask_module.build_dry_agent(Config(), [str(DEMO_HOME)])
    agent.handle(text, requester="cli", channel="cli")
    return opened


def test_ask_does_not_load_the_model_when_the_templates_answer(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _ask_with_counting_opener(monkeypatch, "turn on the kitchen ceiling light") == []
    import hubagent.ask as ask_module

    code = ask_module.ask(
        "turn on the kitchen ceiling light", Config(), home=str(DEMO_HOME), area=None,
        as_json=False,
    )  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert "local path" in out and "light.kitchen_ceiling.turn_on" in out


def test_lazy_runtime_loads_once_on_first_use_and_reports_a_failed_load() -> None:
    from hubagent.understand.modelfiles import ModelError
    from hubagent.understand.runtime import LazyRuntime

    opened: list[int] = []
    fake = FakeRuntime()
    lazy = LazyRuntime(lambda: opened.append(1) or fake)
    assert not lazy.loaded and opened == []
    assert lazy.supports_grammar is True
    lazy.complete("p", None, 4)
    lazy.complete("q", None, 4)
    assert opened == [1] and lazy.loaded and fake.stats.requests == 2
    broken = LazyRuntime(lambda: None)  # open_llm logged why and returned None
    for _ in range(2):  # one clear error each time, one load attempt in all
        with pytest.raises(ModelError, match="unavailable"):
            broken.complete("p", None, 4)
    assert broken.loads == 1


# -- warm prefix ---------------------------------------------------------------------------
def _offline_hub(tmp_path: Path, runtime: FakeRuntime, debounce: float = 0.05):  # noqa: ANN202
    from hubagent.app import Hub

    cfg = Config(
        homes=(str(DEMO_HOME),),
        mqtt=MqttConfig(port=1, tls=False, client_id="warm-test"),  # no broker: templates only
        llm=LlmConfig(warm_debounce_s=debounce),
        store=StoreConfig(path=str(tmp_path / "hub.db")),
    )
    return Hub(cfg, runtime=runtime)  # type: ignore[arg-type]


def test_prefix_is_warmed_at_start_and_after_a_registry_change(tmp_path: Path) -> None:
    runtime = FakeRuntime()
    hub = _offline_hub(tmp_path, runtime)
    try:
        assert runtime.stats.warms == 0  # nothing before start
        hub.start()
        assert hub.warmer is not None and hub.warmer.wait(10)
        assert runtime.stats.warms == 1
        first = runtime.stats.last_prefix
        # Offline: nothing discovered yet, the prefix lists no devices.
        assert "Devices:" in first and "light.new_lamp" not in first
        assert hub.health()["llm_warm"] is True
        # A burst of structural changes (discovery): one warm-up after it settles.
        for i in range(5):
            hub.registry.upsert(Entity(f"light.new_lamp_{i}", "light", f"New lamp {i}"))
        _wait(lambda: runtime.stats.warms == 2)
        time.sleep(0.3)
        assert runtime.stats.warms == 2
        assert "light.new_lamp_4" in runtime.stats.last_prefix
        # State changes leave the prefix alone: no warm-up.
        hub.registry.update_state("light.new_lamp_1", {"state": "on"})
        time.sleep(0.3)
        assert runtime.stats.warms == 2
        assert hub.warmer.stats.warmed_version == hub.registry.version
    finally:
        hub.stop()


def test_hub_without_a_model_has_no_warmer(tmp_path: Path) -> None:
    from hubagent.app import Hub

    cfg = Config(
        homes=(str(DEMO_HOME),),
        mqtt=MqttConfig(port=1, tls=False, client_id="warm-test-2"),
        llm=LlmConfig(backend="none"),
        store=StoreConfig(path=str(tmp_path / "hub.db")),
    )
    hub = Hub(cfg)
    try:
        hub.start()
        assert hub.warmer is None and hub.health()["llm_warm"] is False
    finally:
        hub.stop()


def test_a_failed_warm_up_is_logged_and_retried_on_the_next_change() -> None:
    version = [1]
    calls: list[int] = []

    def warm() -> None:
        calls.append(version[0])
        if len(calls) == 1:
            raise RuntimeError("model busy")

    warmer = PrefixWarmer(warm, lambda: version[0], debounce_s=0.01)
    warmer.start()
    try:
        _wait(lambda: warmer.stats.errors == 1)
        assert not warmer.ready.is_set()
        version[0] = 2
        warmer.changed()
        assert warmer.wait(5) and warmer.stats.warms == 1 and calls == [1, 2]
    finally:
        warmer.stop()


# -- model selection -----------------------------------------------------------------------
def test_model_choice_is_validated(tmp_path: Path) -> None:
    path = tmp_path / "hubagent.yaml"
    for good in ("small", "large", "default", "/models/my.gguf", "~/x/model.GGUF"):
        path.write_text(f"llm:\n  model: {good}\n")
        assert load_config(path, env={}).llm.model == good
    path.write_text("llm:\n  model: medium\n")
    with pytest.raises(ConfigError) as exc:
        load_config(path, env={})
    assert "'llm.model' must be small, large" in str(exc.value) and "medium" in str(exc.value)
    path.write_text("llm:\n  backend: llamafile\n")
    with pytest.raises(ConfigError, match="'llm.backend' must be one of local, openai, none"):
        load_config(path, env={})
    # The environment selects the model too (./run setup reads the same variable).
    assert load_config(None, env={"HUBAGENT_LLM_MODEL": "large"}).llm.model == "large"
    with pytest.raises(ConfigError):
        load_config(None, env={"HUBAGENT_LLM_MODEL": "huge"})


def test_omp_wait_policy_is_passive_before_the_runtime_loads() -> None:
    import os

    import hubagent.understand.runtime  # noqa: F401 - sets it on import

    assert os.environ.get("OMP_WAIT_POLICY", "").upper() == "PASSIVE"


# -- the real model: the warmed prefix is reused --------------------------------------------
@pytest.mark.model
def test_real_runtime_reuses_the_warmed_prefix() -> None:
    from hubagent.home.registry import Registry
    from hubagent.understand.llm import LlmUnderstander
    from hubagent.understand.modelfiles import resolve_model
    from hubagent.understand.runtime import XllamaRuntime

    try:
        path = resolve_model(LlmConfig())
    except ValueError as exc:
        pytest.skip(f"model not installed: {exc}")
    from hubagent.app import load_homes

    registry = Registry()
    load_homes(registry, [str(DEMO_HOME)], static=True)
    runtime = XllamaRuntime(path, threads=2, context=2048)
    try:
        understander = LlmUnderstander(registry, runtime, always_ask=True)
        assert understander.warm()
        assert runtime.stats.warms == 1 and runtime.stats.warm_tokens > 200
        understander.understand("switch off the telly in the lounge thanks")
        calls = understander.stats
        assert calls.calls == 1
        # Everything but the command's own tokens came from the cache.
        assert calls.cached_tokens >= runtime.stats.warm_tokens - 10  # the warm tail differs
        assert calls.prompt_tokens - calls.cached_tokens < 40
    finally:
        runtime.close()


def test_replace_keeps_llm_config_frozen() -> None:
    cfg = replace(LlmConfig(), model="large")
    assert cfg.model == "large" and cfg.warm_debounce_s == 2.0
