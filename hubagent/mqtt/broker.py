"""Run a local mosquitto broker from a generated config (demo and tests).

Two TLS listeners share one ACL file: one authenticates with the password file, the other
with client certificates (the certificate's CN becomes the username). An opt-in third
listener without TLS (`broker.plain_listener`) has its own password and ACL files, so only
the devices listed for it can log in there; never the hub.
"""

from __future__ import annotations

import atexit
import logging
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
import weakref
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from hubagent.security.certs import CertPaths

log = logging.getLogger(__name__)

INSTALL_HINT = "sudo apt-get install -y mosquitto mosquitto-clients"
BROKER_USER = "mosquitto"


# The broker runs in its own session (so a terminal Ctrl-C reaches the hub first and it can
# publish `offline`); stop whatever is still running when this process exits.
_RUNNING: weakref.WeakSet[MosquittoBroker] = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:
    for broker in list(_RUNNING):
        broker.stop()


class MosquittoNotInstalled(RuntimeError):
    """mosquitto is not on this machine; the message says how to install it."""

    def __init__(self) -> None:
        super().__init__(f"mosquitto is not installed; install it with: {INSTALL_HINT}")


def find_mosquitto() -> str | None:
    """Path of the mosquitto binary (PATH, then /usr/sbin and /usr/local/sbin) or None."""
    found = shutil.which("mosquitto")
    if found:
        return found
    for candidate in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"):
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free right now on `host`."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


def _reachable_by(path: Path, uid: int) -> bool:
    """Whether user `uid` can traverse every parent folder of `path` (by mode bits)."""
    for parent in path.resolve().parents:
        st = parent.stat()
        if st.st_uid == uid:
            continue
        if not st.st_mode & 0o001:
            return False
    return True


@dataclass(frozen=True)
class PlainListener:
    """A password-only listener without TLS for devices that cannot do TLS: only the
    accounts in its own password file (`hubagent acl` writes `passwd-plain`) log in."""

    port: int
    host: str
    passwd_file: Path
    acl_file: Path


class MosquittoBroker:
    """A mosquitto process with a password listener and a certificate listener, both TLS."""

    def __init__(
        self,
        workdir: Path,
        certs: CertPaths,
        passwd_file: Path,
        acl_file: Path,
        host: str = "127.0.0.1",
        password_port: int = 0,
        cert_port: int = 0,
        bind_client_ids: bool = True,
        plain: PlainListener | None = None,
    ) -> None:
        """`bind_client_ids`: the broker uses each login's username as its client id, so
        no account can connect under another's client id and take over its session.
        `plain`: the opt-in listener without TLS, with its own password and ACL files."""
        self.workdir = Path(workdir)
        self.plain = plain
        self.bind_client_ids = bind_client_ids
        self.certs = certs
        self.passwd_file = Path(passwd_file)
        self.acl_file = Path(acl_file)
        self.host = host
        # Ports are chosen once so a restarted broker is found where clients expect it.
        self._password_port = password_port or free_port(host)
        self._cert_port = cert_port or free_port(host)
        while self._cert_port == self._password_port:
            self._cert_port = free_port(host)
        self.conf_file = self.workdir / "mosquitto.conf"
        self.log_file = self.workdir / "mosquitto.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def password_port(self) -> int:
        return self._password_port

    @property
    def cert_port(self) -> int:
        return self._cert_port

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _stage_files(self) -> dict[str, Path]:
        """Copy what the broker reads into its own folder, readable by the broker user.

        Started as root, mosquitto switches to the `mosquitto` user before it reads keys,
        password and ACL files, so those must belong to that user. Copies keep the
        caller's originals (and their owner) untouched.
        """
        self.workdir.mkdir(parents=True, exist_ok=True)
        sources = {
            "ca": self.certs.ca_cert,
            "cert": self.certs.server_cert,
            "key": self.certs.server_key,
            "passwd": self.passwd_file,
            "acl": self.acl_file,
        }
        if self.plain is not None:
            sources["plain-passwd"] = self.plain.passwd_file
            sources["plain-acl"] = self.plain.acl_file
        staged: dict[str, Path] = {}
        for name, src in sources.items():
            dst = self.workdir / f"broker-{name}"
            shutil.copyfile(src, dst)
            os.chmod(dst, 0o600)
            staged[name] = dst
        return staged

    def _run_as(self) -> str | None:
        """The `user` line: None when not root; `root` when the broker user cannot reach us."""
        if os.geteuid() != 0:
            return None
        try:
            entry = pwd.getpwnam(BROKER_USER)
        except KeyError:
            log.warning("no '%s' user; the broker runs as root", BROKER_USER)
            return "root"
        if not _reachable_by(self.workdir, entry.pw_uid):
            log.warning(
                "%s is not reachable for user '%s' (a parent folder is private); "
                "the broker runs as root",
                self.workdir,
                BROKER_USER,
            )
            return "root"
        os.chown(self.workdir, entry.pw_uid, entry.pw_gid)
        for path in self.workdir.glob("broker-*"):
            os.chown(path, entry.pw_uid, entry.pw_gid)
        return BROKER_USER

    def _write_conf(self, staged: dict[str, Path], user: str | None) -> None:
        tls = [
            f"cafile {staged['ca']}",
            f"certfile {staged['cert']}",
            f"keyfile {staged['key']}",
        ]
        if self.bind_client_ids:
            # A client id is whatever the client says; with this, a device account that
            # connects as `hubagent` gets its own username as id instead of kicking the hub.
            tls.append("use_username_as_clientid true")
        lines = [
            "# Written by hubagent.mqtt.broker",
            *([f"user {user}"] if user else []),
            "per_listener_settings true",
            "persistence false",
            # stdout to a file is block-buffered and looks empty; stderr is not.
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "connection_messages true",
            "log_timestamp true",
            # Nagle costs ~88 ms per QoS 1 round trip; the default queue limit (1000)
            # silently drops messages for a slow subscriber, QoS 1 included. Not 0
            # (unlimited): on 2.0.11 that makes the broker drop an MQTT 5 client right
            # after a PUBACK 0x87 (ACL-denied publish) instead of keeping it connected.
            "set_tcp_nodelay true",
            "max_queued_messages 1000000",
            "",
            f"listener {self._password_port} {self.host}",
            "allow_anonymous false",
            f"password_file {staged['passwd']}",
            f"acl_file {staged['acl']}",
            *tls,
            "",
            f"listener {self._cert_port} {self.host}",
            "allow_anonymous false",
            "require_certificate true",
            "use_identity_as_username true",
            f"acl_file {staged['acl']}",
            *tls,
            "",
        ]
        if self.plain is not None:
            lines += [
                "# WITHOUT TLS: passwords and messages in clear; only the listed accounts.",
                f"listener {self.plain.port} {self.plain.host}",
                "allow_anonymous false",
                f"password_file {staged['plain-passwd']}",
                f"acl_file {staged['plain-acl']}",
                *(["use_username_as_clientid true"] if self.bind_client_ids else []),
                "",
            ]
        self.conf_file.write_text("\n".join(lines), encoding="utf-8")

    def start(self, timeout: float = 10.0) -> None:
        """Start mosquitto and wait until both listeners accept connections."""
        if self.running:
            return
        binary = find_mosquitto()
        if binary is None:
            raise MosquittoNotInstalled()
        staged = self._stage_files()
        self._write_conf(staged, self._run_as())
        log_offset = self.log_file.stat().st_size if self.log_file.exists() else 0
        with open(self.log_file, "ab") as logf:
            self._proc = subprocess.Popen(
                [binary, "-c", str(self.conf_file)],
                stdout=logf,
                stderr=logf,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        _RUNNING.add(self)
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self._proc.poll() is not None:
                tail = self.log_text()[log_offset:][-2000:]
                self._proc = None
                raise RuntimeError(f"mosquitto exited at start; log {self.log_file}:\n{tail}")
            # mosquitto logs "... running" once every listener is open. Probing the TLS
            # ports instead would leave a handshake error in the log per probe.
            if self._logged_running(log_offset) or (
                time.monotonic() - started > 2.0 and self._ports_open()
            ):
                log.info(
                    "mosquitto up on %s (password port %d, certificate port %d)",
                    self.host,
                    self._password_port,
                    self._cert_port,
                )
                if self.plain is not None:
                    log.warning(
                        "PLAIN LISTENER WITHOUT TLS on %s:%d: passwords and messages cross "
                        "the network in clear (only the accounts of %s may log in there)",
                        self.plain.host,
                        self.plain.port,
                        self.plain.passwd_file.name,
                    )
                return
            time.sleep(0.02)
        self.kill()
        raise RuntimeError(f"mosquitto did not open its ports within {timeout:.0f} s")

    def _logged_running(self, offset: int) -> bool:
        try:
            with open(self.log_file, "rb") as fh:
                fh.seek(offset)
                return b" running" in fh.read()
        except OSError:
            return False

    def _ports_open(self) -> bool:
        plain = self.plain is None or _port_open(
            "127.0.0.1" if self.plain.host in ("0.0.0.0", "::") else self.plain.host,
            self.plain.port,
        )
        return (
            _port_open(self.host, self._password_port)
            and _port_open(self.host, self._cert_port)
            and plain
        )

    def reload(self) -> None:
        """Re-read the password and ACL files (SIGHUP) without dropping connections."""
        if not self.running or self._proc is None:
            return
        self._stage_files()
        self._run_as()  # re-applies ownership of the fresh copies
        self._proc.send_signal(signal.SIGHUP)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop mosquitto gracefully (SIGTERM), killing it when it does not exit in time."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def kill(self) -> None:
        """SIGKILL: a crash as clients see it (no clean disconnects)."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    def restart(self, timeout: float = 10.0) -> None:
        """Stop and start again on the same ports (re-reading password and ACL files)."""
        self.stop()
        self.start(timeout)

    def log_text(self) -> str:
        """Everything mosquitto logged so far."""
        try:
            return self.log_file.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def __enter__(self) -> MosquittoBroker:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
