"""`hubagent distill`: train the student from the LLM teacher's soft targets.

Loss per example (Hinton et al. 2015), with student logits z_S, teacher scores z_T:
    L = alpha * CE(y, softmax(z_S)) + (1 - alpha) * T^2 * KL(softmax(z_T/T) || softmax(z_S/T))
and its gradient w.r.t. z_S (derived by hand, checked numerically in the tests):
    dL/dz_S = alpha * (softmax(z_S) - y) + (1 - alpha) * T * (softmax(z_S/T) - softmax(z_T/T))
Back-propagated through the ReLU layer and optimised with Adam. After training, a single
temperature is fitted on the held-out split (temperature scaling) so confidences are
calibrated; ECE before and after is reported.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hubagent.compress.dataset import Example, Prior, build_examples, classes_for, top_k
from hubagent.compress.features import FeatureConfig, featurize
from hubagent.compress.student import Student, softmax
from hubagent.compress.teacher import LlmTeacher, RulesTeacher, Teacher, soft_targets
from hubagent.home.registry import Registry

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    temperature: float = 2.0
    alpha: float = 0.5
    epochs: int = 12
    hidden: int = 96
    lr: float = 0.01
    batch: int = 64
    weight_decay: float = 1e-5
    held_out: float = 0.15
    seed: int = 0
    top_k: int = 4
    max_utterances: int = 40  # teacher-labelled utterances (the LLM is the slow part)


@dataclass
class DistillReport:
    n_train: int = 0
    n_held_out: int = 0
    teacher_labelled: int = 0
    losses: list[float] = field(default_factory=list)
    held_out_accuracy: float = 0.0
    teacher_agreement: float | None = None  # on teacher-labelled held-out utterances
    ece_before: float = 0.0
    ece_after: float = 0.0
    calibration_t: float = 1.0
    latency_ms: float = 0.0
    teacher_s: float = 0.0


def kd_loss_grad(
    z: np.ndarray, y: np.ndarray, p_t: np.ndarray, alpha: float, temperature: float
) -> tuple[float, np.ndarray]:
    """Mean KD loss over the batch and dL/dz (see module docstring)."""
    n = z.shape[0]
    p = softmax(z)
    q = softmax(z / temperature)
    ce = -np.sum(y * np.log(p + 1e-12)) / n
    safe = np.where(p_t > 0, p_t, 1.0)  # 0 * log 0 = 0
    kl = np.sum(p_t * (np.log(safe) - np.log(q + 1e-12))) / n
    loss = alpha * ce + (1 - alpha) * temperature**2 * kl
    grad = (alpha * (p - y) + (1 - alpha) * temperature * (q - p_t)) / n
    return float(loss), grad


def dense(rows: list[tuple[np.ndarray, np.ndarray]], dim: int) -> np.ndarray:
    x = np.zeros((len(rows), dim), np.float32)
    for i, (idx, val) in enumerate(rows):
        x[i, idx] = val
    return x


def train(
    student: Student,
    rows: list[tuple[np.ndarray, np.ndarray]],
    y: np.ndarray,
    p_t: np.ndarray,
    cfg: TrainConfig,
) -> list[float]:
    """Adam over mini-batches; returns the mean loss per epoch."""
    rng = np.random.default_rng(cfg.seed)
    params = [student.w1, student.b1, student.w2, student.b2]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    b1, b2, eps, step = 0.9, 0.999, 1e-8, 0
    losses = []
    for _ in range(cfg.epochs):
        order = rng.permutation(len(rows))
        total = 0.0
        for start in range(0, len(order), cfg.batch):
            batch = order[start : start + cfg.batch]
            x = dense([rows[i] for i in batch], student.features.dim)
            h, z = student.forward(x)
            loss, dz = kd_loss_grad(z, y[batch], p_t[batch], cfg.alpha, cfg.temperature)
            total += loss * len(batch)
            dh = (dz @ student.w2.T) * (h > 0)
            grads = [x.T @ dh, dh.sum(0), h.T @ dz, dz.sum(0)]
            step += 1
            for i, (p, g) in enumerate(zip(params, grads, strict=True)):
                g = g + cfg.weight_decay * p
                m[i] = b1 * m[i] + (1 - b1) * g
                v[i] = b2 * v[i] + (1 - b2) * g * g
                mhat, vhat = m[i] / (1 - b1**step), v[i] / (1 - b2**step)
                p -= (cfg.lr * mhat / (np.sqrt(vhat) + eps)).astype(p.dtype)
        losses.append(total / len(rows))
    return losses


def ece(probs: np.ndarray, labels: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error: |accuracy - confidence| averaged over confidence bins."""
    conf, pred = probs.max(1), probs.argmax(1)
    correct = (pred == labels).astype(float)
    edges = np.linspace(0, 1, bins + 1)
    total = 0.0
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        mask = (conf > lo) & (conf <= hi)
        if mask.any():
            total += mask.mean() * abs(correct[mask].mean() - conf[mask].mean())
    return float(total)


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The T minimising held-out NLL of softmax(z / T) (grid search: one parameter)."""
    grid = np.exp(np.linspace(np.log(0.25), np.log(8.0), 60))
    nll = [
        -np.mean(np.log(softmax(logits / t)[np.arange(len(labels)), labels] + 1e-12)) for t in grid
    ]
    return float(grid[int(np.argmin(nll))])


def distill(
    registry: Registry,
    teacher: Teacher,
    cfg: TrainConfig,
    *,
    requests: Path | None = None,
    examples: list[Example] | None = None,
    label_all: bool = False,
) -> tuple[Student, DistillReport]:
    """Build the data, label it with the teacher, train, calibrate; report held-out numbers.

    Only `cfg.max_utterances` utterances are teacher-labelled (all with `label_all`, for
    cheap teachers); the rest train on their template label alone (their target is y).
    """
    report = DistillReport()
    classes = classes_for(registry)
    index = {c: i for i, c in enumerate(classes)}
    prior = Prior(registry, classes)
    examples = examples if examples is not None else build_examples(registry, requests=requests)
    rng = random.Random(cfg.seed)
    rng.shuffle(examples)
    n_hold = max(1, int(len(examples) * cfg.held_out))
    if label_all:
        labelled = set(range(len(examples)))
    else:  # half held out, so student-teacher agreement is measured on unseen utterances
        half = min(cfg.max_utterances // 2, n_hold)
        rest = min(cfg.max_utterances - half, len(examples) - n_hold)
        labelled = set(rng.sample(range(n_hold), half))
        labelled |= set(rng.sample(range(n_hold, len(examples)), rest))
    y = np.zeros((len(examples), len(classes)), np.float32)
    p_t = np.zeros_like(y)
    teacher_top = np.full(len(examples), -1)
    keep = []
    t0 = time.perf_counter()
    for i, ex in enumerate(examples):
        if i in labelled:
            cands = top_k(ex.text, prior, cfg.top_k, ex.label)
            p_t[i] = soft_targets(teacher.logits(ex.text, cands), classes, cfg.temperature)
            teacher_top[i] = int(p_t[i].argmax())
        gold = ex.label if ex.label in index else None
        if gold is None and teacher_top[i] < 0:
            continue  # an unlabelled request the teacher did not see
        y[i, index[gold] if gold else teacher_top[i]] = 1.0
        if i not in labelled:
            p_t[i] = y[i]
        keep.append(i)
    report.teacher_s = time.perf_counter() - t0
    report.teacher_labelled = len(labelled)
    hold = [i for i in keep if i < n_hold]
    tr = [i for i in keep if i >= n_hold]
    rows = [featurize(examples[i].text, FeatureConfig()) for i in range(len(examples))]
    student = Student.init(classes, FeatureConfig(), cfg.hidden, cfg.seed)
    report.losses = train(student, [rows[i] for i in tr], y[tr], p_t[tr], cfg)
    report.n_train, report.n_held_out = len(tr), len(hold)
    _, z = student.forward(dense([rows[i] for i in hold], student.features.dim))
    labels = y[hold].argmax(1)
    report.held_out_accuracy = float((z.argmax(1) == labels).mean())
    report.ece_before = ece(softmax(z), labels)
    student.calibration_t = report.calibration_t = fit_temperature(z, labels)
    report.ece_after = ece(softmax(z / student.calibration_t), labels)
    seen = [k for k, i in enumerate(hold) if teacher_top[i] >= 0]
    if seen:
        agree = z.argmax(1)[seen] == teacher_top[[hold[k] for k in seen]]
        report.teacher_agreement = float(agree.mean())
    report.latency_ms = student.latency_ms([examples[i].text for i in hold[:200]])
    student.meta = {"train": {k: v for k, v in vars(cfg).items()}, "held_out": hold and [
        examples[i].text for i in hold[:400]]}  # fmt: skip
    return student, report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--home", help="home file (YAML) to train for")
    parser.add_argument("--out", default="student", help="output folder")
    parser.add_argument(
        "--teacher",
        choices=("llm", "rules"),
        default="llm",
        help="who labels the training utterances: the local model or the rule path",
    )
    parser.add_argument(
        "--temperature", type=float, default=2.0, help="distillation temperature T (2.0)"
    )
    parser.add_argument(
        "--alpha", type=float, default=0.5, help="weight of the true label vs the teacher (0.5)"
    )
    parser.add_argument("--epochs", type=int, default=12, help="training epochs (12)")
    parser.add_argument(
        "--max-utterances", type=int, default=40, help="utterances the teacher labels (40)"
    )
    parser.add_argument("--top-k", type=int, default=4, help="candidate entities per utterance (4)")
    parser.add_argument("--requests", help='JSONL of logged requests ({"text": ...}), opt-in')
    parser.add_argument("--homebench", help="HomeBench folder: measure LLM calls saved")
    parser.add_argument(
        "--threshold", type=float, default=0.9, help="confidence the student needs (0.9)"
    )
    parser.add_argument("--no-llm", action="store_true", help="homebench: understander only")
    parser.add_argument("--config", help="hub config (for the LLM settings)")


def main(args: argparse.Namespace) -> int:
    from hubagent.config import load_config
    from hubagent.home.homefile import apply_home, load_home

    cfg = TrainConfig(
        temperature=args.temperature, alpha=args.alpha, epochs=args.epochs,
        max_utterances=args.max_utterances, top_k=args.top_k,
    )  # fmt: skip
    if args.homebench:
        print(json.dumps(run_homebench(Path(args.homebench), cfg, args), indent=2))
        return 0
    if not args.home:
        raise ValueError("give --home FILE (or --homebench DIR)")
    registry = Registry()
    apply_home(registry, load_home(args.home))
    out = Path(args.out)
    runtime = None
    if args.teacher == "llm":
        from hubagent.understand.runtime import open_runtime

        runtime = open_runtime(load_config(getattr(args, "config", None)).llm)
        teacher: Teacher = LlmTeacher(registry, runtime, out / "teacher-cache.json")
    else:
        teacher = RulesTeacher(registry)
    requests = Path(args.requests) if args.requests else None
    try:
        student, report = distill(
            registry, teacher, cfg, requests=requests, label_all=args.teacher == "rules"
        )
    finally:
        if isinstance(teacher, LlmTeacher):
            teacher.save()
        if runtime is not None:
            runtime.close()
    path = student.save(out / "student.npz")
    summary = {k: v for k, v in vars(report).items() if k != "losses"}
    summary["loss_first_last"] = [round(report.losses[0], 4), round(report.losses[-1], 4)]
    (out / "report.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    print(json.dumps({"student": str(path), **summary}, indent=2))
    return 0


def run_homebench(folder: Path, cfg: TrainConfig, args: argparse.Namespace) -> dict:
    """Per HomeBench home: train a student, then run every case through the understander
    (with the LLM) and the student. Counts the model calls the student would save (cases it
    answers confidently) and whether its answers equal the final tokens and the gold ones."""
    from hubagent.compress.student import StudentPath
    from hubagent.config import load_config
    from hubagent.eval.homebench import import_home, load_cases, predict_tokens, tokens
    from hubagent.understand.llm import LlmUnderstander
    from hubagent.understand.runtime import open_runtime

    cases, homes_dir = load_cases(folder)
    runtime = None if args.no_llm else open_runtime(load_config(args.config).llm)
    out = {"cases": 0, "student_answered": 0, "model_calls": 0, "model_calls_saved": 0,
           "agree_with_final": 0, "success_without_student": 0, "success_with_student": 0,
           "teacher_agreement": [], "held_out_accuracy": [], "latency_ms": []}  # fmt: skip
    by_home: dict[str, list[dict]] = {}
    for case in cases:
        by_home.setdefault(str(case.get("home_id")), []).append(case)
    try:
        for hid, home_cases in sorted(by_home.items()):
            try:
                home = import_home(json.loads((homes_dir / f"{hid}.json").read_text("utf-8")))
            except (OSError, ValueError) as exc:
                log.warning("home %s unusable (%s): skipped", hid, exc)
                continue
            teacher: Teacher = (
                LlmTeacher(home.registry, runtime, Path(args.out) / f"teacher-{hid}.json")
                if args.teacher == "llm" and runtime is not None
                else RulesTeacher(home.registry)
            )
            student, rep = distill(
                home.registry, teacher, cfg, label_all=isinstance(teacher, RulesTeacher)
            )
            if isinstance(teacher, LlmTeacher):
                teacher.save()
            out["held_out_accuracy"].append(rep.held_out_accuracy)
            out["teacher_agreement"].append(rep.teacher_agreement)
            out["latency_ms"].append(rep.latency_ms)
            path = StudentPath(student, home.registry, args.threshold)
            understander = LlmUnderstander(home.registry, runtime)
            for case in home_cases:
                text, gold = str(case.get("text", "")), tokens(case.get("expected", ""))
                calls = understander.stats.calls
                final = predict_tokens(home, understander.understand(text))
                used = understander.stats.calls - calls
                quick = path.understand(text)
                mine = predict_tokens(home, quick) if quick is not None else None
                out["cases"] += 1
                out["model_calls"] += used
                ok = sorted(final) == sorted(gold)
                out["success_without_student"] += ok
                out["success_with_student"] += sorted(mine or final) == sorted(gold)
                if mine is not None:
                    out["student_answered"] += 1
                    out["model_calls_saved"] += used
                    out["agree_with_final"] += sorted(mine) == sorted(final)
            log.info("home %s: %s", hid, {k: v for k, v in out.items() if isinstance(v, int)})
    finally:
        if runtime is not None:
            runtime.close()
    for key in ("teacher_agreement", "held_out_accuracy", "latency_ms"):
        vals = [v for v in out[key] if v is not None]
        out[key] = round(float(np.mean(vals)), 4) if vals else None
    return out
