"""Encryption at rest for the store's sensitive columns (AES-256-GCM).

The key comes from the config or `HUBAGENT_STORE_KEY`: either a raw 32-byte key written as
base64 or hex, or any other string, which is treated as a passphrase and stretched with
scrypt and a per-database salt (so two homes with the same passphrase get different keys).
A small known-plaintext token ("key check") stored in the database lets the store tell a
wrong key apart from a corrupt value and fail with one clear line instead of garbage.
"""

from __future__ import annotations

import base64
import os
import re

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

# Version byte in front of every ciphertext: lets a later format change coexist with old rows.
_VERSION = b"\x01"
_NONCE_BYTES = 12
SALT_BYTES = 16
# scrypt cost: ~50 ms and 16 MiB on a small hub, once per process start.
_SCRYPT_N = 2**14
_SCRYPT_R = 8
_SCRYPT_P = 1
_CHECK_PLAINTEXT = b"hubagent-store-key-check"
_CHECK_AAD = b"meta.key_check"
_HEX_KEY = re.compile(r"[0-9a-fA-F]{64}")
_B64_KEY = re.compile(r"[A-Za-z0-9+/_-]{43}=?")
_URLSAFE = str.maketrans("-_", "+/")


class StoreKeyError(ValueError):
    """The encryption key does not open this database (wrong, missing or malformed)."""


def new_salt() -> bytes:
    """A fresh random salt for a new database."""
    return os.urandom(SALT_BYTES)


def raw_key(secret: str) -> bytes | None:
    """The 32 bytes of `secret` when it is a raw key in hex or base64, else None."""
    text = secret.strip()
    if _HEX_KEY.fullmatch(text):
        return bytes.fromhex(text)
    if _B64_KEY.fullmatch(text):
        # Accept both the standard and the URL-safe alphabet.
        return base64.b64decode(text.translate(_URLSAFE).rstrip("=") + "=")
    return None


def derive_key(secret: str, salt: bytes) -> bytes:
    """A 32-byte key: the raw key itself, or scrypt(passphrase, salt)."""
    key = raw_key(secret)
    if key is not None:
        return key
    if not secret:
        raise StoreKeyError("store encryption key is empty")
    kdf = Scrypt(salt=salt, length=32, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P)
    return kdf.derive(secret.encode("utf-8"))


def generate_key() -> str:
    """A new random key in base64, suitable for `HUBAGENT_STORE_KEY`."""
    return base64.b64encode(os.urandom(32)).decode("ascii")


class Cipher:
    """AES-GCM over text values; `aad` binds each value to its table and column."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise StoreKeyError("store encryption key must be 32 bytes")
        self._aead = AESGCM(key)

    def encrypt(self, plaintext: str, aad: str) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext.encode("utf-8"), aad.encode("utf-8"))
        return _VERSION + nonce + sealed

    def decrypt(self, blob: bytes, aad: str) -> str:
        """The plaintext; raises StoreKeyError when the key or the value is wrong."""
        if not blob or blob[:1] != _VERSION or len(blob) < 1 + _NONCE_BYTES + 16:
            raise StoreKeyError("encrypted value has an unknown format")
        nonce, sealed = blob[1 : 1 + _NONCE_BYTES], blob[1 + _NONCE_BYTES :]
        try:
            return self._aead.decrypt(nonce, sealed, aad.encode("utf-8")).decode("utf-8")
        except InvalidTag:
            raise StoreKeyError("value does not decrypt with this key") from None

    def key_check(self) -> bytes:
        """A token stored in the database to verify the key on the next open."""
        nonce = os.urandom(_NONCE_BYTES)
        return _VERSION + nonce + self._aead.encrypt(nonce, _CHECK_PLAINTEXT, _CHECK_AAD)

    def verify(self, token: bytes) -> bool:
        """True when `token` (from `key_check`) was made with this key."""
        if not token or token[:1] != _VERSION:
            return False
        nonce, sealed = token[1 : 1 + _NONCE_BYTES], token[1 + _NONCE_BYTES :]
        try:
            return self._aead.decrypt(nonce, sealed, _CHECK_AAD) == _CHECK_PLAINTEXT
        except InvalidTag:
            return False
