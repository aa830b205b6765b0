"""`hubagent bench`: the ingest suite runs end to end on a real broker and reports sane
structured figures; the statistics and report helpers compute what they claim."""

from __future__ import annotations

import argparse
import json

import pytest
from conftest import require_mosquitto

from hubagent.bench import runner
from hubagent.bench.report import Row, SuiteResult, median, percentile, ratio, render_table


def test_percentile_and_median() -> None:
    values = [5.0, 1.0, 3.0, 2.0, 4.0]
    assert median(values) == 3.0
    assert percentile(values, 0) == 1.0 and percentile(values, 100) == 5.0
    assert percentile(values, 50) == 3.0
    assert percentile([1.0, 2.0], 50) == pytest.approx(1.5)  # interpolated
    assert percentile([10.0, 20.0, 30.0, 40.0], 99) == pytest.approx(39.7)
    assert median([]) == 0.0 and percentile([], 95) == 0.0


def test_ratio_and_rows() -> None:
    assert ratio(50.0, 100.0) == 0.5
    assert ratio(1.0, 0.0) is None and ratio(1.0, None) is None
    suite = SuiteResult("ingest")
    row = suite.add("1 devices: processed", 900, "msg/s", baseline=1000, baseline_name="bare")
    assert row.ratio == pytest.approx(0.9)
    data = suite.to_dict()
    assert data["rows"][0]["ratio"] == 0.9 and data["rows"][0]["baseline_name"] == "bare"
    assert Row("x", "m", 1.0, "ms").to_dict()["ratio"] is None


def test_table_shows_machine_figures_and_failures() -> None:
    ok = SuiteResult("latency")
    ok.add("local path p50", 12.25, "ms", baseline=1.3, baseline_name="bare MQTT", runs=24)
    ok.notes.append("clock: request -> device")
    failed = SuiteResult("llm", error="no model loaded")
    text = render_table({"cpu": "Test CPU", "cores": 2}, {"quick": True}, [ok, failed])
    assert "cpu: Test CPU" in text and "quick: True" in text
    line = next(x for x in text.splitlines() if "local path p50" in x)
    assert "12.2" in line and "1.30 (bare MQTT)" in line and "9.42" in line
    assert "[llm] FAILED: no model loaded" in text and "[latency] clock" in text


def test_quick_ingest_end_to_end(capsys: pytest.CaptureFixture[str]) -> None:
    require_mosquitto()
    parser = argparse.ArgumentParser()
    runner.add_arguments(parser)
    # --no-llm: the LLM-busy rate test needs the model; loading it would triple the time.
    argv = ["--quick", "--suite", "ingest", "--json", "--repeats", "1", "--no-llm"]
    args = parser.parse_args(argv)
    assert runner.main(args) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["machine"]["cores"] >= 1 and data["machine"]["mosquitto"]
    assert set(data["suites"]) == {"ingest"}
    ingest = data["suites"]["ingest"]
    assert ingest["error"] is None
    processed = [r for r in ingest["rows"] if r["metric"].endswith("processed")]
    assert [r["metric"] for r in processed] == ["1 devices: processed", "100 devices: processed"]
    for row in processed:
        assert row["value"] > 0 and row["baseline"] > 0 and row["baseline_name"] == "bare paho"
        assert row["ratio"] == pytest.approx(row["value"] / row["baseline"], rel=1e-3)
    for n in (1, 100):
        figs = ingest["details"][f"devices_{n}"]
        # Both subscribers saw every message of the same stream.
        assert figs["hub"]["received"] == figs["bare"]["received"]
        assert min(figs["hub"]["received"]) == figs["hub"]["burst"] == figs["bare"]["burst"]
    rate = ingest["details"]["rate_100_per_s"]["idle"]
    assert rate["published"] == 500 and rate["processed"] == 500
    assert rate["lag_p50_ms"] > 0
