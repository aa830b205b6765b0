"""`hubagent bench`: every suite against a real TLS mosquitto started in a temp dir, medians
over repeated runs, each figure next to a baseline measured in the same run."""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SUITES = ("ingest", "latency", "llm", "footprint")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true", help="small sizes, few repeats (CI)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument(
        "--suite", action="append", choices=SUITES, help="run only this suite (repeatable)"
    )
    parser.add_argument("--repeats", type=int, default=None, help="runs per figure (median)")
    parser.add_argument(
        "--no-llm", action="store_true", help="do not load the model (skips its rows)"
    )
    parser.add_argument(
        "--model", default=None, help="small, large or a .gguf path (default: the default model)"
    )


def progress(message: str) -> None:
    """One line per step on stderr, so a long run is never silent (stdout: the report)."""
    print(f"bench: {message}", file=sys.stderr, flush=True)


def _load_runtime(threads: int, model: str) -> tuple[Any | None, str]:
    from hubagent.config import Config, LlmConfig
    from hubagent.parts import open_llm

    t0 = time.perf_counter()
    runtime = open_llm(Config(llm=LlmConfig(model=model, threads=threads)))
    if runtime is None:
        return None, f"model '{model}' unavailable"
    return runtime, f"{model}: loaded in {time.perf_counter() - t0:.1f} s, {threads} threads"


def run_suites(
    suites: list[str],
    *,
    quick: bool,
    repeats: int,
    use_llm: bool = True,
    model: str = "default",
) -> tuple[dict[str, Any], dict[str, Any], list[Any]]:
    """(machine facts, settings, suite results); each suite failure is caught and reported."""
    from hubagent.bench import footprint, ingest, latency, llm
    from hubagent.bench.publisher import bench_accounts
    from hubagent.bench.report import SuiteResult, machine_facts
    from hubagent.config import AclConfig, Config
    from hubagent.mqtt.local import start_local_broker
    from hubagent.security.acl import device_accounts_from_homes

    threads = os.cpu_count() or 1  # the runtime gets every core, pinned for every suite
    machine = machine_facts()
    settings: dict[str, Any] = {"quick": quick, "repeats": repeats, "llm_threads": threads}
    import hubagent.understand.runtime  # noqa: F401 - sets OMP_WAIT_POLICY before any load

    settings["omp_wait_policy"] = os.environ.get("OMP_WAIT_POLICY", "")
    sizes = [1, 100] if quick else [1, 100, 1000]
    accounts = device_accounts_from_homes([latency.DEMO_HOME])
    if "ingest" in suites:
        accounts += bench_accounts(max(sizes))
    tmp = Path(tempfile.mkdtemp(prefix="hubagent-bench-"))
    progress(f"starting a TLS mosquitto with {len(accounts)} accounts")
    # The latency suite's bare client runs beside the hub: an account of its own, because
    # the broker binds client ids to usernames.
    roles = AclConfig(hub_workers=(latency.BARE_ACCOUNT, footprint.ACCOUNT))
    broker = start_local_broker(tmp, accounts, Config(acl=roles))
    settings["broker"] = f"mosquitto TLS 127.0.0.1:{broker.broker.password_port}"
    runtime = None
    if use_llm and {"ingest", "latency", "llm"} & set(suites):
        progress(f"loading the model '{model}'")
        runtime, settings["model"] = _load_runtime(threads, model)
    results: list[SuiteResult] = []
    stack = None
    try:
        for n, name in enumerate(suites, 1):
            t0 = time.perf_counter()
            progress(f"suite {n}/{len(suites)}: {name} ...")
            try:
                if name == "ingest":
                    res = ingest.run(broker, quick=quick, repeats=repeats, runtime=runtime,
                                     sizes=sizes)  # fmt: skip
                elif name in ("latency", "llm"):
                    if stack is None:
                        stack = latency.start_stack(broker, runtime)
                    if name == "latency":
                        res = latency.run(stack, quick=quick, repeats=repeats, runtime=runtime)
                    elif runtime is None:
                        res = SuiteResult("llm", error="no model loaded")
                    else:
                        res = llm.run(
                            stack.hub.registry, runtime, quick=quick, repeats=repeats,
                            progress=progress,
                            open_fresh=lambda: _load_runtime(threads, model)[0],
                        )  # fmt: skip
                else:
                    res = footprint.run(broker, latency.DEMO_HOME, repeats=repeats,
                                        threads=threads, model=model)  # fmt: skip
            except Exception as exc:  # noqa: BLE001 - one failed suite never hides the others
                log.error("bench suite %s failed: %s: %s", name, type(exc).__name__, exc)
                res = SuiteResult(name, error=f"{type(exc).__name__}: {exc}")
            res.details["suite_seconds"] = round(time.perf_counter() - t0, 1)
            progress(f"suite {name} {'FAILED' if res.error else 'done'} in "
                     f"{res.details['suite_seconds']:.0f} s")  # fmt: skip
            results.append(res)
    finally:
        if stack is not None:
            stack.close()
        if runtime is not None:
            runtime.close()
        broker.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return machine, settings, results


def main(args: argparse.Namespace) -> int:
    from hubagent.bench.report import render_table

    quick = bool(getattr(args, "quick", False))
    suites = list(dict.fromkeys(getattr(args, "suite", None) or SUITES))
    repeats = getattr(args, "repeats", None) or (2 if quick else 5)
    if repeats < 1:
        log.error("--repeats must be at least 1, got %s", repeats)
        return 2
    t0 = time.perf_counter()
    use_llm = not getattr(args, "no_llm", False)
    model = getattr(args, "model", None) or "default"
    if not getattr(args, "verbose", False):
        # One "created client certificate" line per device account (and one "connected" per
        # simulated device) drowned the report: the bench prints its own progress instead.
        logging.getLogger("hubagent").setLevel(logging.WARNING)
        logging.getLogger("hubagent.bench").setLevel(logging.INFO)
    machine, settings, results = run_suites(
        suites, quick=quick, repeats=repeats, use_llm=use_llm, model=model
    )
    settings["total_seconds"] = round(time.perf_counter() - t0, 1)
    if getattr(args, "json", False):
        data = {
            "machine": machine,
            "settings": settings,
            "suites": {r.name: r.to_dict() for r in results},
        }
        print(json.dumps(data, indent=2, default=str))
    else:
        print(render_table(machine, settings, results))
    return 1 if any(r.error for r in results) else 0
