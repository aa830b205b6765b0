"""Post-training quantization: error bounds, 4-bit packing, agreement with the float student."""

from __future__ import annotations

import argparse
import random
from pathlib import Path

import numpy as np
import pytest

from hubagent.compress import quantize as q
from hubagent.compress.dataset import build_examples
from hubagent.compress.distill import TrainConfig, distill
from hubagent.compress.student import Student
from hubagent.compress.teacher import RulesTeacher
from hubagent.home.homefile import apply_home, load_home
from hubagent.home.registry import Registry

DEMO = Path(__file__).resolve().parents[1] / "devices" / "demo-home.yaml"


@pytest.mark.parametrize("bits", [8, 4])
@pytest.mark.parametrize("per_channel", [False, True])
def test_quantization_error_is_at_most_half_a_step(bits: int, per_channel: bool) -> None:
    w = np.random.default_rng(bits).normal(0, 0.3, (64, 10)).astype(np.float32)
    w[3, 4] = 2.5  # an outlier: minmax keeps it inside the range
    codes, scale = q.quantize(w, bits, per_channel, "minmax")
    assert codes.dtype == np.int8 and np.abs(codes).max() <= 2 ** (bits - 1) - 1
    assert scale.shape == ((10,) if per_channel else ())
    err = np.abs(q.dequantize(codes, scale) - w)
    assert (err <= np.broadcast_to(scale, w.shape) / 2 + 1e-7).all()


def test_percentile_calibration_clips_outliers() -> None:
    w = np.random.default_rng(0).normal(0, 0.1, (1000, 4)).astype(np.float32)
    w[0, 0] = 50.0
    _, minmax = q.quantize(w, 8, False, "minmax")
    codes, pct = q.quantize(w, 8, False, "percentile")
    assert pct < minmax / 10
    assert codes[0, 0] == 127  # the outlier is clipped to the top code


@pytest.mark.parametrize("shape", [(7, 3), (4, 4), (1,)])
def test_four_bit_packing_round_trips(shape: tuple[int, ...]) -> None:
    codes = np.random.default_rng(1).integers(-8, 8, shape).astype(np.int8)
    packed = q.pack4(codes)
    assert packed.dtype == np.uint8 and packed.size == (codes.size + 1) // 2
    assert (q.unpack4(packed, shape) == codes).all()


@pytest.fixture(scope="module")
def float_student(tmp_path_factory) -> Path:
    registry = Registry()
    apply_home(registry, load_home(DEMO))
    examples = random.Random(1).sample(build_examples(registry, paraphrases=0), 1500)
    cfg = TrainConfig(epochs=8, hidden=64)
    student, _ = distill(registry, RulesTeacher(registry), cfg, examples=examples, label_all=True)
    return student.save(tmp_path_factory.mktemp("q") / "student.npz")


def _run(src: Path, out: Path, *extra: str) -> None:
    parser = argparse.ArgumentParser()
    q.add_arguments(parser)
    assert q.main(parser.parse_args(["--student", str(src), "--out", str(out), *extra])) == 0


def test_int8_student_agrees_with_the_float_student(float_student: Path, tmp_path: Path) -> None:
    out = tmp_path / "int8.npz"
    _run(float_student, out, "--bits", "8")
    full, small = Student.load(float_student), Student.load(out)
    held_out = list(full.meta["held_out"])
    assert len(held_out) >= 100
    assert q.agreement(full, small, held_out) >= 0.99
    assert out.stat().st_size < float_student.stat().st_size / 3
    assert small.classes == full.classes and small.calibration_t == full.calibration_t


def test_four_bit_per_channel_student_loads_and_mostly_agrees(
    float_student: Path, tmp_path: Path
) -> None:
    out = tmp_path / "int4.npz"
    _run(float_student, out, "--bits", "4", "--per-channel", "--calibration", "minmax")
    full, small = Student.load(float_student), Student.load(out)
    assert small.meta["quantized"]["bits"] == 4
    assert small.w1.shape == full.w1.shape
    assert q.agreement(full, small, list(full.meta["held_out"])) >= 0.7
