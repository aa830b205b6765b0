"""`hubagent ask "..."`: understand one request against a home and show what would be done.

A dry run: policy is checked, nothing is published. Useful to try wording, test a home
file, or debug why a request is refused. The model is loaded only when the templates and
the wording leave the request open (loading takes seconds; a template answer takes ms).
"""

from __future__ import annotations

import json

from hubagent.act.policy import Policy
from hubagent.agent import Agent
from hubagent.app import load_homes, open_llm, open_student
from hubagent.config import Config
from hubagent.home.registry import Registry
from hubagent.understand.cascade import Cascade
from hubagent.understand.llm import LlmUnderstander
from hubagent.understand.matcher import LocalMatchers
from hubagent.understand.runtime import LazyRuntime


def build_dry_agent(cfg: Config, homes: list[str], use_llm: bool = True) -> Agent:
    """An Agent over the given home files that checks policy but sends nothing (`ask`, and
    `eval` for its own cases), in every configured language."""
    registry = Registry()
    load_homes(registry, homes, static=True)
    runtime = None
    if use_llm and cfg.llm.backend != "none":
        runtime = LazyRuntime(lambda: open_llm(cfg))
    cascade = Cascade(
        LocalMatchers(registry, cfg.served_languages),
        LlmUnderstander(registry, runtime, cfg.language),
        open_student(cfg, registry),
    )
    policy = Policy(cfg.policy, registry)
    return Agent(registry, cascade, policy, None, None, cfg.served_languages)


def ask(text: str, cfg: Config, *, home: str | None, area: str | None, as_json: bool) -> int:
    """Print the reply and the actions (JSON with `as_json`); 0 when something was understood."""
    homes = [home] if home else list(cfg.homes)
    if not homes:
        raise ValueError("no home to ask about: pass --home FILE or set 'homes' in the config")
    agent = build_dry_agent(cfg, homes)
    reply = agent.handle(text, requester="cli", channel="cli", area=area)
    if as_json:
        print(json.dumps({**reply.to_dict(), "dry_run": True}, ensure_ascii=False, indent=2))
    else:
        print(reply.text)
        for action in reply.actions:
            args = ", ".join(f"{k}={v}" for k, v in action.args.items())
            print(f"  would send: {action.entity}.{action.action}({args})")
        for refusal in reply.refused:
            print(f"  refused ({refusal['error']}): {refusal['reason']}")
        path = reply.understanding.path if reply.understanding else "none"
        latency = reply.understanding.latency_ms if reply.understanding else 0.0
        print(f"  [{path} path, {latency:.1f} ms, dry run: nothing was sent]")
    understood = (
        reply.actions
        or reply.needs_confirmation
        or (reply.understanding is not None and reply.understanding.answer)
    )
    return 0 if understood else 1
