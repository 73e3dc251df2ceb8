"""The server key and what it protects: token values are stored encrypted and found by a keyed hash.

The key lives in `<data dir>/server.key` with mode 0600 (DESIGN §8). Losing it makes stored token
values unreadable, so it is created once and never rotated silently.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet

KEY_FILE = "server.key"


class ServerKey:
    def __init__(self, key: bytes):
        self._key = key
        self._hash_key = hmac.new(key, b"tody/token-lookup", hashlib.sha256).digest()
        fernet_key = hmac.new(key, b"tody/token-encryption", hashlib.sha256).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(fernet_key))

    @classmethod
    def load_or_create(cls, data_dir: Path) -> ServerKey:
        path = data_dir / KEY_FILE
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(base64.b64encode(secrets.token_bytes(32)) + b"\n")
        if path.stat().st_mode & 0o077:
            os.chmod(path, 0o600)
        return cls(base64.b64decode(path.read_bytes().strip()))

    def lookup_hash(self, value: str) -> str:
        """Keyed hash used as the catalog's lookup key: equal values give equal hashes, nothing else leaks."""
        return hmac.new(self._hash_key, value.encode(), hashlib.sha256).hexdigest()

    def encrypt(self, value: str) -> str:
        return self._fernet.encrypt(value.encode()).decode()

    def decrypt(self, token: str) -> str:
        return self._fernet.decrypt(token.encode()).decode()
