"""`hubagent quantize`: post-training quantization of the student's weights (8 or 4 bit).

Three steps:
1. Calibration: the value range of each weight tensor (or of each output channel, i.e. each
   column of W, with --per-channel) from the weights themselves, and of the hidden ReLU
   activations from sample inputs (the held-out utterances saved with the student).
   `minmax` takes the full range; `percentile` clips to the 99.9th percentile of |w| so a
   few outliers do not stretch the scale for every other weight.
2. Quantization: symmetric for weights (zero point 0, q = clip(round(w / s), -qmax, qmax),
   s = range / qmax): trained weights are centred on zero, and a zero point of 0 keeps an
   integer matmul free of cross terms. Activations after ReLU are >= 0, so their range is
   asymmetric [0, max] and maps to uint8 with zero point 0. int8 values are stored as int8;
   4-bit values (-7..7, offset by 8) are packed two per byte, low nibble first.
3. Dequantization: on load (`Student.load` -> `dequantize_arrays`), w = s * q per tensor or
   per channel; the float matmul then runs on exactly the quantized values. Biases stay
   float32 (a few hundred numbers).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from hubagent.compress.features import matrix
from hubagent.compress.student import Student

log = logging.getLogger(__name__)
WEIGHTS = ("w1", "w2")


def calibrate(w: np.ndarray, per_channel: bool, method: str) -> np.ndarray:
    """Symmetric range max|w| per tensor (shape ()) or per output column (shape (cols,))."""
    a = np.abs(w)
    axis = 0 if per_channel else None
    if method == "percentile":
        r = np.percentile(a, 99.9, axis=axis)
    elif method == "minmax":
        r = a.max(axis=axis)
    else:
        raise ValueError(f"unknown calibration {method!r}: percentile or minmax")
    return np.maximum(np.asarray(r, np.float32), 1e-8)


def quantize(
    w: np.ndarray, bits: int, per_channel: bool, method: str
) -> tuple[np.ndarray, np.ndarray]:
    """(int8 codes in -qmax..qmax, scales) for a weight matrix."""
    qmax = 2 ** (bits - 1) - 1
    scale = calibrate(w, per_channel, method) / qmax
    q = np.clip(np.round(w / scale), -qmax, qmax).astype(np.int8)
    return q, scale.astype(np.float32)


def dequantize(q: np.ndarray, scale: np.ndarray) -> np.ndarray:
    return q.astype(np.float32) * scale


def pack4(q: np.ndarray) -> np.ndarray:
    """Signed 4-bit codes (-8..7) packed two per byte, low nibble = even index."""
    flat = (q.reshape(-1).astype(np.int16) + 8).astype(np.uint8)
    if flat.size % 2:
        flat = np.append(flat, np.uint8(8))  # pad with a zero code
    return (flat[0::2] | (flat[1::2] << 4)).astype(np.uint8)


def unpack4(packed: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    out = np.empty(packed.size * 2, np.int8)
    out[0::2] = (packed & 0x0F).astype(np.int8) - 8
    out[1::2] = (packed >> 4).astype(np.int8) - 8
    return out[: int(np.prod(shape))].reshape(shape)


def activation_range(student: Student, texts: list[str], method: str) -> float:
    """Calibrated upper end of the hidden ReLU activations over sample inputs."""
    if not texts:
        return 0.0
    h, _ = student.forward(matrix(texts, student.features))
    return float(np.percentile(h, 99.9) if method == "percentile" else h.max())


def quantize_student(
    student: Student, bits: int, per_channel: bool, method: str, texts: list[str]
) -> dict[str, Any]:
    """Arrays and metadata of the quantized student file."""
    if bits not in (4, 8):
        raise ValueError("bits must be 8 or 4")
    arrays: dict[str, np.ndarray] = {"b1": student.b1, "b2": student.b2}
    for name in WEIGHTS:
        w = getattr(student, name)
        q, scale = quantize(w, bits, per_channel, method)
        arrays[f"q_{name}"] = pack4(q) if bits == 4 else q
        arrays[f"s_{name}"] = scale
    act_max = activation_range(student, texts, method)
    meta = student.metadata()
    meta.update(
        quantized={"bits": bits, "per_channel": per_channel, "calibration": method,
                   "scheme": "symmetric weights, zero point 0",
                   "shapes": {n: list(getattr(student, n).shape) for n in WEIGHTS},
                   "activation_scale_u8": act_max / 255 if act_max else 0.0}
    )  # fmt: skip
    arrays["meta"] = np.array(json.dumps(meta))
    return arrays


def dequantize_arrays(data: Any, meta: dict[str, Any]) -> dict[str, np.ndarray]:
    """Float weights back from a quantized file (dequantize-on-load)."""
    info = meta["quantized"]
    out = {"b1": np.asarray(data["b1"]), "b2": np.asarray(data["b2"])}
    for name in WEIGHTS:
        q = np.asarray(data[f"q_{name}"])
        if info["bits"] == 4:
            q = unpack4(q, tuple(info["shapes"][name]))
        out[name] = dequantize(q, np.asarray(data[f"s_{name}"]))
    return out


def agreement(a: Student, b: Student, texts: list[str]) -> float:
    """Share of texts on which both students' argmax classes agree."""
    if not texts:
        return 0.0
    x = matrix(texts, a.features)
    return float((a.forward(x)[1].argmax(1) == b.forward(x)[1].argmax(1)).mean())


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--student", required=True, help="float student .npz")
    parser.add_argument("--bits", type=int, choices=(8, 4), default=8, help="bits per weight (8)")
    parser.add_argument("--per-channel", action="store_true", help="one scale per output channel")
    parser.add_argument(
        "--calibration",
        choices=("percentile", "minmax"),
        default="percentile",
        help="how the scale is chosen (percentile clips outliers)",
    )
    parser.add_argument("--out", required=True, help="quantized student .npz")


def main(args: argparse.Namespace) -> int:
    src = Path(args.student)
    student = Student.load(src)
    texts = list(student.meta.get("held_out") or [])
    arrays = quantize_student(student, args.bits, args.per_channel, args.calibration, texts)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("wb") as f:
        np.savez_compressed(f, **arrays)
    small = Student.load(out)
    report = {
        "out": str(out),
        "bytes_float": src.stat().st_size,
        "bytes_quantized": out.stat().st_size,
        "weight_bytes_float": int(student.w1.nbytes + student.w2.nbytes),
        "weight_bytes_quantized": int(arrays["q_w1"].nbytes + arrays["q_w2"].nbytes),
        "held_out": len(texts),
        "argmax_agreement": round(agreement(student, small, texts), 4),
    }
    print(json.dumps(report, indent=2))
    return 0
