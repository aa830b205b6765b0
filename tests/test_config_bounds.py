"""Config load rejects numbers out of range (negative durations, ports past 65535, ...) in
one line naming the file and the key; every numeric setting has a range."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import typing
from pathlib import Path

import pytest
import yaml

from hubagent.config import Config, ConfigError, load_config
from hubagent.config_checks import BOUNDS, CHOICES, POSITIVE


def _numeric_keys(cls: type, prefix: str = "") -> list[str]:
    keys = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        if dataclasses.is_dataclass(hint):
            keys += _numeric_keys(hint, f"{prefix}{f.name}.")
        elif hint in (int, float):
            keys.append(prefix + f.name)
    return keys


def _nested(key: str, value: object) -> dict:
    data: object = value
    for part in reversed(key.split(".")):
        data = {part: data}
    assert isinstance(data, dict)
    return data


def test_every_numeric_setting_has_a_range() -> None:
    assert sorted(_numeric_keys(Config)) == sorted(BOUNDS)


def test_defaults_are_in_range() -> None:
    assert load_config(None, env={}) == Config()


@pytest.mark.parametrize("key", sorted(BOUNDS))
def test_out_of_range_is_one_clear_error(tmp_path: Path, key: str) -> None:
    low, high = BOUNDS[key]
    bad = [-5] if BOUNDS[key] is POSITIVE else []
    if BOUNDS[key] is POSITIVE:
        bad.append(0)
    if low is not None:
        bad.append(low - 1)
    if high is not None:
        bad.append(high + 1)
    path = tmp_path / "hubagent.yaml"
    for value in bad:
        path.write_text(yaml.safe_dump(_nested(key, value)))
        with pytest.raises(ConfigError) as err:
            load_config(path, env={})
        text = str(err.value)
        assert text.startswith(f"{path}: '{key}' must be ") and "\n" not in text, text


def test_not_a_number_and_choices(tmp_path: Path) -> None:
    path = tmp_path / "hubagent.yaml"
    path.write_text("llm: {student_threshold: .nan}\n")
    with pytest.raises(ConfigError, match="student_threshold"):
        load_config(path, env={})
    for key, allowed in CHOICES.items():
        path.write_text(yaml.safe_dump(_nested(key, "nonsense")))
        with pytest.raises(ConfigError, match=f"'{key}' must be one of {', '.join(allowed)}"):
            load_config(path, env={})
    path.write_text("mqtt: {reconnect_min_s: 5, reconnect_max_s: 1}\n")
    with pytest.raises(ConfigError, match="reconnect_max_s"):
        load_config(path, env={})
    path.write_text("store: {history_days: 0, outbox_resume_delay_s: 0}\nhttp: {port: 0}\n")
    assert load_config(path, env={}).store.history_days == 0  # 0 has a meaning there


def test_cli_prints_one_line(tmp_path: Path) -> None:
    path = tmp_path / "hubagent.yaml"
    path.write_text("policy:\n  confirm_window_s: -5\n")
    done = subprocess.run(
        [sys.executable, "-m", "hubagent.cli", "run", "-c", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr == (
        f"hubagent: {path}: 'policy.confirm_window_s' must be more than 0, got -5.0\n"
    )
