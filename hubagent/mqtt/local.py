"""A ready local broker: certificates, accounts, ACLs and a running mosquitto.

Used by `hubagent demo`, the benchmarks and the tests, so all three run the same secured
setup: TLS on every listener, one account per device, ACLs generated from the home.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from dataclasses import dataclass, replace
from pathlib import Path

from hubagent.config import Config, MqttConfig
from hubagent.mqtt.broker import MosquittoBroker, PlainListener
from hubagent.security.acl import Accounts, load_accounts, write_account_files
from hubagent.security.certs import CertPaths, init_certs


@dataclass
class LocalBroker:
    """A running broker plus what a client needs to reach it."""

    certs: CertPaths
    accounts: Accounts
    broker: MosquittoBroker
    config: Config
    workdir: Path

    def mqtt_config(
        self,
        account: str | None = None,
        *,
        cert_auth: bool = False,
        plain: bool = False,
        **overrides: object,
    ) -> MqttConfig:
        """MqttConfig for `account` (None: the hub) with TLS and a unique client id.

        `cert_auth=True` targets the certificate listener with the account's client
        certificate instead of a password; `plain=True` the listener without TLS.
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
        if plain and self.broker.plain is not None:
            base = replace(base, port=self.broker.plain.port, tls=False, ca_file=None)
        return replace(base, **overrides)

    def close(self) -> None:
        self.broker.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


def start_local_broker(
    directory: Path, device_accounts: list[str] | tuple[str, ...], config: Config | None = None
) -> LocalBroker:
    """Certificates and account files in `directory`, and a started broker for them.

    Raises MosquittoNotInstalled (with the install command) when mosquitto is missing.
    """
    config = config or Config()
    accounts = list(device_accounts)
    directory = Path(directory)
    roles = config.acl
    clients = [roles.hub_account, *roles.hub_workers, *roles.requesters, *accounts]
    certs = init_certs(directory / "certs", clients=clients)
    passwd, acl, accounts_file, *plain_files = write_account_files(
        config, directory / "acl", accounts
    )
    plain = None
    if plain_files:  # broker.plain_listener: opt-in, warned about by `write_account_files`
        listener = config.broker.plain_listener
        plain = PlainListener(listener.port, listener.host, *plain_files)
    # The broker drops to the `mosquitto` user, which cannot enter private folders such as
    # pytest's tmp dirs or ~/: it gets its own folder under the world-traversable temp dir.
    workdir = Path(tempfile.mkdtemp(prefix="hubagent-broker-"))
    broker = MosquittoBroker(workdir, certs, passwd, acl, plain=plain)
    broker.start()
    return LocalBroker(certs, load_accounts(accounts_file), broker, config, workdir)
