"""`hubagent` command line: argparse verbs wired to the modules that do the work.

Every user-facing error is one line on stderr and a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from pathlib import Path

from hubagent.config import Config, ConfigError, load_config
from hubagent.mqtt.broker import MosquittoNotInstalled


class UserError(Exception):
    """An error whose message is meant for the person at the terminal."""


def _config(args: argparse.Namespace) -> Config:
    return load_config(getattr(args, "config", None))


def cmd_certs(args: argparse.Namespace) -> int:
    from hubagent.security.certs import init_certs

    paths = init_certs(Path(args.dir), hostnames=args.hostname, clients=args.client)
    print(f"certificates written to {paths.directory}")
    return 0


def cmd_acl(args: argparse.Namespace) -> int:
    from hubagent.security.acl import write_acl_files

    written = write_acl_files(_config(args), Path(args.out), homes=args.home)
    for path in written:
        print(f"wrote {path}")
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    from hubagent.sim.simulator import run_simulator

    return run_simulator(
        Path(args.home), _config(args), certs_dir=args.certs, config_path=args.config
    )


def cmd_run(args: argparse.Namespace) -> int:
    from hubagent.app import run_hub

    return run_hub(_config(args), Path(args.config) if args.config else None)


def cmd_demo(args: argparse.Namespace) -> int:
    from hubagent.demo import run_demo

    return run_demo(
        Path(args.home),
        workdir=Path(args.workdir),
        use_llm=not args.no_llm,
        ports=(args.http_port, args.wyoming_port),
    )


def cmd_ask(args: argparse.Namespace) -> int:
    from hubagent.ask import ask

    return ask(args.text, _config(args), home=args.home, area=args.area, as_json=args.json)


def cmd_eval(args: argparse.Namespace) -> int:
    from hubagent.eval.runner import run_eval

    return run_eval(args)


def cmd_model(args: argparse.Namespace) -> int:
    from hubagent.understand.modelinfo import model_command

    return model_command(args.action, _config(args), quiet=args.quiet, model=args.model)


# Verbs whose module owns its arguments: `add_arguments(parser)` and `main(args) -> int`.
# Those modules keep heavy imports inside `main` so `hubagent --help` stays fast.
MODULE_VERBS = {
    "bench": ("hubagent.bench.runner", "measure ingest, latency, LLM overhead and footprint"),
    "distill": ("hubagent.compress.distill", "train the small student model for a home"),
    "quantize": ("hubagent.compress.quantize", "quantize the student's weights to int8 / 4-bit"),
    "ha": ("hubagent.interfaces.homeassistant", "import entities from a Home Assistant instance"),
}


def _module_main(args: argparse.Namespace) -> int:
    return int(importlib.import_module(args.module).main(args))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hubagent", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="verb", required=True)

    def verb(name: str, func, help_: str) -> argparse.ArgumentParser:
        # "resolve": a module verb may declare -c/--config itself with its own help text.
        p = sub.add_parser(name, help=help_, conflict_handler="resolve")
        p.add_argument("-c", "--config", help="hubagent.yaml (defaults apply without one)")
        p.set_defaults(func=func)
        return p

    p = verb("certs", cmd_certs, "create a CA, broker and client certificates")
    p.add_argument("action", choices=["init"])
    p.add_argument("dir")
    p.add_argument("--hostname", action="append", default=[], help="extra broker SAN")
    p.add_argument("--client", action="append", default=[], help="client certificate CN")

    p = verb("acl", cmd_acl, "write mosquitto password and ACL files")
    p.add_argument("--out", default=".", help="folder for passwd, acl and accounts.yaml")
    p.add_argument("--home", action="append", default=[], help="home file(s) with devices")

    p = verb("simulate", cmd_simulate, "run simulated devices from a home file")
    p.add_argument("home")
    p.add_argument("--certs", help="folder from `hubagent certs init` (CA file)")

    verb("run", cmd_run, "run the hub")

    p = verb("demo", cmd_demo, "broker + simulated demo home + hub in one command")
    p.add_argument("--home", default=str(Path(__file__).parent.parent / "devices/demo-home.yaml"))
    p.add_argument("--workdir", default=".hubagent/demo", help="certificates, state, logs")
    p.add_argument("--http-port", type=int, default=8124, help="HTTP API port (localhost)")
    p.add_argument("--wyoming-port", type=int, default=10600, help="Wyoming port (localhost)")
    p.add_argument("--no-llm", action="store_true", help="local matcher only")

    p = verb("ask", cmd_ask, "understand one request and print what would be done")
    p.add_argument("text")
    p.add_argument("--home", help="home file (else the configured homes)")
    p.add_argument("--area", help="the area the request comes from")
    p.add_argument("--json", action="store_true")

    p = verb("eval", cmd_eval, "score the hub on a benchmark")
    p.add_argument("cases", nargs="?", help="cases file or benchmark folder")
    p.add_argument(
        "--format", default="hubagent", choices=["hubagent", "homebench", "ha-intents", "discovery"]
    )
    p.add_argument("--home")
    p.add_argument("--discovery")
    p.add_argument("--commands")
    p.add_argument("--out", help="write predictions (JSONL)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--limit", type=int, help="only the first N cases")
    p.add_argument("--no-llm", action="store_true", help="local matcher only")
    p.add_argument("--only", action="append", metavar="PREFIX", help="own cases whose id starts so")
    p.add_argument(
        "-v", dest="show_failures", action="store_true", help="list every failed own case"
    )

    p = verb("model", cmd_model, "prepare, verify or describe the local model")
    p.add_argument("action", choices=["fetch", "verify", "info"])
    p.add_argument("--model", help="small, large or a .gguf path (default: llm.model)")
    p.add_argument("--quiet", action="store_true")

    for name, (module_name, help_) in MODULE_VERBS.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if not exc.name or not (module_name + ".").startswith(exc.name + "."):
                raise
            continue  # a verb whose module is not part of this build is simply absent
        p = verb(name, _module_main, help_)
        p.set_defaults(module=module_name)
        module.add_arguments(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args) or 0)
    except (ConfigError, UserError, MosquittoNotInstalled) as exc:
        print(f"hubagent: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except ValueError as exc:  # home-file, model and eval errors are ValueErrors with a clear text
        print(f"hubagent: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
