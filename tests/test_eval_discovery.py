"""The discovery conformance eval: real benchmark rate, CLI wiring, output formats."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from hubagent.cli import main as cli_main
from hubagent.eval.discovery import evaluate, main

BENCH = Path(__file__).resolve().parents[2] / "shared" / "benchmarks" / "mqtt-discovery-dev"


def bench() -> Path:
    if not (BENCH / "commands.jsonl").is_file():
        pytest.skip("benchmark folder mqtt-discovery-dev is absent")
    return BENCH


def test_conformance_rate_on_dev_benchmark() -> None:
    folder = bench()
    summary, results = evaluate(folder / "discovery.jsonl", folder / "commands.jsonl")
    print(f"\ndiscovery conformance {summary['passed']}/{summary['cases']} = {summary['rate']:.2%}")
    assert summary["cases"] == len(results) > 100
    assert summary["rate"] >= 0.98, summary["mismatches"]
    assert summary["discovery"]["bad_config"] == 0
    assert set(summary["by_component"]) >= {"light", "switch", "cover", "climate", "fan"}
    assert any("Tasmota" in name for name in summary["by_firmware"])


def test_cli_json_summary_and_predictions(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    folder = bench()
    out = tmp_path / "pred.jsonl"
    code = cli_main(["eval", "--format", "discovery", str(folder), "--json", "--out", str(out)])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["rate"] >= 0.98
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == summary["cases"]
    assert all({"action", "messages", "ok"} <= set(row) for row in rows)


def test_synthetic_benchmark_reports_mismatches(tmp_path: Path, capsys) -> None:
    """A tiny made-up benchmark: one passing case, one wrong expectation, one unknown topic."""
    topic = "homeassistant/switch/plug/config"
    (tmp_path / "discovery.jsonl").write_text(
        json.dumps(
            {
                "topic": topic,
                "payload": {"cmd_t": "plug/set", "name": "Plug", "pl_on": "1"},
                "component": "switch",
                "firmware": "made-up",
            }
        )
        + "\n"
    )
    base = {"discovery_topic": topic, "slots": {"name": "Plug"}, "firmware": "made-up"}
    cases = [
        {
            **base,
            "intent": "HassTurnOn",
            "expected_command_topic": "plug/set",
            "expected_payload": "1",
        },
        {
            **base,
            "intent": "HassTurnOff",
            "expected_command_topic": "plug/set",
            "expected_payload": "0",
        },
        {
            **base,
            "discovery_topic": "homeassistant/switch/nothing/config",
            "intent": "HassTurnOn",
            "expected_command_topic": "x",
            "expected_payload": "ON",
        },
    ]
    (tmp_path / "commands.jsonl").write_text("\n".join(json.dumps(c) for c in cases) + "\n")
    args = argparse.Namespace(
        cases=str(tmp_path), discovery=None, commands=None, json=False, out=None
    )
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "1/3" in text and "'OFF' != '0'" in text and "no entity discovered" in text


def test_missing_files_are_a_clear_error(tmp_path: Path) -> None:
    args = argparse.Namespace(
        cases=str(tmp_path), discovery=None, commands=None, json=False, out=None
    )
    with pytest.raises(ValueError, match="no such file"):
        main(args)
