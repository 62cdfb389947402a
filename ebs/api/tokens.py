"""Static API tokens, read from a secrets file (`ebs api --api-tokens-file`).

One token per line; blank lines and lines starting with `#` are ignored:

    sha256:<64 hex digits> [name]   the SHA-256 of a token (preferred)
    <token> [name]                  a plain token, hashed when the file is read

`name` (optional, no spaces) is who the token acts as in logs and in the
`requested_by` of what it queues; it defaults to `token-<first 8 hex digits>`.
`ebs api-token` prints a fresh random token together with its line.

Tokens are random secrets of at least 128 bits, so one round of SHA-256 is
enough; presented tokens are hashed and compared to every entry in constant
time. The file is re-read when its modification time changes, so tokens can be
added or revoked without a restart.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

PREFIX = "sha256:"
MIN_PLAIN_LENGTH = 16
_HEX = re.compile(r"^[0-9a-f]{64}$")
_NAME = re.compile(r"^[A-Za-z0-9._@+-]{1,64}$")


class TokenFileError(ValueError):
    """The tokens file is unreadable or has a malformed line."""


@dataclass(frozen=True)
class TokenEntry:
    digest: bytes
    name: str


def hash_token(token: str) -> str:
    """The `sha256:` line form of a token."""
    return PREFIX + hashlib.sha256(token.encode()).hexdigest()


def new_token() -> tuple[str, str]:
    """A fresh random token and its hashed line form."""
    token = secrets.token_urlsafe(32)
    return token, hash_token(token)


def parse_tokens(text: str, source: str = "<tokens>") -> list[TokenEntry]:
    entries = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) > 2:
            raise TokenFileError(f"{source}:{lineno}: expected `TOKEN-OR-HASH [NAME]`")
        value = parts[0]
        if value.startswith(PREFIX):
            hexdigest = value[len(PREFIX) :].lower()
            if not _HEX.match(hexdigest):
                raise TokenFileError(f"{source}:{lineno}: sha256: needs 64 hex digits")
            digest = bytes.fromhex(hexdigest)
        else:
            if len(value) < MIN_PLAIN_LENGTH:
                raise TokenFileError(
                    f"{source}:{lineno}: token shorter than {MIN_PLAIN_LENGTH} characters"
                )
            digest = hashlib.sha256(value.encode()).digest()
        name = parts[1] if len(parts) == 2 else f"token-{digest.hex()[:8]}"
        if not _NAME.match(name):
            raise TokenFileError(f"{source}:{lineno}: bad token name {name!r}")
        entries.append(TokenEntry(digest, name))
    return entries


class ApiTokens:
    """The tokens of one secrets file, kept fresh."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._mtime: float | None = None
        self._entries: list[TokenEntry] = []
        self._load(strict=True)

    def _load(self, *, strict: bool) -> None:
        try:
            mtime = self.path.stat().st_mtime
            if mtime == self._mtime:
                return
            entries = parse_tokens(self.path.read_text(), str(self.path))
        except (OSError, TokenFileError) as err:
            if strict:
                raise TokenFileError(f"cannot read API tokens file: {err}") from err
            log.error("keeping the previous API tokens: %s", err)
            return
        self._mtime = mtime
        self._entries = entries
        log.info("loaded %d API token(s) from %s", len(entries), self.path)

    def __len__(self) -> int:
        return len(self._entries)

    def match(self, token: str) -> str | None:
        """The name of the entry `token` matches, or None."""
        self._load(strict=False)
        digest = hashlib.sha256(token.encode()).digest()
        found = None
        for entry in self._entries:  # no early exit: same work whatever matches
            if hmac.compare_digest(entry.digest, digest):
                found = entry.name
        return found
