"""The student: hashed n-gram features -> one ReLU hidden layer -> softmax over entity+verb.

Pure numpy, a few hundred KB, well under a millisecond per prediction. Values (brightness,
temperature...) are not classified: `StudentPath` reads them with the same rules the LLM
path uses (hubagent.understand.cues via LlmUnderstander._act).
"""

from __future__ import annotations

import json
import logging
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hubagent.compress.dataset import split_label
from hubagent.compress.features import FeatureConfig, featurize
from hubagent.home.registry import Registry
from hubagent.types import Action, Step, Understanding

log = logging.getLogger(__name__)


@dataclass
class Prediction:
    action: Action | None  # entity + verb, no args (values are read by rules)
    confidence: float  # calibrated probability of the top class
    label: str


def softmax(z: np.ndarray, axis: int = -1) -> np.ndarray:
    z = z - z.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


class Student:
    """Weights, class names, feature config and calibration temperature."""

    def __init__(
        self,
        w1: np.ndarray,
        b1: np.ndarray,
        w2: np.ndarray,
        b2: np.ndarray,
        classes: list[str],
        features: FeatureConfig,
        calibration_t: float = 1.0,
        meta: dict | None = None,
    ) -> None:
        self.w1, self.b1, self.w2, self.b2 = w1, b1, w2, b2
        self.classes = list(classes)
        self.features = features
        self.calibration_t = calibration_t
        self.meta = dict(meta or {})

    @classmethod
    def init(
        cls, classes: list[str], features: FeatureConfig, hidden: int = 96, seed: int = 0
    ) -> Student:
        """He-initialised weights (ReLU layer) and zero biases."""
        rng = np.random.default_rng(seed)
        w1 = rng.normal(0, np.sqrt(2.0 / features.dim), (features.dim, hidden)).astype(np.float32)
        w2 = rng.normal(0, np.sqrt(2.0 / hidden), (hidden, len(classes))).astype(np.float32)
        zeros = np.zeros
        return cls(w1, zeros(hidden, np.float32), w2, zeros(len(classes), np.float32),
                   classes, features)  # fmt: skip

    # -- inference -----------------------------------------------------------------------
    def forward(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(hidden activations, logits) for a dense batch x of shape (n, dim)."""
        h = np.maximum(x @ self.w1 + self.b1, 0.0)
        return h, h @ self.w2 + self.b2

    def logits_one(self, text: str) -> np.ndarray:
        """Logits for one text; the sparse features pick rows of W1 instead of a matmul."""
        idx, val = featurize(text, self.features)
        h = np.maximum(val @ self.w1[idx] + self.b1, 0.0)
        return h @ self.w2 + self.b2

    def predict(self, text: str) -> Prediction:
        p = softmax(self.logits_one(text) / self.calibration_t)
        k = int(p.argmax())
        entity_id, verb = split_label(self.classes[k])
        return Prediction(Action(entity_id, verb), float(p[k]), self.classes[k])

    def latency_ms(self, texts: list[str], repeat: int = 3) -> float:
        """Mean wall time of `predict` per text, in ms (best of `repeat` passes)."""
        best = float("inf")
        for _ in range(repeat):
            t0 = time.perf_counter()
            for text in texts:
                self.predict(text)
            best = min(best, (time.perf_counter() - t0) * 1000 / max(1, len(texts)))
        return best

    # -- files ---------------------------------------------------------------------------
    def metadata(self) -> dict:
        return {
            "classes": self.classes,
            "features": self.features.to_dict(),
            "calibration_t": self.calibration_t,
            **self.meta,
        }

    def save(self, path: Path | str) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as f:
            np.savez_compressed(
                f, w1=self.w1, b1=self.b1, w2=self.w2, b2=self.b2,
                meta=np.array(json.dumps(self.metadata())),
            )  # fmt: skip
        return path

    @classmethod
    def load(cls, path: Path | str) -> Student:
        """A float student, or a quantized one (dequantized on load).

        Raises ValueError with one clear line when the file is missing or not a student.
        """
        try:
            with np.load(Path(path), allow_pickle=False) as data:
                meta = json.loads(str(data["meta"]))
                if meta.get("quantized"):
                    from hubagent.compress.quantize import dequantize_arrays

                    arrays = dequantize_arrays(data, meta)
                else:
                    arrays = {k: data[k] for k in ("w1", "b1", "w2", "b2")}
        except (OSError, KeyError, ValueError, TypeError, zipfile.BadZipFile) as exc:
            raise ValueError(f"{path}: not a student file ({exc})") from None
        extra = {k: v for k, v in meta.items() if k not in ("classes", "features", "calibration_t")}
        return cls(
            arrays["w1"], arrays["b1"], arrays["w2"], arrays["b2"],
            meta["classes"], FeatureConfig.from_dict(meta["features"]),
            float(meta.get("calibration_t", 1.0)), extra,
        )  # fmt: skip


class StudentPath:
    """The cascade step between the matcher and the LLM: answer when confident, else defer.

    Every command of the request must be predicted above `threshold`, name its entity's
    device (and area, if any) in the words of the text, and resolve without error;
    otherwise the whole request goes on to the LLM path, which also gives precise refusals.
    """

    def __init__(self, student: Student, registry: Registry, threshold: float = 0.9) -> None:
        from hubagent.understand.llm import LlmUnderstander

        self.student = student
        self.registry = registry
        self.threshold = threshold
        self._rules = LlmUnderstander(registry, None)  # value reading only, never a model
        self.answered = 0
        self.deferred = 0

    def understand(self, text: str, area: str | None = None) -> Understanding | None:
        from hubagent.understand.split import split_steps

        t0 = time.perf_counter()
        steps: list[Step] = []
        answers: list[str] = []
        for command in split_steps(text) or [text]:
            pred = self.student.predict(command)
            done = self._step(command, area, pred) if pred.confidence >= self.threshold else None
            if done is None:
                self.deferred += 1
                log.debug("student defers %r (%s at %.2f)", command, pred.label, pred.confidence)
                return None
            steps.append(done[0])
            if done[1]:
                answers.append(done[1])
        self.answered += 1
        return Understanding(
            text, steps, "student", answer="; ".join(answers) or None,
            latency_ms=(time.perf_counter() - t0) * 1000,
        )  # fmt: skip

    def _step(
        self, command: str, area: str | None, pred: Prediction
    ) -> tuple[Step, str | None] | None:
        from hubagent.understand import cues, questions, wording
        from hubagent.understand.acting import act

        if pred.action is None:
            return None
        entity = self.registry.get(pred.action.entity)
        if entity is None or pred.action.action not in entity.verbs:
            return None  # the home changed since training: retrain, meanwhile defer
        # The same grounding the LLM path uses: the text names this device (and its area,
        # if it names one, and no room the home lacks); the student only replaces the
        # model's pick among those candidates.
        candidates = self._rules._candidates(command, area)
        if entity.entity_id not in {e.entity_id for e in candidates}:
            return None
        places = {e.area for e in candidates if e.area}
        if len(places) > 1 and not cues.mentioned_areas(self.registry, command):
            return None  # the LLM path asks "which one?" here
        known = self.registry.attribute_names()
        if cues.attribute_missing(entity, command, known):
            return None  # the LLM path gives the precise unknown_attribute refusal
        verb = wording.cue_verb(command, entity, known) or pred.action.action
        if verb == "get_state":
            return Step(command), questions.answer(self.registry, entity, command, known)
        step = act(command, entity, verb, known)
        return None if step.error else (step, None)
