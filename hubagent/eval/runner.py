"""`hubagent eval`: dispatch to the importer for each benchmark format."""

from __future__ import annotations

import argparse
import importlib

_FORMATS = {
    "hubagent": "hubagent.eval.cases",
    "homebench": "hubagent.eval.homebench",
    "ha-intents": "hubagent.eval.ha_intents",
    "discovery": "hubagent.eval.discovery",
}


def run_eval(args: argparse.Namespace) -> int:
    """Run the evaluation named by `--format`; each module exposes `main(args) -> int`."""
    module = importlib.import_module(_FORMATS[args.format])
    return int(module.main(args))
