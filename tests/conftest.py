"""Shared fixtures: a real mosquitto broker with TLS, passwords, client certificates and ACLs.

`broker_env` (session) serves most tests. Tests that need their own device accounts call
`make_broker_env(tmp_path, ["acct1", ...])` and stop it with `env.close()`; `fresh_broker`
gives a function-scoped broker for tests that kill or restart it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from hubagent.config import AclConfig, Config
from hubagent.mqtt.broker import INSTALL_HINT, find_mosquitto
from hubagent.mqtt.local import LocalBroker, start_local_broker

# `env` and `sim`: the demo home on a broker of each test module's own (tests/demohome.py).
pytest_plugins = ["demohome"]

DEFAULT_DEVICE_ACCOUNTS = ("dev_a", "dev_b")
# The broker binds client ids to usernames: a second connection with the hub's rights (a
# watcher, another worker) needs an account of its own.
TEST_CONFIG = Config(acl=AclConfig(hub_workers=("hubagent-2", "hubagent-3")))


def require_mosquitto() -> str:
    """The mosquitto binary; skip the test locally, fail it on CI, when it is missing."""
    binary = find_mosquitto()
    if binary is None:
        message = f"mosquitto is not installed ({INSTALL_HINT})"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return binary


BrokerEnv = LocalBroker  # the fixtures hand out the package's own local broker


def make_broker_env(
    tmp_path: Path, device_accounts: list[str] | tuple[str, ...] = DEFAULT_DEVICE_ACCOUNTS
) -> BrokerEnv:
    """Certificates, accounts and a started broker for these device accounts."""
    require_mosquitto()
    return start_local_broker(Path(tmp_path), device_accounts, TEST_CONFIG)


@pytest.fixture(scope="session")
def broker_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerEnv]:
    """One broker for the session with device accounts dev_a and dev_b."""
    env = make_broker_env(tmp_path_factory.mktemp("broker"))
    yield env
    env.close()


@pytest.fixture
def fresh_broker(tmp_path: Path) -> Iterator[BrokerEnv]:
    """A broker of its own, for tests that kill or restart it."""
    env = make_broker_env(tmp_path)
    yield env
    env.close()
