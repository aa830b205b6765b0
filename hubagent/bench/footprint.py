"""Footprint: time to ready and resident memory, each in a fresh interpreter so imports count.

The child builds the Hub (demo home), starts it against the bench broker (matcher warmed in
`start`), reads VmRSS, then loads the model and reads VmRSS again. The baseline is a bare
interpreter that only reads its own VmRSS.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from hubagent.bench.report import SuiteResult, median

# Each child hub logs in with a hub worker account of its own (see runner.py): client ids
# are bound to accounts, so the hub's own login would be taken over by whatever else uses it.
ACCOUNT = "hubagent-footprint"

_CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
from hubagent.app import Hub
from hubagent.parts import open_llm
from hubagent.bench.report import rss_kib
from hubagent.config import Config, LlmConfig, MqttConfig, StoreConfig
a = json.loads(sys.argv[1])
cfg = Config(homes=(a["home"],), mqtt=MqttConfig(**a["mqtt"]), llm=LlmConfig(backend="none"),
             store=StoreConfig(path=a["db"]))
hub = Hub(cfg, use_llm=False)
ok = hub.start(wait=30)
t_hub = time.perf_counter() - t0
rss_idle = rss_kib()
t1 = time.perf_counter()
runtime = open_llm(Config(llm=LlmConfig(model=a["model"], threads=a["threads"])))
t_model = time.perf_counter() - t1
rss_model = rss_kib()
print(json.dumps({"connected": ok, "hub_s": t_hub, "model_s": t_model, "model": runtime is not None,
                  "rss_idle_kib": rss_idle, "rss_model_kib": rss_model}), flush=True)
hub.stop()
"""
_BARE = (
    "from hubagent.bench.report import rss_kib; import json; "
    "print(json.dumps({'rss_kib': rss_kib()}))"
)


def _child(args: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    t0 = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, json.dumps(args)],
        capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    wall = time.perf_counter() - t0
    return wall, json.loads(out.stdout.strip().splitlines()[-1])


def _bare() -> tuple[float, int]:
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", _BARE], capture_output=True, text=True,
                         timeout=60, check=True)  # fmt: skip
    return (time.perf_counter() - t0), int(json.loads(out.stdout)["rss_kib"])


def run(
    broker: Any, home: Path, *, repeats: int, threads: int, model: str = "default"
) -> SuiteResult:
    result = SuiteResult("footprint")
    workdir = Path(tempfile.mkdtemp(prefix="hubagent-bench-"))
    runs = []
    try:
        for i in range(repeats):
            mqtt = asdict(broker.mqtt_config(ACCOUNT))
            args = {"home": str(home), "mqtt": mqtt, "db": str(workdir / f"fp{i}.db"),
                    "threads": threads, "model": model}  # fmt: skip
            runs.append(_child(args))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    bare = [_bare() for _ in range(repeats)]
    bare_s = median([b[0] for b in bare])
    bare_mib = median([b[1] for b in bare]) / 1024
    facts = [r[1] for r in runs]
    # Wall clock from spawn: interpreter start + imports + hub + (model); stdout parse is ~0.
    hub_wall = median([w - f["model_s"] for w, f in runs])
    full_wall = median([w for w, _ in runs])
    result.add("start-up to ready, no model", hub_wall, "s", baseline=bare_s,
               baseline_name="bare python", runs=repeats)  # fmt: skip
    result.add("start-up to ready, with model load", full_wall, "s", baseline=bare_s,
               baseline_name="bare python", runs=repeats)  # fmt: skip
    result.add("model load", median([f["model_s"] for f in facts]), "s", runs=repeats)
    result.add("RSS idle (no model)", median([f["rss_idle_kib"] for f in facts]) / 1024, "MiB",
               baseline=bare_mib, baseline_name="bare python", runs=repeats)  # fmt: skip
    result.add("RSS with model", median([f["rss_model_kib"] for f in facts]) / 1024, "MiB",
               baseline=bare_mib, baseline_name="bare python", runs=repeats)  # fmt: skip
    result.details.update(runs=facts, wall_s=[w for w, _ in runs])
    if not all(f["model"] for f in facts):
        result.notes.append("the model did not load in the child: 'with model' rows lack it")
    if not all(f["connected"] for f in facts):
        result.notes.append("a child hub did not connect to the broker within 30 s")
    result.notes.append(
        f"fresh subprocess per run (imports count): Hub(demo home) + start (matcher warm, "
        f"broker connected) + model '{model}' load with {threads} threads; VmRSS from "
        f"/proc/self/status (the model is mmapped: RSS grows as its pages are first used)"
    )
    return result
