"""The student on the demo home: files, predictions, latency and the cascade step."""

from __future__ import annotations

import logging
import random
import time
from pathlib import Path

import numpy as np
import pytest

from hubagent.compress.dataset import build_examples
from hubagent.compress.distill import TrainConfig, distill
from hubagent.compress.features import FeatureConfig, featurize
from hubagent.compress.student import Student, StudentPath
from hubagent.compress.teacher import RulesTeacher
from hubagent.home.homefile import apply_home, load_home
from hubagent.home.registry import Registry
from hubagent.types import Action

DEMO = Path(__file__).resolve().parents[1] / "devices" / "demo-home.yaml"


def demo_registry() -> Registry:
    registry = Registry()
    apply_home(registry, load_home(DEMO))
    return registry


@pytest.fixture(scope="module")
def trained() -> tuple[Student, Registry]:
    registry = demo_registry()
    examples = build_examples(registry, paraphrases=0)
    examples = random.Random(0).sample(examples, 1500)
    cfg = TrainConfig(epochs=8, hidden=64)
    student, _ = distill(registry, RulesTeacher(registry), cfg, examples=examples, label_all=True)
    return student, registry


def test_features_are_stable_hashes() -> None:
    cfg = FeatureConfig(dim=512)
    idx, val = featurize("Turn on the kitchen light", cfg)
    again = featurize("turn on the kitchen light!", cfg)
    assert (idx == again[0]).all() and np.allclose(val, again[1])
    assert np.linalg.norm(val) == pytest.approx(1.0) and idx.max() < 512
    assert featurize("", cfg)[0].size == 0


def test_save_load_round_trip(trained, tmp_path: Path) -> None:
    student, _ = trained
    path = student.save(tmp_path / "s.npz")
    loaded = Student.load(path)
    texts = ["turn off the desk lamp", "open the bedroom curtains", "is the garage door open?"]
    for text in texts:
        a, b = student.predict(text), loaded.predict(text)
        assert a.label == b.label and a.confidence == pytest.approx(b.confidence)
    assert loaded.classes == student.classes
    assert loaded.calibration_t == student.calibration_t


def test_bad_student_file_is_one_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a student file"):
        Student.load(bad)
    with pytest.raises(ValueError, match="not a student file"):
        Student.load(tmp_path / "missing.npz")


def test_predicts_clear_commands_fast(trained) -> None:
    student, _ = trained
    pred = student.predict("please switch off the coffee machine")
    assert pred.action == Action("switch.coffee_machine", "turn_off")
    assert 0.0 < pred.confidence <= 1.0
    texts = ["turn on the office heater"] * 200
    t0 = time.perf_counter()
    for text in texts:
        student.predict(text)
    per_call_ms = (time.perf_counter() - t0) * 1000 / len(texts)
    assert per_call_ms < 20  # generous sanity bound; measured ~0.2 ms on an idle core


def test_student_path_answers_confident_grounded_commands(trained) -> None:
    student, registry = trained
    path = StudentPath(student, registry, threshold=0.5)
    result = path.understand("set the bedroom curtains to 40%")
    assert result is not None and result.path == "student"
    assert result.actions == [Action("cover.bedroom_curtains", "set_position", {"position": 40})]
    result = path.understand("switch off the coffee machine")
    assert result is not None and result.actions == [Action("switch.coffee_machine", "turn_off")]


def test_student_path_defers_what_it_cannot_ground(trained, caplog) -> None:
    student, registry = trained
    path = StudentPath(student, registry, threshold=0.5)
    with caplog.at_level(logging.DEBUG, logger="hubagent.compress.student"):
        assert path.understand("turn on the sauna heater in the attic") is None
        assert path.understand("set the kettle to 40 degrees") is None
    assert "student defers" in caplog.text
    strict = StudentPath(student, registry, threshold=1.01)  # nothing is that confident
    assert strict.understand("switch off the coffee machine") is None
    assert strict.deferred == 1 and strict.answered == 0


def test_student_path_defers_after_a_device_is_removed(trained) -> None:
    student, _ = trained
    registry = demo_registry()
    registry.remove("switch.coffee_machine")
    assert StudentPath(student, registry, 0.5).understand("turn off the coffee machine") is None


def test_hub_config_puts_the_student_between_matcher_and_llm(trained, tmp_path: Path) -> None:
    """`llm.student` loads a saved student into the hub's cascade; the matcher still goes
    first and what the student defers reaches the understander."""
    from hubagent.app import Hub
    from hubagent.config import Config, LlmConfig, MqttConfig, StoreConfig

    student, _ = trained
    student.save(tmp_path / "student.npz")
    cfg = Config(
        homes=(str(DEMO),),
        mqtt=MqttConfig(port=1),  # never connected: the cascade needs no broker
        llm=LlmConfig(backend="none", student=str(tmp_path / "student.npz"), student_threshold=0.5),
        store=StoreConfig(path=str(tmp_path / "hub.db")),
    )
    hub = Hub(cfg)
    try:
        apply_home(hub.registry, load_home(DEMO))  # the devices discovery would announce
        assert hub.cascade.student is not None
        assert hub.cascade.understand("turn on the kitchen ceiling light").path == "local"
        # Wording the HA sentence templates do not cover: the student answers.
        by_student = hub.cascade.understand("bedroom curtains to 40 percent please")
        assert by_student.path == "student"
        assert by_student.actions == [
            Action("cover.bedroom_curtains", "set_position", {"position": 40})
        ]
        assert hub.cascade.understand("turn on the sauna heater").actions == []
    finally:
        hub.stop()


def test_missing_student_file_leaves_the_hub_running(tmp_path: Path, caplog) -> None:
    from hubagent.app import Hub
    from hubagent.config import Config, LlmConfig, MqttConfig, StoreConfig

    cfg = Config(
        mqtt=MqttConfig(port=1),
        llm=LlmConfig(backend="none", student=str(tmp_path / "absent.npz")),
        store=StoreConfig(path=str(tmp_path / "hub.db")),
    )
    with caplog.at_level(logging.WARNING):
        hub = Hub(cfg)
    hub.stop()
    assert hub.cascade.student is None
    assert "student not loaded" in caplog.text
