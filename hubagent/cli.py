"""`hubagent` command line: argparse verbs wired to the modules that do the work.

Every user-facing error is one line on stderr and a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from pathlib import Path

from hubagent import __version__
from hubagent.config import Config, ConfigError, load_config
from hubagent.mqtt.broker import MosquittoNotInstalled


class UserError(Exception):
    """An error whose message is meant for the person at the terminal."""


def _config(args: argparse.Namespace) -> Config:
    return load_config(getattr(args, "config", None))


def cmd_init(args: argparse.Namespace) -> int:
    from hubagent.init import init_files

    for path in init_files(base=Path(args.dir)):
        print(f"wrote {path}")
    print(
        "next: hubagent certs init certs --hostname NAME --ip ADDRESS, then hubagent acl (README)"
    )
    return 0


def cmd_certs(args: argparse.Namespace) -> int:
    from hubagent.security.certs import init_certs

    paths = init_certs(Path(args.dir), hostnames=args.hostname, clients=args.client, ips=args.ip)
    names = ", ".join(paths.server_names)
    if paths.server_status == "kept":
        print(f"kept the existing CA and server certificate in {paths.directory} ({names})")
        print(
            "  to add names or addresses: run again with --hostname NAME / --ip ADDRESS "
            "(reissued by the same CA, devices keep trusting it); to start over: delete the folder"
        )
    else:
        print(f"{paths.server_status} the server certificate in {paths.directory} for {names}")
        if paths.server_status == "reissued":
            print("  restart the broker to use it (docker compose restart mosquitto)")
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
    from hubagent.interfaces.server import ListenError

    try:
        return run_demo(
            Path(args.home),
            workdir=Path(args.workdir),
            use_llm=not args.no_llm,
            ports=(args.http_port, args.wyoming_port),
        )
    except ListenError as exc:
        flag = "--http-port" if exc.setting.startswith("http") else "--wyoming-port"
        raise UserError(
            f"cannot listen on {exc.host}:{exc.port}: {exc.reason}; use {flag} PORT"
        ) from None


def _port(text: str) -> int:
    """argparse type: a TCP port (1-65535)."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port {port} is not between 1 and 65535")
    return port


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


# What each verb does, shown by `hubagent VERB --help` (the one-line `help` is in the list).
DESCRIPTIONS = {
    "init": "Write hubagent.yaml (mode 0600, with a generated MQTT password for the hub) and "
    "the home-file template devices/my-home.yaml in DIR; existing files are never overwritten.",
    "certs": "Create a certificate authority and a broker (server) certificate in DIR, plus "
    "client certificates; run again with new --hostname/--ip to reissue the server "
    "certificate from the same CA.",
    "acl": "Write mosquitto's password file, ACL file and accounts.yaml (the generated "
    "passwords) for the hub, requesters, hub workers, every device of the home files and "
    "every firmware account of acl.accounts.",
    "simulate": "Run the devices of a home file as simulated MQTT devices that announce "
    "themselves by Home Assistant discovery (for trying the hub without hardware).",
    "run": "Run the hub: MQTT discovery and state, the HTTP API, the Wyoming server and the "
    "MQTT request topic, until Ctrl-C.",
    "demo": "Start mosquitto (TLS, generated certificates and ACLs), the simulated demo home "
    "and the hub in one command, then talk to it at a prompt.",
    "ask": "Understand one request against a home file and print what would be done; "
    "nothing is sent (a dry run).",
    "eval": "Score the hub on a benchmark: own cases (JSONL + home file, or a folder with "
    "both), HomeBench, Home Assistant intent tests or MQTT discovery conformance.",
    "model": "fetch: assemble and verify the local model; verify: check its SHA-256; "
    "info: print its architecture, size, quantization and hash.",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hubagent",
        description="hubagent: a local-first smart-home agent hub. New here: `./run demo`; "
        "your own home: `hubagent init`, then the README's 'Running the hub'. "
        "`hubagent VERB --help` describes each verb.",
    )
    parser.add_argument("--version", action="version", version=f"hubagent {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="debug logging (also after the verb)"
    )
    sub = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    def verb(name: str, func, help_: str, config: bool = True) -> argparse.ArgumentParser:
        # "resolve": a module verb may declare -c/--config (or eval -v) itself.
        p = sub.add_parser(
            name, help=help_, description=DESCRIPTIONS.get(name, help_), conflict_handler="resolve"
        )
        p.add_argument(
            "-v",
            "--verbose",
            action="store_true",
            default=argparse.SUPPRESS,
            help="debug logging",
        )
        if config:
            p.add_argument("-c", "--config", help="hubagent.yaml (defaults apply without one)")
        p.set_defaults(func=func)
        return p

    p = verb("init", cmd_init, "write hubagent.yaml and a home-file template", config=False)
    p.add_argument("--dir", default=".", help="folder to write them in (default: here)")

    p = verb("certs", cmd_certs, "create a CA, broker and client certificates")
    p.add_argument("action", choices=["init"], help="init: create (or extend) the certificates")
    p.add_argument("dir", help="folder for ca.crt, server.crt/.key and clients/")
    p.add_argument(
        "--hostname", action="append", default=[], help="broker name on the LAN (repeatable)"
    )
    p.add_argument(
        "--ip", action="append", default=[], help="broker IP address on the LAN (repeatable)"
    )
    p.add_argument(
        "--client", action="append", default=[], help="client certificate CN (repeatable)"
    )

    p = verb("acl", cmd_acl, "write mosquitto password and ACL files")
    p.add_argument("--out", default=".", help="folder for passwd, acl and accounts.yaml")
    p.add_argument("--home", action="append", default=[], help="home file(s) with devices")

    p = verb("simulate", cmd_simulate, "run simulated devices from a home file")
    p.add_argument("home", help="home file (YAML) whose devices to simulate")
    p.add_argument("--certs", help="folder from `hubagent certs init` (CA file)")

    verb("run", cmd_run, "run the hub")

    p = verb("demo", cmd_demo, "broker + simulated demo home + hub in one command", config=False)
    p.add_argument(
        "--home",
        default=str(Path(__file__).parent.parent / "devices/demo-home.yaml"),
        help="home file to simulate (default: devices/demo-home.yaml)",
    )
    p.add_argument("--workdir", default=".hubagent/demo", help="certificates, state, logs")
    p.add_argument("--http-port", type=_port, default=8124, help="HTTP API port (localhost)")
    p.add_argument("--wyoming-port", type=_port, default=10600, help="Wyoming port (localhost)")
    p.add_argument("--no-llm", action="store_true", help="local matcher only")

    p = verb("ask", cmd_ask, "understand one request and print what would be done")
    p.add_argument("text", help='the request, e.g. "dim the kitchen light to 30 %%"')
    p.add_argument("--home", help="home file (else the configured homes)")
    p.add_argument("--area", help="the area the request comes from")
    p.add_argument("--json", action="store_true", help="print the result as JSON")

    p = verb("eval", cmd_eval, "score the hub on a benchmark")
    p.add_argument("cases", nargs="?", help="cases file or benchmark folder")
    p.add_argument(
        "--format",
        default="hubagent",
        choices=["hubagent", "homebench", "ha-intents", "discovery"],
        help="cases format (default: hubagent's own JSONL)",
    )
    p.add_argument("--home", help="home file of own cases (else CASES folder's home.yaml)")
    p.add_argument("--discovery", help="discovery format: discovery.jsonl (else in CASES)")
    p.add_argument("--commands", help="discovery format: commands.jsonl (else in CASES)")
    p.add_argument("--out", help="write predictions (JSONL)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--limit", type=int, help="only the first N cases")
    p.add_argument("--no-llm", action="store_true", help="local matcher only")
    p.add_argument("--only", action="append", metavar="PREFIX", help="own cases whose id starts so")
    p.add_argument(
        "-v", dest="show_failures", action="store_true", help="list every failed own case"
    )

    p = verb("model", cmd_model, "prepare, verify or describe the local model")
    p.add_argument("action", choices=["fetch", "verify", "info"], help="what to do")
    p.add_argument("--model", help="small, large or a .gguf path (default: llm.model)")
    p.add_argument("--quiet", action="store_true", help="print nothing on success")

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


# Verbs that print their own results: their INFO log lines would repeat what they print
# ("created the server certificate ..." twice, a line per certificate in `bench`), so they
# log warnings and errors only, unless -v.
QUIET_VERBS = {"init", "certs", "acl", "ask", "eval", "bench"}


def setup_logging(verbose: bool, verb: str | None = None) -> None:
    """One handler on the root logger: every record is printed once, to stderr."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    if verbose:
        root.setLevel(logging.DEBUG)
    else:
        root.setLevel(logging.WARNING if verb in QUIET_VERBS else logging.INFO)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(bool(getattr(args, "verbose", False)), args.verb)
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
    except OSError as exc:  # a port in use (ListenError), a file that cannot be written ...
        where = f": {exc.filename}" if exc.filename and str(exc.filename) not in str(exc) else ""
        print(f"hubagent: {exc}{where}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
