"""Home files: a malformed entry is a `file:line: entry: problem` error, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from hubagent.cli import main
from hubagent.home.homefile import HomeFileError, load_home

DEMO = Path(__file__).resolve().parents[1] / "devices" / "demo-home.yaml"

HEAD = """name: Test flat
floors: [{id: ground, name: Ground}]
areas:
  - {id: kitchen, name: Kitchen, floor: ground}
devices:
  - id: light.kitchen
    area: kitchen
"""


def _load(tmp_path: Path, text: str) -> None:
    path = tmp_path / "home.yaml"
    path.write_text(text, encoding="utf-8")
    load_home(path)


@pytest.mark.parametrize(
    ("tail", "line", "problem"),
    [
        (
            "    attributes:\n      brightness: [0, 100]\n",
            9,
            "attribute 'brightness': must be a mapping",
        ),
        ("    attributes:\n      brightness: 5\n", 9, "got 5"),
        ("    attributes:\n      brightness: {min: 0, max: high}\n", 9, "'max' must be a number"),
        ("    attributes:\n      brightness: {min: 90, max: 10}\n", 9, "min 90 is above max 10"),
        (
            "    attributes:\n      mode:\n        options: auto\n",
            10,
            "'options' must be a non-empty list",
        ),
        ("    attributes: [brightness]\n", 8, "'attributes' must be a mapping"),
        ("    state: on\n", 8, "'state' must be a mapping"),
        ("    aliases: {a: b}\n", 8, "aliases must be a list of strings"),
        ("  - id: light.kitchen\n", 8, "a second device with this id"),
        ("  - id: lamp\n", 8, "'id' must be '<domain>.<name>'"),
        ("  - light.other\n", 8, "devices[1]: must be a mapping"),
        ("  - id: light.b\n    area: attic\n", 9, "unknown area 'attic'"),
    ],
)
def test_malformed_entry_names_file_and_line(
    tmp_path: Path, tail: str, line: int, problem: str
) -> None:
    with pytest.raises(HomeFileError) as caught:
        _load(tmp_path, HEAD + tail)
    message = str(caught.value)
    assert message.startswith(f"{tmp_path / 'home.yaml'}:{line}: "), message
    assert problem in message


def test_unknown_floor_and_invalid_yaml(tmp_path: Path) -> None:
    with pytest.raises(HomeFileError, match=r"home.yaml:4: areas\[0\] \(kitchen\): unknown floor"):
        _load(tmp_path, HEAD.replace("floor: ground", "floor: roof"))
    with pytest.raises(HomeFileError, match=r"home.yaml:8: invalid YAML: expected"):
        _load(tmp_path, HEAD + "    attributes: {brightness: [0, 100}\n")


def test_good_files_load_as_plain_data() -> None:
    home = load_home(DEMO)
    assert home.entities and home.areas
    spec = next(e.attributes for e in home.entities if "hvac_mode" in e.attributes)
    assert type(spec["hvac_mode"]["options"]) is list  # plain, dumpable data
    assert all(type(d) is dict for d in home.raw_devices)


def test_cli_prints_the_error_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    path = tmp_path / "home.yaml"
    path.write_text(HEAD + "    attributes:\n      brightness: [0, 100]\n", encoding="utf-8")
    assert main(["ask", "turn on the kitchen light", "--home", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:9: devices[0] (light.kitchen): attribute 'brightness'" in err
    assert "Traceback" not in err
