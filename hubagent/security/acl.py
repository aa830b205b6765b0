"""Mosquitto password file, ACL file and the accounts that go with them.

Topic layout (the contract the simulator, discovery and executor rely on):
a device account `A` owns `<device_root>/A/...`. It may write `<root>/A/state`,
`<root>/A/availability`, `<root>/A/attributes` and `<discovery_prefix>/+/A/+/config`
(its discovery node_id is the account), and read `<root>/A/set`, `<root>/A/+/set` and
`<discovery_prefix>/status`. The hub account reads discovery and every device's
state/availability/attributes and writes every device's `set` topics; under `hubagent/` it
reads the request topic and writes status, responses and notifications, but may never
publish a request. Requester accounts (`acl.requesters`) publish `hubagent/request` and
read `hubagent/response/<account>/#`. Nobody else gets anything (the broker denies what no
line allows).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from hubagent.config import Config, ConfigError
from hubagent.security.profiles import AccountRules, account_rules

log = logging.getLogger(__name__)

REQUEST_TOPIC = "hubagent/request"  # the MQTT request interface's topic (interfaces.mqtt_request)
SALT_LEN = 12  # what mosquitto_passwd 2.x uses
_ACCOUNT_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass(frozen=True)
class Accounts:
    hub_username: str
    hub_password: str = field(repr=False)  # secrets stay out of logs and tracebacks
    devices: dict[str, str] = field(default_factory=dict, repr=False)
    requesters: dict[str, str] = field(default_factory=dict, repr=False)
    workers: dict[str, str] = field(default_factory=dict, repr=False)  # more hub processes

    def password(self, username: str) -> str:
        """The password of any account written by `write_account_files`; KeyError if unknown."""
        if username == self.hub_username:
            return self.hub_password
        for group in (self.workers, self.requesters):
            if username in group:
                return group[username]
        return self.devices[username]


def hash_password(password: str, salt: bytes | None = None, iterations: int = 101) -> str:
    """The `$7$` (PBKDF2-SHA512) hash mosquitto 2.x accepts in a password file."""
    salt = os.urandom(SALT_LEN) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations)
    b64 = base64.b64encode
    return f"$7${iterations}${b64(salt).decode()}${b64(digest).decode()}"


def account_for_entity(entity_id: str) -> str:
    """The device account of an entity id: its object part (`light.kitchen` -> `kitchen`)."""
    return entity_id.split(".", 1)[1] if "." in entity_id else entity_id


def device_accounts_from_homes(paths: list[str] | list[Path]) -> list[str]:
    """One account per device entry of the home files, in file order, without duplicates."""
    from hubagent.home.homefile import load_home

    accounts: dict[str, None] = {}
    for path in paths:
        home = load_home(path)
        for raw in home.raw_devices:
            account = account_for_entity(str(raw.get("id", "")))
            if not _ACCOUNT_RE.match(account):
                log.warning("%s: device %r cannot be an MQTT account, skipped", path, account)
                continue
            accounts[account] = None
    return list(accounts)


def _hub_lines(cfg: Config, hub: str, rules: list[AccountRules]) -> list[str]:
    """The rights of the hub account (and of each further hub worker)."""
    root = cfg.acl.device_root
    disc = cfg.mqtt.discovery_prefix
    return [
        f"user {hub}",
        f"topic read {disc}/#",
        f"topic read {root}/+/state",
        f"topic read {root}/+/availability",
        f"topic read {root}/+/attributes",
        *(f"topic read {t}" for t in cfg.acl.hub_read),
        f"topic write {root}/+/set",
        f"topic write {root}/+/+/set",
        *(f"topic write {t}" for t in cfg.acl.hub_write),
        # Never `write hubagent/request`: what the hub publishes must not come back to it
        # as a request (a device config naming the request topic as a command topic).
        f"topic read {REQUEST_TOPIC}",
        "topic readwrite hubagent/status",
        "topic readwrite hubagent/response/#",
        "topic readwrite hubagent/notify/#",
        # The hub may ask devices to re-announce (what Home Assistant's birth message does).
        f"topic write {disc}/status",
        # Firmware accounts: read their state trees, write their command topics.
        *(line for rule in rules for line in rule.hub_lines),
        "",
    ]


def build_acl(
    cfg: Config,
    device_accounts: list[str],
    requesters: list[str] | None = None,
    rules: list[AccountRules] | None = None,
    only: set[str] | None = None,
) -> str:
    """The mosquitto ACL file text for the hub (and its workers), device, firmware
    (`rules`, from `profiles.account_rules`) and requester accounts. `only`: the ACL of the
    plain listener, with just these device accounts' rights (no hub, no requesters)."""
    requesters = list(cfg.acl.requesters) if requesters is None else requesters
    rules = list(rules or [])
    if only is not None:
        device_accounts = [a for a in device_accounts if a in only]
        rules = [r for r in rules if r.account.name in only]
        requesters = []
    root = cfg.acl.device_root
    disc = cfg.mqtt.discovery_prefix
    firmware = [f"{r.account.name} ({r.account.profile})" for r in rules]
    lines = [
        "# Written by `hubagent acl`. Device accounts: " + (", ".join(device_accounts) or "none"),
        "# Firmware accounts: " + (", ".join(firmware) or "none"),
        "# Requester accounts: " + (", ".join(requesters) or "none"),
        "",
    ]
    if only is None:
        for hub in (cfg.acl.hub_account, *cfg.acl.hub_workers):
            lines += _hub_lines(cfg, hub, rules)
    lines += [
        # Patterns apply to every authenticated user; only accounts in the password file or
        # holders of a certificate from our CA can log in, and each gets only its own subtree.
        "# every device account: its own subtree only",
        f"pattern write {root}/%u/state",
        f"pattern write {root}/%u/availability",
        f"pattern write {root}/%u/attributes",
        f"pattern write {disc}/+/%u/+/config",
        f"pattern read {root}/%u/set",
        f"pattern read {root}/%u/+/set",
        "",
    ]
    # Per-user lines because a pattern without %u is applied but warned about by mosquitto.
    for account in device_accounts:
        lines += [f"user {account}", f"topic read {disc}/status", ""]
    for rule in rules:
        lines += [f"# {rule.account.profile}", f"user {rule.account.name}", *rule.device_lines, ""]
    for account in requesters:
        lines += [
            f"user {account}",
            f"topic write {REQUEST_TOPIC}",
            f"topic read hubagent/response/{account}/#",
            "topic read hubagent/status",
            "",
        ]
    return "\n".join(lines)


def load_accounts(path: str | Path) -> Accounts:
    """Read `accounts.yaml` as written by `write_acl_files`."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"{path}: cannot read accounts: {exc}") from None
    hub = data.get("hub") if isinstance(data, dict) else None
    if not isinstance(hub, dict) or "username" not in hub or "password" not in hub:
        raise ValueError(f"{path}: 'hub' needs 'username' and 'password'")
    groups: dict[str, dict[str, str]] = {}
    for name in ("devices", "requesters", "hub_workers"):
        group = data.get(name) or {}
        if not isinstance(group, dict):
            raise ValueError(f"{path}: '{name}' must be a mapping")
        groups[name] = {str(k): str(v) for k, v in group.items()}
    return Accounts(
        str(hub["username"]),
        str(hub["password"]),
        groups["devices"],
        groups["requesters"],
        groups["hub_workers"],
    )


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.chmod(path, 0o600)


def _passwords(
    kind: str, names: Iterable[str], taken: set[str], known: dict[str, str]
) -> dict[str, str]:
    """A password per usable, not yet taken account name (the known one when there is)."""
    out: dict[str, str] = {}
    for account in names:
        if account in taken or not _ACCOUNT_RE.match(account):
            log.warning("%s account %r is not usable (reserved or invalid), skipped", kind, account)
            continue
        taken.add(account)
        out[account] = known.get(account) or secrets.token_urlsafe(24)
    return out


PLAIN_WARNING = (
    "PLAIN LISTENER ON port %d: accounts %s log in WITHOUT TLS; their passwords and "
    "messages cross the network in clear text. Use it only for devices that cannot do TLS, "
    "on a network you control"
)


def plain_listener_accounts(cfg: Config, known: list[str]) -> list[str]:
    """The accounts of `broker.plain_listener` (none when it is off); ConfigError for an
    account that is not a device account (the hub and requesters never log in there)."""
    plain = cfg.broker.plain_listener
    if not plain.port:
        return []
    if not 0 < plain.port < 65536:
        raise ConfigError(f"broker.plain_listener.port {plain.port} is not a TCP port")
    for account in plain.accounts:
        if account not in known:
            raise ConfigError(
                f"broker.plain_listener.accounts: {account!r} is not a device account "
                "(devices of the home files or acl.accounts; never the hub or a requester)"
            )
    if not plain.accounts:
        raise ConfigError("broker.plain_listener.accounts is empty: list the devices without TLS")
    log.warning(PLAIN_WARNING, plain.port, ", ".join(plain.accounts))
    return list(plain.accounts)


def write_account_files(cfg: Config, out: Path, device_accounts: list[str]) -> list[Path]:
    """Write `passwd`, `acl` and `accounts.yaml` for these device accounts and the firmware
    accounts of `acl.accounts` into `out` (plus `passwd-plain` and `acl-plain` when the
    plain listener is on)."""
    out = Path(out)
    hub = cfg.acl.hub_account
    others = [*device_accounts, hub, *cfg.acl.hub_workers, *cfg.acl.requesters]
    rules = account_rules(cfg, others)
    out.mkdir(parents=True, exist_ok=True)
    accounts_file = out / "accounts.yaml"
    old: Accounts | None = None
    if accounts_file.exists():
        try:
            old = load_accounts(accounts_file)
        except ValueError as exc:
            log.warning("%s; new passwords will be generated", exc)
    hub_password = cfg.mqtt.password or (
        old.hub_password if old and old.hub_username == hub else secrets.token_urlsafe(24)
    )
    taken = {hub}
    workers = _passwords("hub worker", cfg.acl.hub_workers, taken, old.workers if old else {})
    requesters = _passwords("requester", cfg.acl.requesters, taken, old.requesters if old else {})
    firmware = [r.account.name for r in rules]
    device_accounts = [a for a in device_accounts if a not in firmware]  # the profile wins
    devices = _passwords("device", [*device_accounts, *firmware], taken, old.devices if old else {})
    plain = plain_listener_accounts(cfg, list(devices))
    everyone = [(hub, hub_password), *workers.items(), *requesters.items(), *devices.items()]
    passwd = "".join(f"{user}:{hash_password(pw)}\n" for user, pw in everyone)
    data = {
        "hub": {"username": hub, "password": hub_password},
        "hub_workers": workers,
        "requesters": requesters,
        "devices": devices,
    }
    generic = [a for a in devices if a not in firmware]
    paths = [out / "passwd", out / "acl", accounts_file]
    _write_private(paths[0], passwd)
    _write_private(paths[1], build_acl(cfg, generic, list(requesters), rules))
    _write_private(paths[2], yaml.safe_dump(data, sort_keys=False))
    if plain:
        plain_passwd = "".join(f"{u}:{hash_password(devices[u])}\n" for u in plain)
        paths += [out / "passwd-plain", out / "acl-plain"]
        _write_private(paths[3], plain_passwd)
        _write_private(paths[4], build_acl(cfg, generic, [], rules, only=set(plain)))
    else:
        # Switched off again: nobody may log in there any more, but a broker config that
        # still names the files keeps starting (an empty password file admits no one).
        for stale, text in (("passwd-plain", ""), ("acl-plain", "# plain listener off\n")):
            if (out / stale).exists():
                _write_private(out / stale, text)
    log.info(
        "wrote accounts for the hub, %d hub workers, %d requesters, %d devices and %d "
        "firmware accounts to %s",
        len(workers),
        len(requesters),
        len(generic),
        len(firmware),
        out,
    )
    return paths


def write_acl_files(cfg: Config, out: Path, homes: list[str]) -> list[Path]:
    """`hubagent acl`: accounts for every device in the home files (config homes when none)
    and for every firmware account of `acl.accounts`."""
    home_files = list(homes) or list(cfg.homes)
    return write_account_files(cfg, out, device_accounts_from_homes(home_files))
