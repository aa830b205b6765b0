"""The home's class set (entity + verb) and a labelled training set built from templates.

Utterances come from templates over the home's slot lists (entity names, aliases, areas,
each entity's own verbs and attribute ranges), paraphrase wrappers, and optionally logged
real requests (unlabelled: the teacher labels them). Values in the text are only there so
the student learns to ignore them; they are read by rules after classification.
"""

from __future__ import annotations

import json
import logging
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hubagent.home.registry import Registry
from hubagent.types import VERB_CAPABILITY, Entity
from hubagent.understand import cues

log = logging.getLogger(__name__)

SEP = "|"  # label = "<entity_id>|<verb>"

# Templates per verb; {n} is a value, {opt} an option of the verb's attribute.
VERB_TEMPLATES: dict[str, tuple[str, ...]] = {
    "turn_on": ("turn on the {name}", "switch on the {name}", "turn the {name} on", "{name} on",
                "power on the {name}", "start the {name}"),
    "turn_off": ("turn off the {name}", "switch off the {name}", "turn the {name} off",
                 "{name} off", "power off the {name}", "shut off the {name}"),
    "toggle": ("toggle the {name}", "flip the {name}"),
    "open": ("open the {name}", "open up the {name}"),
    "close": ("close the {name}", "shut the {name}"),
    "stop": ("stop the {name}", "halt the {name}"),
    "lock": ("lock the {name}",),
    "unlock": ("unlock the {name}",),
    "play": ("play the {name}", "resume the {name}"),
    "pause": ("pause the {name}",),
    "next": ("next track on the {name}", "skip on the {name}"),
    "previous": ("previous track on the {name}",),
    "mute": ("mute the {name}",),
    "start": ("start the {name}", "run the {name}", "start cleaning with the {name}"),
    "return_to_base": ("send the {name} home", "dock the {name}", "return the {name} to base"),
    "activate": ("activate {name}", "run the {name} scene"),
    "press": ("press the {name}", "push the {name}"),
    "arm_home": ("arm the {name} in home mode",),
    "arm_away": ("arm the {name} away",),
    "arm_night": ("arm the {name} for the night",),
    "disarm": ("disarm the {name}",),
    "oscillate": ("make the {name} oscillate", "turn on oscillation on the {name}"),
    "set_brightness": ("set the {name} brightness to {n} percent", "dim the {name} to {n}%",
                       "set the {name} to {n} percent", "make the {name} brighter"),
    "set_color": ("make the {name} {opt}", "set the {name} color to {opt}"),
    "set_color_temp": ("set the {name} color temperature to {n}", "make the {name} warm white"),
    "set_position": ("set the {name} to {n} percent", "open the {name} to {n}%",
                     "set the {name} position to {n}"),
    "set_temperature": ("set the {name} to {n} degrees", "set the {name} temperature to {n}",
                        "make the {name} warmer"),
    "set_percentage": ("set the {name} speed to {n} percent", "set the {name} to {n}%"),
    "set_volume": ("set the {name} volume to {n}", "turn the {name} volume up"),
    "get_state": ("is the {name} on?", "what is the {name} at?", "what's the state of the {name}?",
                  "how is the {name}?"),
}  # fmt: skip
# Setting verbs for attributes with options, and the generic "set".
OPTION_TEMPLATES = ("set the {name} to {opt}", "set the {name} {attr} to {opt}",
                    "switch the {name} to {opt} {attr}")  # fmt: skip
SET_TEMPLATES = ("set the {name} {attr} to {n}", "change the {name} {attr} to {n}",
                 "adjust the {attr} of the {name} to {n}", "increase the {name} {attr}")  # fmt: skip
PARAPHRASES = ("{u}", "please {u}", "could you {u}", "can you {u} please", "{u} please",
               "hey, {u}", "i want you to {u}")  # fmt: skip
_COLORS = ("red", "blue", "green", "warm white", "purple")


@dataclass
class Example:
    text: str
    label: str | None  # None for logged requests: the teacher labels them


def label(entity_id: str, verb: str) -> str:
    return f"{entity_id}{SEP}{verb}"


def split_label(value: str) -> tuple[str, str]:
    entity_id, _, verb = value.partition(SEP)
    return entity_id, verb


def classes_for(registry: Registry) -> list[str]:
    """The fixed, sorted class set of a home: every entity + each verb it supports.

    "set" is kept only for entities with an attribute no specific verb sets.
    """
    out = []
    for entity in registry.all():
        for verb in entity.verbs:
            if verb == "set" and not _generic_attributes(entity):
                continue
            out.append(label(entity.entity_id, verb))
    return sorted(out)


def _generic_attributes(entity: Entity) -> list[str]:
    specific = {VERB_CAPABILITY[v] for v in entity.verbs if v in VERB_CAPABILITY}
    return [a for a in entity.attributes if a not in specific]


def surface_names(entity: Entity, registry: Registry) -> list[str]:
    """How people name the entity: its name, device words with and without the area, aliases."""
    area = registry.area(entity.area)
    names = {entity.name.lower()}
    for word in cues.device_words(entity, registry):
        names.add(word.lower())
        if area:
            names.add(f"{area.name.lower()} {word.lower()}")
    names.update(a.lower() for a in entity.aliases)
    return sorted(n for n in names if n)


def _values(entity: Entity, attr: str, rng: random.Random) -> str:
    spec = entity.attributes.get(attr) or {}
    lo, hi = spec.get("min", 0), spec.get("max", 100)
    try:
        return str(rng.randint(int(float(lo)), int(float(hi))))
    except (TypeError, ValueError):
        return str(rng.randint(0, 100))


def templates_for(entity: Entity, registry: Registry, rng: random.Random) -> list[Example]:
    """Template utterances for every class of one entity."""
    out: list[Example] = []
    names = surface_names(entity, registry)
    for verb in entity.verbs:
        attr = VERB_CAPABILITY.get(verb)
        spec = entity.attributes.get(attr or "", {})
        if verb == "set":
            patterns = []
            for gattr in _generic_attributes(entity):
                options = (entity.attributes[gattr] or {}).get("options")
                tpls = OPTION_TEMPLATES if options else SET_TEMPLATES
                patterns += [(t, gattr) for t in tpls]
        elif spec.get("options"):
            patterns = [(t, attr) for t in OPTION_TEMPLATES]
        else:
            patterns = [(t, attr) for t in VERB_TEMPLATES.get(verb, ())]
        if verb == "set" and not patterns:
            continue
        for template, pattr in patterns:
            for name in names:
                options = (entity.attributes.get(pattr or "", {}) or {}).get("options")
                opt = str(rng.choice(options)).replace("_", " ") if options else rng.choice(_COLORS)
                text = template.format(
                    name=name,
                    n=_values(entity, pattr or "", rng),
                    opt=opt,
                    attr=(pattr or "").replace("_", " "),
                )
                out.append(Example(text, label(entity.entity_id, verb)))
    return out


def build_examples(
    registry: Registry, *, seed: int = 0, paraphrases: int = 1, requests: Path | None = None
) -> list[Example]:
    """Templates x names x paraphrase wrappers (deduplicated), plus logged requests."""
    rng = random.Random(seed)
    seen: set[str] = set()
    out: list[Example] = []
    for entity in registry.all():
        for ex in templates_for(entity, registry, rng):
            for wrap in [PARAPHRASES[0], *rng.sample(PARAPHRASES[1:], paraphrases)]:
                text = wrap.format(u=ex.text)
                if text not in seen:
                    seen.add(text)
                    out.append(Example(text, ex.label))
    if requests is not None:
        out += [Example(t, None) for t in read_requests(requests) if t not in seen]
    return out


def read_requests(path: Path) -> list[str]:
    """Texts of logged requests (JSONL with a "text" field); bad lines are logged, skipped."""
    texts = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        log.warning("requests file %s unreadable: %s", path, exc)
        return []
    for n, line in enumerate(lines, 1):
        try:
            data: Any = json.loads(line)
            text = data.get("text") if isinstance(data, dict) else None
        except ValueError:
            text = None
        if isinstance(text, str) and text.strip():
            texts.append(text.strip())
        elif line.strip():
            log.warning("%s:%d: no text in logged request, skipped", path, n)
    return texts


class Prior:
    """A cheap plausibility score per class: does the text name the device, area and verb?

    Entity words are computed once per home, so scoring a text is a few set operations.
    """

    def __init__(self, registry: Registry, classes: list[str]) -> None:
        self.registry = registry
        self.classes = classes
        self._entity: dict[str, tuple[list[list[str]], set[str], str | None]] = {}
        for entity in registry.all():
            names = [cues.words(n) for n in cues.device_words(entity, registry)]
            self._entity[entity.entity_id] = (names, set(cues.words(entity.name)), entity.area)
        self._verb: dict[str, tuple[set[str], list[list[str]]]] = {}
        for cls in classes:
            verb = split_label(cls)[1]
            if verb not in self._verb:
                heads = [t.split("{")[0].strip() for t in VERB_TEMPLATES.get(verb, ())[:2]]
                words = set(cues.words(verb.replace("_", " "))) - {"set"}
                self._verb[verb] = (words, [cues.words(h) for h in heads if h])

    def scores(self, text: str, candidates: list[str] | None = None) -> dict[str, float]:
        tw = cues.words(text)
        tws = set(tw)
        areas = cues.mentioned_areas(self.registry, text)
        per_entity: dict[str, float] = {}
        out = {}
        for cls in candidates if candidates is not None else self.classes:
            entity_id, verb = split_label(cls)
            if entity_id not in self._entity:
                continue
            if entity_id not in per_entity:
                names, name_words, area = self._entity[entity_id]
                s = 2.0 if any(_has(tw, n) for n in names) else 0.0
                s += 0.5 * len(name_words & tws)
                if areas:
                    s += 1.0 if area in areas else -1.0
                per_entity[entity_id] = s
            words, heads = self._verb.get(verb, (set(), []))
            v = 1.0 * len(words & tws) + sum(1.0 for h in heads if _has(tw, h))
            out[cls] = per_entity[entity_id] + v
        return out


def _has(tw: list[str], target: list[str]) -> bool:
    n = len(target)
    return n > 0 and any(tw[i : i + n] == target for i in range(len(tw) - n + 1))


def prior_scores(text: str, registry: Registry, classes: list[str]) -> dict[str, float]:
    """One-off prior scores (builds the per-home tables each call: use `Prior` in loops)."""
    return Prior(registry, classes).scores(text)


def top_k(text: str, prior: Prior, k: int, gold: str | None) -> list[str]:
    """The K most plausible classes by the prior (the gold label always included)."""
    scores = prior.scores(text)
    ranked = sorted(scores, key=lambda c: (-scores[c], c))[:k]
    if gold is not None and gold not in ranked:
        ranked = [*ranked[: k - 1], gold]
    return ranked
