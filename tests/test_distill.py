"""Knowledge distillation: the KD loss and its hand-written gradient, training, calibration."""

from __future__ import annotations

import numpy as np
import pytest

from hubagent.compress.dataset import Example, Prior, build_examples, classes_for, top_k
from hubagent.compress.distill import TrainConfig, distill, ece, fit_temperature, kd_loss_grad
from hubagent.compress.student import softmax
from hubagent.compress.teacher import RulesTeacher, soft_targets
from hubagent.home.registry import Registry
from hubagent.types import Area, Entity


def tiny_home() -> Registry:
    registry = Registry()
    areas = [Area("kitchen", "Kitchen"), Area("bedroom", "Bedroom")]
    entities = [
        Entity("light.kitchen", "Kitchen light", "kitchen",
               attributes={"brightness": {"min": 0, "max": 100}}),
        Entity("cover.bedroom_blinds", "Bedroom blinds", "bedroom", ("shades",),
               attributes={"position": {"min": 0, "max": 100}}),
        Entity("switch.kettle", "Kettle", "kitchen"),
    ]  # fmt: skip
    registry.load([], areas, entities)
    return registry


def _batch(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(4, 6))
    y = np.eye(6)[rng.integers(0, 6, 4)]
    p_t = softmax(rng.normal(size=(4, 6)))
    p_t[0, 2] = 0.0  # a class the teacher did not score
    p_t /= p_t.sum(1, keepdims=True)
    return z, y, p_t


@pytest.mark.parametrize("alpha,temperature", [(0.5, 2.0), (0.0, 4.0), (0.9, 1.0)])
def test_kd_gradient_matches_numerical_gradient(alpha: float, temperature: float) -> None:
    z, y, p_t = _batch()
    _, grad = kd_loss_grad(z, y, p_t, alpha, temperature)
    numeric = np.zeros_like(z)
    eps = 1e-5
    for idx in np.ndindex(*z.shape):
        up, down = z.copy(), z.copy()
        up[idx] += eps
        down[idx] -= eps
        numeric[idx] = (
            kd_loss_grad(up, y, p_t, alpha, temperature)[0]
            - kd_loss_grad(down, y, p_t, alpha, temperature)[0]
        ) / (2 * eps)
    np.testing.assert_allclose(grad, numeric, rtol=1e-4, atol=1e-7)


def test_alpha_one_is_cross_entropy() -> None:
    z, y, p_t = _batch(1)
    loss, grad = kd_loss_grad(z, y, p_t, alpha=1.0, temperature=3.0)
    p = softmax(z)
    assert loss == pytest.approx(-np.mean(np.log(p[y.astype(bool)])))
    np.testing.assert_allclose(grad, (p - y) / len(z), atol=1e-12)


def test_soft_targets_are_distributions_with_zero_outside_candidates() -> None:
    classes = ["a|x", "b|y", "c|z"]
    p = soft_targets({"a|x": -1.0, "b|y": -3.0}, classes, temperature=2.0)
    assert p.sum() == pytest.approx(1.0) and p[2] == 0.0
    assert p[0] / p[1] == pytest.approx(np.exp(1.0))  # (-1 - -3) / T


def test_training_lowers_the_loss_and_learns_a_tiny_home() -> None:
    registry = tiny_home()
    cfg = TrainConfig(epochs=6, hidden=32)
    student, report = distill(registry, RulesTeacher(registry), cfg, label_all=True)
    assert report.losses[-1] < 0.5 * report.losses[0]
    assert all(b <= a * 1.05 for a, b in zip(report.losses, report.losses[1:], strict=False))
    assert report.held_out_accuracy > 0.9
    assert report.teacher_agreement is not None and report.teacher_agreement > 0.5
    assert student.classes == classes_for(registry)
    assert student.predict("please turn off the kettle").label == "switch.kettle|turn_off"
    assert student.predict("open the shades").label == "cover.bedroom_blinds|open"


def test_calibration_ece_is_computed_and_temperature_scaling_helps() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 5, 400)
    logits = rng.normal(size=(400, 5))
    logits[np.arange(400), labels] += 2.0
    overconfident = logits * 4  # same argmax, far too sharp
    before = ece(softmax(overconfident), labels)
    t = fit_temperature(overconfident, labels)
    after = ece(softmax(overconfident / t), labels)
    assert 0.0 <= after < before <= 1.0
    assert t > 2.0
    perfect = np.eye(5)[labels]
    assert ece(perfect, labels) == pytest.approx(0.0)


@pytest.mark.model
def test_llm_teacher_soft_targets_train_a_student(tmp_path) -> None:
    from hubagent.compress.teacher import LlmTeacher
    from hubagent.config import LlmConfig
    from hubagent.understand.modelfiles import resolve_model
    from hubagent.understand.runtime import XllamaRuntime

    registry = tiny_home()
    classes = classes_for(registry)
    examples = build_examples(registry, paraphrases=0)
    picked = [e for e in examples if e.text in (
        "turn on the kitchen light", "close the shades")]  # fmt: skip
    assert len(picked) == 2
    runtime = XllamaRuntime(resolve_model(LlmConfig()), threads=2, context=2048)
    try:
        teacher = LlmTeacher(registry, runtime, tmp_path / "cache.json")
        prior = Prior(registry, classes)
        for ex in picked:
            cands = top_k(ex.text, prior, 2, ex.label)  # what distill() asks below
            scores = teacher.logits(ex.text, cands)
            assert all(s < 0 for s in scores.values())  # log-probabilities
            p = soft_targets(scores, classes, 2.0)
            assert p.sum() == pytest.approx(1.0) and (p >= 0).all()
            assert np.count_nonzero(p) == 2
        calls = teacher.calls
        teacher.save()
        cached = LlmTeacher(registry, runtime, tmp_path / "cache.json")
        cached.logits(picked[0].text, [picked[0].label])
        assert cached.calls == 0 and calls == 4  # reruns are free
        cfg = TrainConfig(epochs=30, hidden=16, held_out=0.5, top_k=2, max_utterances=2)
        data = [Example(e.text, e.label) for e in picked]
        student, report = distill(registry, teacher, cfg, examples=data)
        assert report.teacher_labelled == 2
        assert report.losses[-1] < report.losses[0]
        assert teacher.calls == 4  # distill() reused the cached scores
    finally:
        runtime.close()
