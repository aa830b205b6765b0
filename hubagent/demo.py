"""`hubagent demo`: a TLS mosquitto with generated certificates and ACLs, the simulated demo
home, and the hub, in one command. Type requests at the prompt; Ctrl-C stops everything.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import time
from dataclasses import replace
from pathlib import Path

from hubagent.app import Hub, wait_for_signal
from hubagent.config import Config, HttpConfig, LlmConfig, StoreConfig, WyomingConfig
from hubagent.conversation import Conversations
from hubagent.interfaces.server import Interfaces
from hubagent.mqtt.broker import MosquittoNotInstalled, find_mosquitto
from hubagent.mqtt.local import start_local_broker
from hubagent.security.acl import device_accounts_from_homes
from hubagent.sim.simulator import Simulator

log = logging.getLogger(__name__)

EXAMPLES = (
    "turn on the big light in the kitchen",
    "turn off the hall light, close the blinds and set the AC to 22",
    "make it two degrees warmer in the bedroom",
    "what's the temperature in the living room?",
    "unlock the front door",
)


def demo_config(
    home: Path, workdir: Path, use_llm: bool, ports: tuple[int, int] = (8124, 10600)
) -> Config:
    """The hub's configuration for the demo (everything under `workdir`, localhost only;
    `ports`: HTTP and Wyoming)."""
    return Config(
        homes=(str(home),),
        automations=str(Path(__file__).parent.parent / "automations"),
        llm=LlmConfig() if use_llm else LlmConfig(backend="none"),
        store=StoreConfig(path=str(workdir / "hubagent.db")),
        http=HttpConfig(port=ports[0]),
        wyoming=WyomingConfig(port=ports[1]),
    )


def _banner(hub: Hub, broker_port: int, workdir: Path, addresses: dict[str, str]) -> str:
    health = hub.health()
    lines = [
        "",
        f"hubagent demo is up: {health['entities']} entities, broker on 127.0.0.1:{broker_port} (TLS)",
        f"  LLM path: {'on' if health['llm'] else 'off (local matcher and rules only)'}",
        f"  state, audit log and certificates: {workdir}",
    ]
    lines += [f"  {name}: {address}" for name, address in addresses.items()]
    lines.append("Try:")
    lines += [f"  {example}" for example in EXAMPLES]
    lines.append("Type a request and press Enter; Ctrl-C (or Ctrl-D) stops everything.")
    return "\n".join(lines)


def _repl(conversations: Conversations) -> None:
    """One conversation for the session: follow-ups ("and the kitchen too", "turn it off",
    "the one in the office") work as they do over HTTP, Wyoming and MQTT."""
    conversation_id: str | None = None
    while True:
        try:
            text = input("you> ")
        except EOFError:
            return
        if text.strip():
            reply, conversation_id = conversations.handle(
                text, conversation_id, requester="demo", channel="cli"
            )
            path = reply.understanding.path if reply.understanding else "-"
            print(f"hub> {reply.text}  [{path}]")


def _settle(hub: Hub, quiet_s: float = 0.5, limit_s: float = 10.0) -> None:
    """Wait until the retained discovery configs are in (no new entity for `quiet_s`), so
    the banner's count and the first request see the whole home."""
    deadline = time.monotonic() + limit_s
    seen, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        count = len(hub.registry)
        if count != seen:
            seen, since = count, time.monotonic()
        elif count and time.monotonic() - since >= quiet_s:
            return
        time.sleep(0.05)


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def run_demo(
    home: Path, workdir: Path, use_llm: bool = True, ports: tuple[int, int] = (8124, 10600)
) -> int:
    """Bring up broker + simulator + hub, talk to it, and shut everything down on Ctrl-C."""
    # A closed terminal (SIGHUP) or `kill` (SIGTERM) stops the demo like Ctrl-C, so the
    # broker it started never outlives it.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _interrupt)
    if find_mosquitto() is None:
        raise MosquittoNotInstalled()
    if not logging.getLogger().isEnabledFor(logging.DEBUG):
        # The prompt is for the conversation; -v shows the hub's own log lines.
        logging.getLogger("hubagent").setLevel(logging.WARNING)
    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    print("starting mosquitto (TLS, generated certificates and ACLs) ...")
    local = start_local_broker(workdir, device_accounts_from_homes([home]))
    # For scripts and the README's mosquitto_rr example: the broker's port changes each run.
    (workdir / "broker-port").write_text(f"{local.broker.password_port}\n", encoding="utf-8")
    simulator = Simulator(home, local.mqtt_config)
    hub: Hub | None = None
    interfaces: Interfaces | None = None
    try:
        simulator.start()
        print(f"simulated devices online: {len(simulator.devices)}")
        cfg = demo_config(home, workdir, use_llm, ports)
        cfg = replace(cfg, mqtt=local.mqtt_config(client_id="hubagent"))
        print("starting the hub (loading the model takes a few seconds) ...")
        hub = Hub(cfg)
        hub.start(wait=10)
        _settle(hub)
        interfaces = Interfaces(hub)
        addresses = interfaces.start()
        print(_banner(hub, local.broker.password_port, workdir, addresses))
        if sys.stdin.isatty():
            _repl(interfaces.conversations)
        else:
            wait_for_signal()
    except KeyboardInterrupt:
        pass
    finally:
        with contextlib.suppress(OSError):  # the terminal may be gone already
            print("\nstopping ...")
        if interfaces is not None:
            with contextlib.suppress(Exception):
                interfaces.stop()
        if hub is not None:
            hub.stop()
        simulator.stop()
        local.close()
    return 0
