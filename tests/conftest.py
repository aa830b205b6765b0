"""Shared fixtures: a real mosquitto broker with TLS, passwords, client certificates and ACLs.

`broker_env` (session) serves most tests. Tests that need their own device accounts call
`make_broker_env(tmp_path, ["acct1", ...])` and stop it with `env.close()`; `fresh_broker`
gives a function-scoped broker for tests that kill or restart it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from hubagent.config import Config, MqttConfig
from hubagent.mqtt.broker import INSTALL_HINT, MosquittoBroker, find_mosquitto
from hubagent.security.acl import Accounts, load_accounts, write_account_files
from hubagent.security.certs import CertPaths, init_certs

DEFAULT_DEVICE_ACCOUNTS = ("dev_a", "dev_b")


def require_mosquitto() -> str:
    """The mosquitto binary; skip the test locally, fail it on CI, when it is missing."""
    binary = find_mosquitto()
    if binary is None:
        message = f"mosquitto is not installed ({INSTALL_HINT})"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return binary


@dataclass
class BrokerEnv:
    """A running broker plus what a client needs to reach it."""

    certs: CertPaths
    accounts: Accounts
    broker: MosquittoBroker
    config: Config
    workdir: Path

    def mqtt_config(
        self, account: str | None = None, *, cert_auth: bool = False, **overrides: object
    ) -> MqttConfig:
        """MqttConfig for `account` (None: the hub) with TLS and a unique client id.

        `cert_auth=True` targets the certificate listener with the account's client
        certificate instead of a password.
        """
        username = account or self.accounts.hub_username
        base = MqttConfig(
            host=self.broker.host,
            port=self.broker.password_port,
            tls=True,
            ca_file=str(self.certs.ca_cert),
            username=username,
            password=self.accounts.password(username),
            client_id=f"{username}-{uuid.uuid4().hex[:8]}",
            reconnect_min_s=0.2,
            reconnect_max_s=1.0,
        )
        if cert_auth:
            cert_file, key_file = self.certs.clients[username]
            base = replace(
                base,
                port=self.broker.cert_port,
                username=None,
                password=None,
                cert_file=str(cert_file),
                key_file=str(key_file),
            )
        return replace(base, **overrides)

    def close(self) -> None:
        self.broker.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


def make_broker_env(
    tmp_path: Path, device_accounts: list[str] | tuple[str, ...] = DEFAULT_DEVICE_ACCOUNTS
) -> BrokerEnv:
    """Certificates, accounts and a started broker for these device accounts."""
    require_mosquitto()
    accounts = list(device_accounts)
    config = Config()
    certs = init_certs(Path(tmp_path) / "certs", clients=[config.acl.hub_account, *accounts])
    passwd, acl, accounts_file = write_account_files(config, Path(tmp_path) / "acl", accounts)
    # pytest's tmp folders are private to root; the broker (which drops to the `mosquitto`
    # user) gets its own folder under the world-traversable system temp dir.
    workdir = Path(tempfile.mkdtemp(prefix="hubagent-broker-"))
    broker = MosquittoBroker(workdir, certs, passwd, acl)
    broker.start()
    return BrokerEnv(certs, load_accounts(accounts_file), broker, config, workdir)


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
