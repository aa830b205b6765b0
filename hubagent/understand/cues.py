"""What a single command names, read deterministically: areas, device words, attributes.

The LLM picks the entity and verb; these cues check the pick against the registry (the
named device and area must be the entity's own, a named attribute must be one it has).
The value a command asks for is read by `understand.values`.
"""

from __future__ import annotations

import re
from collections.abc import Set as AbstractSet

from hubagent.home.registry import Registry, normalize_name
from hubagent.types import Area, Entity

# Same-kind device words: a light may be called a lamp; never a cross-kind synonym
# (an air conditioner is not "the heating").
DEVICE_SYNONYMS: dict[str, tuple[str, ...]] = {
    "light": ("lamp", "lights", "lighting"),
    "air conditioner": ("ac", "a c", "aircon", "air conditioning"),
    "vacuum robot": ("robot vacuum", "vacuum", "robot"),
    "media player": ("speaker", "music player"),
    "trash": ("trash can", "bin", "garbage"),
    "aromatherapy": ("aroma diffuser", "diffuser"),
}
# Kind words every entity of a domain answers to (weaker than its own name).
DOMAIN_KINDS: dict[str, tuple[str, ...]] = {
    "light": ("light", "lighting", "lamp"),
    "climate": ("thermostat", "climate"),
    "media_player": ("music", "player"),
    "vacuum": ("vacuum", "hoover"),
    "lock": ("lock",),
    "scene": ("scene",),
}
# Words that name an attribute in a command, per attribute key (plus the key itself).
ATTRIBUTE_WORDS: dict[str, tuple[str, ...]] = {
    "brightness": ("brightness", "brighter", "dimmer", "dim", "brighten"),
    "color": (
        "color",
        "colour",
        "red",
        "green",
        "blue",
        "yellow",
        "orange",
        "purple",
        "pink",
        "cyan",
        "magenta",
    ),
    "color_temp": (
        "color temperature",
        "colour temperature",
        "warm white",
        "cool white",
        "kelvin",
    ),
    "oscillation": ("oscillate", "oscillation", "oscillating"),
    "channel": ("channel",),
    "temperature": ("temperature", "degrees", "degree", "warmer", "cooler", "hotter", "colder"),
    "position": ("position", "degree", "degrees", "percent open"),
    "volume": ("volume", "louder", "quieter", "quieten"),
    "fan_speed": ("fan speed",),
    "fan_mode": ("fan speed", "fan mode"),
    "speed": ("speed",),
    "percentage": ("speed",),
    "swing": ("swing",),
    "swing_mode": ("swing",),
    "mode": ("mode",),
    "hvac_mode": ("mode",),
    "preset_mode": ("mode", "preset"),
    "intensity": ("intensity",),
    "interval": ("interval",),
    "humidity": ("humidity",),
}


def words(text: str) -> list[str]:
    """Normalised words with plurals folded ("curtains" -> "curtain")."""
    return [_singular(w) for w in re.findall(r"[a-z0-9]+", normalize_name(text))]


def _singular(word: str) -> str:
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def contains(text_words: list[str], phrase: str) -> bool:
    """True when the words of `phrase` occur contiguously in `text_words`."""
    target = words(phrase)
    n = len(target)
    return n > 0 and any(text_words[i : i + n] == target for i in range(len(text_words) - n + 1))


def area_names(area: Area) -> set[str]:
    """What people call an area: its name, its id in words and its aliases."""
    return {area.name, area.id.replace("_", " "), *area.aliases}


def mentioned_areas(registry: Registry, text: str) -> list[str]:
    """Ids of the areas the text names (longest names first, so "guest bedroom" wins)."""
    tw = words(text)
    found = []
    for area in registry.areas:
        names = area_names(area)
        names |= {n.replace(" ", "") for n in names}  # "storeroom" is the store room
        if any(contains(tw, n) for n in names):
            found.append(area.id)
    return found


# Common room words: a command naming one the home lacks cannot mean a device elsewhere.
COMMON_AREAS = (
    "kitchen", "bathroom", "bedroom", "garage", "garden", "basement", "attic", "office",
    "hallway", "hall", "living room", "dining room", "study", "nursery", "laundry",
    "balcony", "patio", "porch", "cellar", "corridor", "foyer", "pantry", "terrace",
    "guest room", "guest bedroom", "master bedroom", "kids room", "playroom", "gym",
    "sauna", "shed", "loft", "conservatory", "workshop", "utility room", "toilet", "closet",
    "den", "lobby", "library", "pool", "yard", "backyard", "driveway", "studio", "cloakroom",
    "wine cellar", "greenhouse", "stairs", "landing", "lounge", "veranda",
)  # fmt: skip


# Common device words: a command naming one is about that device, not "whatever has
# the attribute it mentions".
COMMON_DEVICES = (
    "light", "lamp", "heating", "heater", "thermostat", "air conditioner", "ac", "fan",
    "curtain", "blind", "shade", "shutter", "door", "window", "gate", "lock", "tv",
    "television", "speaker", "media player", "humidifier", "dehumidifier", "purifier",
    "vacuum", "robot", "plug", "socket", "switch", "valve", "sprinkler", "oven", "kettle",
    "water heater", "boiler", "camera", "doorbell", "alarm", "siren", "diffuser", "radiator",
)  # fmt: skip


def names_common_device(text: str) -> bool:
    """Does the text name a kind of device ("fan speed" names an attribute, not a fan)?"""
    tw = without_attribute_phrases(text).split()
    return any(contains(tw, d) for d in COMMON_DEVICES)


def unknown_area(registry: Registry, text: str) -> str | None:
    """A common room word in `text` that is neither an area of the home nor a device word."""
    tw = words(text)
    if mentioned_areas(registry, text):
        return None
    vocabulary = set()
    for entity in registry.all():
        vocabulary.update(words(entity.name))
        for alias in entity.aliases:
            vocabulary.update(words(alias))
    for area in registry.areas:
        vocabulary.update(words(area.name))
    rooms = [r for r in COMMON_AREAS if contains(tw, r)]
    rooms += [f"{w} room" for w in re.findall(r"\b([a-z]+) room\b", " ".join(tw))]
    for room in rooms:
        if not set(words(room)) - {"room"} & vocabulary:
            return room
    return None


def device_words(entity: Entity, registry: Registry, synonyms: bool = True) -> list[str]:
    """The names a command may use for this entity (its name without the area, aliases and,
    with `synonyms`, the other words for its kind: a light is also a lamp)."""
    area = registry.area(entity.area)
    area_words = set(words(area.name)) | set(words(area.id)) if area else set()
    own = [w for w in words(entity.name) if w not in area_words]
    names = [" ".join(own)] if own else []
    if len(own) < len(words(entity.name)):
        names.append(entity.name)  # "Kai's blind" is also said whole
    if own:
        names.append(own[-1]) if len(own) > 1 and entity.domain == "light" else None
    names += list(entity.aliases)
    for alias in entity.aliases:
        # "living room heating" said in the living room is "the heating".
        rest = [w for w in words(alias) if w not in area_words]
        if rest and len(rest) < len(words(alias)):
            names.append(" ".join(rest))
    if synonyms:
        # What every device of its kind is called: any light is "a light", any climate
        # device "the thermostat", a blind cover "a blind".
        names += list(DOMAIN_KINDS.get(entity.domain, ()))
        if entity.device_class and entity.domain in ("cover", "humidifier", "media_player"):
            names.append(entity.device_class.replace("_", " "))
    for base, syns in DEVICE_SYNONYMS.items() if synonyms else ():
        # "Robot vacuum" is also "the vacuum": a name in a synonym group gets the group.
        if " ".join(own) in {" ".join(words(n)) for n in (base, *syns)}:
            names += [base, *syns]
    return [n for n in names if n]


def without_attribute_phrases(text: str) -> str:
    """The text with multi-word attribute names removed ("fan speed" is not a fan)."""
    low = " ".join(words(text))
    for phrases in ATTRIBUTE_WORDS.values():
        for phrase in phrases:
            if " " in phrase:
                low = re.sub(rf"\b{re.escape(' '.join(words(phrase)))}\b", " ", low)
    return low


def which_one(registry: Registry, entities: list[Entity], most: int = 5) -> str:
    """ "which one? Desk lamp (Office), Floor lamp (Living room) or ...": the question a
    request that fits several devices gets, in the names people use."""
    labels = []
    for e in entities[:most]:
        area = registry.area(e.area)
        labels.append(f"{e.name} ({area.name})" if area and area.name not in e.name else e.name)
    more = len(entities) - most
    if more > 0:
        labels.append(f"{more} more")
    listed = labels[0] if len(labels) == 1 else ", ".join(labels[:-1]) + " or " + labels[-1]
    return f"which one? {listed}"


def names_device(entity: Entity, registry: Registry, text: str) -> bool:
    """Does the command use one of this entity's device words (wherever it is)?"""
    tw = words(without_attribute_phrases(text))
    return any(contains(tw, n) for n in device_words(entity, registry))


def grounded(entity: Entity, registry: Registry, text: str) -> bool:
    """Does the command name this entity's device (and, if it names an area, its area)?"""
    if not names_device(entity, registry, text):
        return False
    areas = mentioned_areas(registry, text)
    return not areas or entity.area in areas


def name_match_length(entity: Entity, registry: Registry, text: str) -> float:
    """Words in the longest of the entity's device words found in `text` (0: none):
    "the floor lamp" names the Floor lamp (2) more precisely than any other lamp (1), and
    "the lamp" names the Desk lamp (1) before a light that is a lamp only as a synonym (0.5)."""
    tw = words(without_attribute_phrases(text))
    own = set(device_words(entity, registry, synonyms=False))
    return max(
        (
            len(words(n)) - (0 if n in own else 0.5)
            for n in device_words(entity, registry)
            if contains(tw, n)
        ),
        default=0,
    )


_GENERIC = frozenset(
    {"thing", "machine", "device", "main", "big", "small", "my", "the", "a", "an", "of", "and"}
)


def _generic_words() -> frozenset[str]:
    """Words that name a kind of device or an attribute: never distinctive on their own."""
    out = set(_GENERIC)
    for phrase in (*COMMON_DEVICES, *DEVICE_SYNONYMS, *sum(DEVICE_SYNONYMS.values(), ())):
        out.update(words(phrase))
    for key, phrases in ATTRIBUTE_WORDS.items():
        out.update(words(key.replace("_", " ")))
        for phrase in phrases:
            out.update(words(phrase))
    return frozenset(out)


GENERIC_WORDS = _generic_words()


def distinctive_matches(registry: Registry, text: str, pool: list[Entity]) -> list[Entity]:
    """The entities of `pool` whose name or aliases have a word `text` uses that is not a
    room, a kind of device or an attribute ("the coffee thing" -> "Coffee machine"; "sauna
    heater" -> none)."""
    rooms = {w for a in registry.areas for n in (a.name, a.id, *a.aliases) for w in words(n)}
    tw = set(words(text)) - GENERIC_WORDS - rooms
    return [
        e
        for e in pool
        if any(len(w) > 2 and w in tw for n in (e.name, *e.aliases) for w in words(n))
    ]


def plural_of_all(text: str, entities: list[Entity], registry: Registry) -> bool:
    """Does `text` name, in the plural, a device word all `entities` share ("the lights")?"""
    plurals = {w[:-1] for w in re.findall(r"[a-z]+", normalize_name(text)) if w.endswith("s")}
    shared = set.intersection(
        *({w for n in device_words(e, registry) for w in words(n)} for e in entities)
    )
    return bool(plurals & shared)


def mentioned_attributes(
    text: str, known: AbstractSet[str], entity: Entity | None = None
) -> list[str]:
    """Attribute keys (among `known` plus the standard ones) named by the text; with
    `entity`, read as said of that entity ("fan speed" of a fan is its speed)."""
    tw = words(text)
    hits = []
    table = dict(ATTRIBUTE_WORDS)
    for key in known:
        table.setdefault(key, ())
    for key, syns in table.items():
        phrases = {key.replace("_", " "), *syns}
        if any(contains(tw, p) for p in phrases):
            hits.append(key)
    if entity is not None and entity.domain == "light":
        # Said of a light, warm and cool are its colour temperature.
        warm = any(w in tw for w in ("warm", "warmer", "warmest", "cool", "cooler", "coolest"))
        if "temperature" in hits or warm:
            hits = [h for h in hits if h != "temperature"] + ["color_temp"]
    if "fan_speed" in hits or "fan_mode" in hits:
        if (
            entity is not None
            and entity.domain == "fan"
            and not _FAN_PHRASE_KEYS & set(entity.attributes)
        ):
            # The fan's own speed: "set the fan speed to auto" said of a fan.
            return [h for h in hits if h not in _FAN_PHRASE_KEYS]
        # Otherwise "fan speed" names fan_speed, not the bare "speed" attribute of a fan.
        hits = [h for h in hits if h not in ("speed", "percentage")]
    return hits


_FAN_PHRASE_KEYS = frozenset({"fan_speed", "fan_mode"})


def attribute_strength(text: str, key: str) -> int:
    """How many distinct words of `text` name attribute `key` ("two degrees warmer": 2 for
    temperature, 1 for position), to prefer the attribute the wording points at most."""
    tw = words(text)
    phrases = {key.replace("_", " "), *ATTRIBUTE_WORDS.get(key, ())}
    return sum(1 for p in phrases if contains(tw, p))


def attribute_missing(entity: Entity, text: str, known: AbstractSet[str]) -> str | None:
    """The attribute word of `text` this entity lacks, or None when all are present."""
    hits = mentioned_attributes(text, known, entity)
    if not hits:
        return None
    tw = words(text)
    # A word like "degrees" may name one of several attributes: fine if any one fits.
    groups: dict[str, list[str]] = {}
    for key in hits:
        for phrase in {key.replace("_", " "), *ATTRIBUTE_WORDS.get(key, ())}:
            if contains(tw, phrase):
                groups.setdefault(phrase, []).append(key)
    if any(k in entity.attributes for keys in groups.values() for k in keys):
        return None  # "swing position": one named attribute fits, the rest is wording
    # "dim the light" on a light without brightness still names brightness.
    return next(iter(groups.values()))[0] if groups else None


# Words that may stand in attribute position without naming an attribute: its target, its
# level, and the verbs and particles of a command ("the fan set to", "the lamp on at").
_NEUTRAL_SETTING = frozenset(
    {"level", "setting", "value", "target", "it", "one", "thing", "own", "set", "turn", "put",
     "make", "change", "switch", "adjust", "bring", "go", "get", "getting", "crank", "pop",
     "move", "dial", "knock", "push", "on", "off", "up", "down", "back", "all", "way", "right",
     "just", "then", "now", "please", "them", "is", "was", "be", "need", "needs", "only",
     "to", "at", "by", "a", "an", "the"}
)  # fmt: skip
_SET_AFTER = r"(?:to|at|up|down|by)\b"


def unknown_setting_word(entity: Entity, text: str) -> str | None:
    """A setting word in attribute position ("the speaker's bass to 5", "the bass of the
    speaker", "speaker bass to 5") that names none of this entity's attributes nor any
    device, room or attribute word: the request names a setting the device lacks."""
    low = re.sub(r"\s+", " ", text.lower().replace("\u2019", "'"))
    own = {w for n in (entity.name, *entity.aliases) for w in words(n)}
    found = [m[1] for m in re.finditer(rf"'s ([a-z]+) {_SET_AFTER}", low)]
    found += [m[1] for m in re.finditer(r"\bthe ([a-z]+) of\b", low)]
    for m in re.finditer(rf"\b([a-z]+)(?:'s)? ([a-z]+) {_SET_AFTER}", low):
        if _singular(m[1]) in own:
            found.append(m[2])
    attrs = {w for k in entity.attributes for w in words(k.replace("_", " "))}
    for word in found:
        w = _singular(word)
        if w in GENERIC_WORDS or w in own or w in attrs or w in _NEUTRAL_SETTING:
            continue
        return word
    return None
