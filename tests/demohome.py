"""The demo home on a real broker, shared by the end-to-end tests.

Loaded as a pytest plugin by conftest.py: `env` and `sim` are module-scoped fixtures (each
module that asks for them gets its own TLS mosquitto with one account per demo device, and
the simulated devices); modules import `DEMO_HOME` and `wait_for`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import BrokerEnv, make_broker_env

from hubagent.security.acl import device_accounts_from_homes
from hubagent.sim.simulator import Simulator

DEMO_HOME = Path(__file__).resolve().parents[1] / "devices" / "demo-home.yaml"


def wait_for(check: Callable[[], object], timeout: float = 10.0) -> object:
    """Poll `check` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {check}")


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerEnv]:
    """A broker of this module's own with the demo home's device accounts."""
    broker = make_broker_env(
        tmp_path_factory.mktemp("demo"), device_accounts_from_homes([DEMO_HOME])
    )
    yield broker
    broker.close()


@pytest.fixture(scope="module")
def sim(env: BrokerEnv) -> Iterator[Simulator]:
    """The simulated demo devices, online on `env`."""
    simulator = Simulator(DEMO_HOME, env.mqtt_config, tick_interval=None)
    simulator.start()
    yield simulator
    simulator.stop()
