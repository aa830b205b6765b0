"""Statistics, result rows, machine facts and the text table of `hubagent bench`."""

from __future__ import annotations

import os
import platform
import re
import shutil
import statistics
import subprocess
from dataclasses import asdict, dataclass, field
from typing import Any


def median(values: list[float]) -> float:
    """Median, 0.0 for no values (a suite that measured nothing shows 0, not a crash)."""
    return float(statistics.median(values)) if values else 0.0


def percentile(values: list[float], pct: float) -> float:
    """Linear-interpolated percentile (pct in 0..100) of `values`; 0.0 when empty."""
    if not values:
        return 0.0
    ordered = sorted(values)
    pos = (len(ordered) - 1) * min(max(pct, 0.0), 100.0) / 100.0
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def ratio(value: float, baseline: float | None) -> float | None:
    """value / baseline, None when there is no usable baseline."""
    if baseline is None or baseline == 0:
        return None
    return value / baseline


@dataclass
class Row:
    """One measured figure next to its baseline."""

    suite: str
    metric: str
    value: float
    unit: str
    baseline: float | None = None
    baseline_name: str = ""
    runs: int = 1
    note: str = ""

    @property
    def ratio(self) -> float | None:
        return ratio(self.value, self.baseline)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ratio"] = None if self.ratio is None else round(self.ratio, 4)
        return data


@dataclass
class SuiteResult:
    """Rows, free-form details and notes of one suite."""

    name: str
    rows: list[Row] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    error: str | None = None

    def add(self, metric: str, value: float, unit: str, **kw: Any) -> Row:
        row = Row(self.name, metric, float(value), unit, **kw)
        self.rows.append(row)
        return row

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "rows": [r.to_dict() for r in self.rows],
            "details": self.details,
            "notes": self.notes,
            "error": self.error,
        }


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}" if abs(value) < 1 else f"{value:.2f}"


def render_table(
    machine: dict[str, Any], settings: dict[str, Any], suites: list[SuiteResult]
) -> str:
    """The human-readable report: machine facts, then one table row per figure."""
    lines = ["hubagent bench"]
    lines += [f"  {k}: {v}" for k, v in machine.items()]
    lines += [f"  {k}: {v}" for k, v in settings.items()]
    header = ("suite", "metric", "hub", "baseline", "ratio", "unit", "runs")
    table: list[tuple[str, ...]] = [header]
    for suite in suites:
        for r in suite.rows:
            base = f"{_fmt(r.baseline)} ({r.baseline_name})" if r.baseline is not None else "-"
            table.append(
                (suite.name, r.metric, _fmt(r.value), base, _fmt(r.ratio), r.unit, str(r.runs))
            )
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    lines.append("")
    for i, row in enumerate(table):
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    for suite in suites:
        if suite.error:
            lines.append(f"[{suite.name}] FAILED: {suite.error}")
        lines += [f"[{suite.name}] {note}" for note in suite.notes]
    return "\n".join(lines)


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def mosquitto_version() -> str:
    exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    try:
        out = subprocess.run([exe, "-h"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return "not found"
    found = re.search(r"mosquitto version (\S+)", out.stdout + out.stderr)
    return found.group(1) if found else "unknown"


def package_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def machine_facts() -> dict[str, Any]:
    """What the figures depend on: CPU, cores, Python, broker and client versions."""
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count() or 1,
        "python": platform.python_version(),
        "mosquitto": mosquitto_version(),
        "paho-mqtt": package_version("paho-mqtt"),
        "xllamacpp": package_version("xllamacpp"),
    }


def rss_kib() -> int:
    """This process's resident set size (VmRSS) in KiB, 0 when /proc is unavailable."""
    try:
        with open("/proc/self/status", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0
