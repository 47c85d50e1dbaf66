"""API keys: read from a file (one per line) or an environment variable, kept in memory only as
sha256 digests, and checked in constant time (`hmac.compare_digest` against every digest, so
neither a match's position nor a prefix leaks through timing). A key is named in logs by its
id: the first 12 hex digits of its digest, never the key."""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from pathlib import Path

from distillab.errors import ConfigError

ANONYMOUS = "anonymous"  # the key id of requests to a server without keys (loopback only)


def digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()


def key_id(key: str) -> str:
    return digest(key).hex()[:12]


class KeyRing:
    """The accepted keys' digests; `check(token)` gives the key's id or None."""

    def __init__(self, keys: list[str]) -> None:
        self.digests = [digest(k) for k in keys]

    def __len__(self) -> int:
        return len(self.digests)

    def check(self, token: str) -> str | None:
        got = digest(token)
        found = False
        for d in self.digests:  # no early exit: the time does not depend on which key matched
            found |= hmac.compare_digest(got, d)
        return got.hex()[:12] if found else None


def parse(text: str) -> list[str]:
    """Keys from a file's text: one per line; blank lines and `#` comments skipped."""
    return [s for line in text.splitlines() if (s := line.strip()) and not s.startswith("#")]


def load_keys(path: str | None, env: str | None) -> KeyRing:
    """The keys of `path` (a file) and of the environment variable named `env` (newlines,
    commas or whitespace between keys); a missing or unreadable file is a ConfigError."""
    keys: list[str] = []
    if path is not None:
        try:
            keys += parse(Path(path).read_text())
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"keys={path}: cannot be read ({type(e).__name__})") from None
        if not keys:
            raise ConfigError(f"keys={path}: holds no key (one per line)")
    if env and os.environ.get(env):
        keys += [k for k in re.split(r"[\s,]+", os.environ[env]) if k]
    return KeyRing(keys)


def bearer(header: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header."""
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None
