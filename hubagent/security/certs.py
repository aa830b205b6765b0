"""A small certificate authority for the broker: CA, server certificate, client certificates.

`hubagent certs init DIR [--hostname NAME] [--ip ADDRESS]` calls `init_certs`. Re-running it
is safe: an existing CA and server certificate are reused; the server certificate is
reissued by the same CA (keeping its names) only when a requested name or address is
missing from it, and only missing client certificates are added.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

log = logging.getLogger(__name__)

CA_DAYS = 3650
LEAF_DAYS = 825
DEFAULT_SANS = ("localhost", "127.0.0.1", "::1")
# A client CN becomes the MQTT username (use_identity_as_username), so it must be usable in
# mosquitto ACL patterns: no wildcards, no separators, no spaces.
_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


@dataclass(frozen=True)
class CertPaths:
    directory: Path
    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path
    clients: dict[str, tuple[Path, Path]] = field(default_factory=dict)
    server_names: tuple[str, ...] = ()  # the server certificate's SANs
    server_status: str = ""  # "created", "reissued" or "kept" by this `init_certs`


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    """Write a private key readable by its owner only (created 0600, never world-readable)."""
    data = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(path, 0o600)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _load_key(path: Path) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{path}: expected an EC private key")
    return key


def _load_cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _paths(directory: Path) -> CertPaths:
    return CertPaths(
        directory=directory,
        ca_cert=directory / "ca.crt",
        ca_key=directory / "ca.key",
        server_cert=directory / "server.crt",
        server_key=directory / "server.key",
    )


def _client_paths(directory: Path, name: str) -> tuple[Path, Path]:
    return directory / "clients" / f"{name}.crt", directory / "clients" / f"{name}.key"


def _check_name(name: str) -> str:
    if not _NAME_RE.match(name):
        raise ValueError(
            f"invalid client name {name!r}: use letters, digits, '_', '-' or '.' (max 64)"
        )
    return name


def _ensure_ca(paths: CertPaths) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    if paths.ca_cert.exists() and paths.ca_key.exists():
        return _load_cert(paths.ca_cert), _load_key(paths.ca_key)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hubagent local CA")])
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now() - dt.timedelta(minutes=5))
        .not_valid_after(_now() + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_key(paths.ca_key, key)
    _write_cert(paths.ca_cert, cert)
    log.info("created CA %s", paths.ca_cert)
    return cert, key


def _issue(
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    common_name: str,
    usage: x509.ObjectIdentifier,
    sans: list[x509.GeneralName],
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now() - dt.timedelta(minutes=5))
        .not_valid_after(_now() + dt.timedelta(days=LEAF_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=True,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(ca_key, hashes.SHA256()), key


def _san(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def _names(cert_path: Path) -> list[x509.GeneralName]:
    try:
        cert = _load_cert(cert_path)
        return list(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    except (ValueError, x509.ExtensionNotFound):
        return []


def _show(name: x509.GeneralName) -> str:
    return str(name.value)


def _ensure_server(
    paths: CertPaths,
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    hostnames: list[str],
) -> tuple[str, tuple[str, ...]]:
    """("created" | "reissued" | "kept", SANs). An existing certificate is reissued (same CA,
    so clients keep trusting it) with its old names plus the new ones."""
    wanted = [_san(h) for h in dict.fromkeys([*DEFAULT_SANS, *hostnames])]
    status = "created"
    if paths.server_cert.exists() and paths.server_key.exists():
        have = _names(paths.server_cert)
        if have and all(name in have for name in wanted):
            return "kept", tuple(_show(n) for n in have)
        wanted = list(dict.fromkeys([*have, *wanted]))
        status = "reissued"
    common_name = hostnames[0] if hostnames else DEFAULT_SANS[0]
    cert, key = _issue(ca_cert, ca_key, common_name, ExtendedKeyUsageOID.SERVER_AUTH, wanted)
    _write_key(paths.server_key, key)
    _write_cert(paths.server_cert, cert)
    names = tuple(_show(n) for n in wanted)
    log.info("%s server certificate %s for %s", status, paths.server_cert, ", ".join(names))
    return status, names


def _ensure_client(
    directory: Path, ca_cert: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, name: str
) -> tuple[Path, Path]:
    cert_path, key_path = _client_paths(directory, _check_name(name))
    if cert_path.exists() and key_path.exists():
        return cert_path, key_path
    cert, key = _issue(ca_cert, ca_key, name, ExtendedKeyUsageOID.CLIENT_AUTH, [])
    _write_key(key_path, key)
    _write_cert(cert_path, cert)
    log.info("created client certificate %s", cert_path)
    return cert_path, key_path


def _existing_clients(directory: Path) -> dict[str, tuple[Path, Path]]:
    found: dict[str, tuple[Path, Path]] = {}
    for cert_path in sorted((directory / "clients").glob("*.crt")):
        key_path = cert_path.with_suffix(".key")
        if key_path.exists():
            found[cert_path.stem] = (cert_path, key_path)
    return found


def check_ip(text: str) -> str:
    """`text` as a normalised IP address; ValueError with a one-line message otherwise."""
    try:
        return str(ipaddress.ip_address(text.strip("[]")))
    except ValueError:
        raise ValueError(f"--ip {text!r} is not an IP address (names go to --hostname)") from None


def init_certs(
    directory: Path,
    hostnames: list[str] | None = None,
    clients: list[str] | None = None,
    ips: list[str] | None = None,
) -> CertPaths:
    """Create (or complete) the CA, the broker's server certificate (SANs: localhost,
    127.0.0.1, ::1, `hostnames` and `ips`) and client certificates."""
    directory = Path(directory)
    names = [*(hostnames or []), *(check_ip(ip) for ip in ips or [])]
    for name in hostnames or []:
        if not name or any(c in name for c in " /*,"):
            raise ValueError(f"--hostname {name!r} is not a host name")
    directory.mkdir(parents=True, exist_ok=True)
    paths = _paths(directory)
    ca_cert, ca_key = _ensure_ca(paths)
    status, server_names = _ensure_server(paths, ca_cert, ca_key, names)
    for name in clients or []:
        _ensure_client(directory, ca_cert, ca_key, name)
    return CertPaths(
        directory=paths.directory,
        ca_cert=paths.ca_cert,
        ca_key=paths.ca_key,
        server_cert=paths.server_cert,
        server_key=paths.server_key,
        clients=_existing_clients(directory),
        server_names=server_names,
        server_status=status,
    )


def issue_client_cert(paths_or_dir: CertPaths | Path | str, name: str) -> tuple[Path, Path]:
    """A (cert, key) pair for `name` signed by the CA in that folder; reused when present."""
    directory = (
        paths_or_dir.directory if isinstance(paths_or_dir, CertPaths) else Path(paths_or_dir)
    )
    paths = _paths(directory)
    ca_cert, ca_key = _ensure_ca(paths)
    return _ensure_client(directory, ca_cert, ca_key, name)
