"""`hubagent.yaml` -> frozen dataclasses, with environment overrides for secrets.

Every problem is reported as a `ConfigError` naming the file, the key and what is wrong,
so the CLI can print one line instead of a traceback.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hubagent.language import LanguageError, served_languages


class ConfigError(ValueError):
    """An invalid configuration: the message names file, key and problem."""


@dataclass(frozen=True)
class MqttConfig:
    host: str = "127.0.0.1"
    port: int = 8883
    tls: bool = True
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    username: str | None = "hubagent"
    password: str | None = field(default=None, repr=False)  # env HUBAGENT_MQTT_PASSWORD
    protocol: str = "5"  # "5" or "3.1.1"
    client_id: str = "hubagent"
    keepalive: int = 30
    discovery_prefix: str = "homeassistant"
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 30.0


@dataclass(frozen=True)
class AclConfig:
    """What `hubagent acl` writes. Device accounts own `<device_root>/<account>/...`."""

    device_root: str = "home"
    hub_account: str = "hubagent"
    # Topic trees of bridges whose devices the hub may also read and command.
    hub_read: tuple[str, ...] = ("zigbee2mqtt/#", "tasmota/#", "stat/#", "tele/#")
    hub_write: tuple[str, ...] = ("zigbee2mqtt/+/set", "cmnd/#")


# The built-in local models (`llm.model`); "default" names DEFAULT_MODEL.
MODEL_CHOICES = ("small", "large")
DEFAULT_MODEL = "small"
LLM_BACKENDS = ("local", "openai", "none")


@dataclass(frozen=True)
class LlmConfig:
    backend: str = "local"  # "local" | "openai" | "none"
    model: str = "default"  # "small" | "large" | "default" (DEFAULT_MODEL) | a .gguf path
    cache_dir: str = "~/.cache/hubagent/models"
    threads: int = 0  # 0: all cores
    context: int = 4096
    openai_url: str = "http://127.0.0.1:8080/v1"
    openai_model: str = "default"
    openai_key: str | None = field(default=None, repr=False)  # env HUBAGENT_OPENAI_KEY
    # A distilled student (`hubagent distill`): answers confident requests before the LLM.
    student: str | None = None
    student_threshold: float = 0.9
    # After the registry's structure changes, the prompt prefix is re-evaluated into the
    # model's cache once no further change arrived for this long (discovery comes in bursts).
    warm_debounce_s: float = 2.0


@dataclass(frozen=True)
class PolicyConfig:
    sensitive_domains: tuple[str, ...] = ("lock", "alarm_control_panel")
    sensitive_device_classes: tuple[str, ...] = ("garage", "door", "gate")
    sensitive_entities: tuple[str, ...] = ()
    allow_entities: tuple[str, ...] = ()  # empty: all allowed
    deny_entities: tuple[str, ...] = ()
    deny_domains: tuple[str, ...] = ()
    untrusted_channels: tuple[str, ...] = ()
    confirm_window_s: float = 30.0
    rate_limit_per_entity: int = 10  # commands per window
    rate_window_s: float = 10.0
    # Automation ids that may run sensitive actions (they must also set allow_sensitive).
    trusted_automations: tuple[str, ...] = ()


@dataclass(frozen=True)
class StoreConfig:
    path: str = "~/.local/share/hubagent/hubagent.db"
    encryption_key: str | None = field(default=None, repr=False)  # env HUBAGENT_STORE_KEY
    history_days: float = 7.0
    outbox_ttl_s: float = 300.0
    # After a reconnect, devices reconnect and resubscribe too; queued commands wait this
    # long so they are not published to a broker that has no subscriber for them yet.
    outbox_resume_delay_s: float = 1.0


@dataclass(frozen=True)
class HttpConfig:
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 8124  # not 8123: that is Home Assistant's own port
    token: str | None = field(default=None, repr=False)  # env HUBAGENT_HTTP_TOKEN


@dataclass(frozen=True)
class WyomingConfig:
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 10600


@dataclass(frozen=True)
class HomeAssistantConfig:
    """The optional Home Assistant bridge (entities that are not on MQTT)."""

    url: str | None = None  # e.g. http://homeassistant.local:8123; None: bridge off
    token: str | None = field(default=None, repr=False)  # env HUBAGENT_HA_TOKEN
    verify_ssl: bool = True
    import_domains: tuple[str, ...] = ()  # empty: every domain hubagent controls or reads
    timeout_s: float = 10.0
    refresh_s: float = 5.0  # state polling period when HA's WebSocket events are unavailable


@dataclass(frozen=True)
class Config:
    language: str = "en"  # the one language served when `languages` is not set
    languages: tuple[str, ...] = ()  # several at once, e.g. [en, zh-hans]; the first is default
    homes: tuple[str, ...] = ()
    automations: str | None = None
    mqtt: MqttConfig = field(default_factory=MqttConfig)
    acl: AclConfig = field(default_factory=AclConfig)
    llm: LlmConfig = field(default_factory=LlmConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    http: HttpConfig = field(default_factory=HttpConfig)
    wyoming: WyomingConfig = field(default_factory=WyomingConfig)
    homeassistant: HomeAssistantConfig = field(default_factory=HomeAssistantConfig)

    @property
    def served_languages(self) -> tuple[str, ...]:
        """Canonical tags of the languages served (`languages`, else `language`)."""
        return served_languages(self.languages or (self.language,))


# Secrets never need to live in the YAML file.
ENV_OVERRIDES: dict[str, tuple[str, str]] = {
    "HUBAGENT_MQTT_PASSWORD": ("mqtt", "password"),
    "HUBAGENT_MQTT_HOST": ("mqtt", "host"),
    "HUBAGENT_OPENAI_KEY": ("llm", "openai_key"),
    "HUBAGENT_LLM_MODEL": ("llm", "model"),  # small | large | a .gguf path
    "HUBAGENT_STORE_KEY": ("store", "encryption_key"),
    "HUBAGENT_HTTP_TOKEN": ("http", "token"),
    "HUBAGENT_HA_TOKEN": ("homeassistant", "token"),
    "HUBAGENT_HA_URL": ("homeassistant", "url"),
}


def load_config(path: str | Path | None, env: dict[str, str] | None = None) -> Config:
    """Load `path` (or defaults when None) and apply environment overrides."""
    env = dict(os.environ) if env is None else env
    where = str(path) if path else "<defaults>"
    data: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.exists():
            raise ConfigError(f"{where}: file not found")
        try:
            loaded = yaml.safe_load(p.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = f" line {mark.line + 1}" if mark else ""
            raise ConfigError(f"{where}:{line} invalid YAML: {exc}") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{where}: top level must be a mapping, got {type(loaded).__name__}")
        data = loaded
    for var, (section, key) in ENV_OVERRIDES.items():
        if env.get(var):
            data.setdefault(section, {})
            if not isinstance(data[section], dict):
                raise ConfigError(f"{where}: '{section}' must be a mapping")
            data[section][key] = env[var]
    cfg = _build(Config, data, where, "")
    from hubagent.understand.slots import UnknownLanguageError, resolve_language

    try:  # a tag that is not one, or a language without sentence templates
        for code in cfg.served_languages:
            resolve_language(code)
    except (LanguageError, UnknownLanguageError) as exc:
        raise ConfigError(f"{where}: {exc}") from None
    _check_llm(cfg.llm, where)
    return cfg


def _check_llm(llm: LlmConfig, where: str) -> None:
    """`llm.backend` and `llm.model` name something that exists (a typo fails at load)."""
    if llm.backend not in LLM_BACKENDS:
        raise ConfigError(
            f"{where}: 'llm.backend' must be one of {', '.join(LLM_BACKENDS)}, got {llm.backend!r}"
        )
    name = llm.model.strip()
    if name in (*MODEL_CHOICES, "default") or name.lower().endswith(".gguf"):
        return
    if "/" in name or "\\" in name:  # a path to a model file without the usual suffix
        return
    raise ConfigError(
        f"{where}: 'llm.model' must be {', '.join(MODEL_CHOICES)}, default or a path to a "
        f".gguf file, got {llm.model!r}"
    )


def _build(cls: type, data: Any, where: str, prefix: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: '{prefix or '<top>'}' must be a mapping")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(
            f"{where}: unknown key '{_join(prefix, unknown[0])}' (allowed: {', '.join(sorted(names))})"
        )
    kwargs = {}
    for name, value in data.items():
        kwargs[name] = _coerce(hints[name], value, where, _join(prefix, name))
    return cls(**kwargs)


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _coerce(hint: Any, value: Any, where: str, key: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value if value is not None else {}, where, key)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(inner[0], value, where, key)
    if origin is tuple:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where}: '{key}' must be a list, got {value!r}")
        return tuple(_coerce(args[0], v, where, f"{key}[{i}]") for i, v in enumerate(value))
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in (
            "true",
            "yes",
            "on",
            "1",
            "false",
            "no",
            "off",
            "0",
        ):
            return value.lower() in ("true", "yes", "on", "1")
        raise ConfigError(f"{where}: '{key}' must be true or false, got {value!r}")
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise ConfigError(f"{where}: '{key}' must be an integer, got {value!r}")
        try:
            return int(value)
        except ValueError:
            raise ConfigError(f"{where}: '{key}' must be an integer, got {value!r}") from None
    if hint is float:
        if isinstance(value, bool):
            raise ConfigError(f"{where}: '{key}' must be a number, got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: '{key}' must be a number, got {value!r}") from None
    if hint is str:
        if isinstance(value, dict | list) or value is None:
            raise ConfigError(f"{where}: '{key}' must be a string, got {value!r}")
        return str(value)
    return value


def expand(path: str) -> Path:
    """A config path with `~` and environment variables expanded."""
    return Path(os.path.expandvars(os.path.expanduser(path)))
