"""API keys: who may use the service, and whose tasks each may reach.

Off unless ``TASKWIRE_API_KEYS_FILE`` names a file with one client per line::

    # name    SHA-256 of its key (hex)                                          admin?
    alice     9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
    ops       60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752 admin

The file holds digests, never keys: ``new_key`` makes a key and the line to add for it. A
key is looked up by comparing its digest with every line's in constant time, so how long a
refusal takes says nothing of how close a guess was.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
"""A client's name: it appears in tasks (``owner``) and logs, so it is kept plain."""
_DIGEST = re.compile(r"[0-9a-f]{64}")
KEY_BYTES = 24
"""Random bytes in a new key: 192 bits, 32 URL-safe characters."""


@dataclass(frozen=True, slots=True)
class Client:
    """Who a request is from: a key's name, and whether it may reach every task."""

    name: str
    admin: bool = False

    def may_reach(self, owner: str | None) -> bool:
        return self.admin or owner == self.name


@dataclass(frozen=True, slots=True)
class _Entry:
    client: Client
    digest: bytes


class KeysFileError(ValueError):
    """A keys file that cannot be read: the message names the line."""


class ApiKeys:
    """The clients of a keys file, looked up by the key a request presents."""

    def __init__(self, entries: list[tuple[Client, str]]) -> None:
        self._entries = [_Entry(client, bytes.fromhex(digest)) for client, digest in entries]

    def __len__(self) -> int:
        return len(self._entries)

    def identify(self, key: str) -> Client | None:
        """The client whose key this is, or None. Every line is compared, in constant time."""
        digest = hashlib.sha256(key.encode()).digest()
        found = None
        for entry in self._entries:
            if hmac.compare_digest(entry.digest, digest):
                found = entry.client
        return found

    @classmethod
    def parse(cls, text: str, *, source: str = "the keys file") -> ApiKeys:
        entries: list[tuple[Client, str]] = []
        names: set[str] = set()
        for number, line in enumerate(text.splitlines(), start=1):
            fields = line.split("#", 1)[0].split()
            if not fields:
                continue
            where = f"{source}, line {number}"
            if len(fields) not in (2, 3) or (len(fields) == 3 and fields[2] != "admin"):
                raise KeysFileError(
                    f"{where}: expected 'NAME SHA256-HEX' or 'NAME SHA256-HEX admin'"
                )
            name, digest = fields[0], fields[1].lower()
            if not NAME.fullmatch(name):
                raise KeysFileError(f"{where}: a name is 1-64 of A-Z a-z 0-9 _ . -")
            if not _DIGEST.fullmatch(digest):
                raise KeysFileError(f"{where}: not the SHA-256 of a key (64 hexadecimal digits)")
            if name in names:
                raise KeysFileError(f"{where}: {name} is named twice")
            names.add(name)
            entries.append((Client(name, admin=len(fields) == 3), digest))
        return cls(entries)

    @classmethod
    def load(cls, path: Path) -> ApiKeys:
        try:
            text = path.read_text()
        except OSError as exc:
            raise KeysFileError(f"cannot read {path}: {exc.strerror or exc}") from None
        return cls.parse(text, source=str(path))


def new_key(name: str, *, admin: bool = False) -> tuple[str, str]:
    """A new random key, and the keys-file line for it (which holds only its digest)."""
    if not NAME.fullmatch(name):
        raise ValueError("a name is 1-64 of A-Z a-z 0-9 _ . -")
    key = secrets.token_urlsafe(KEY_BYTES)
    digest = hashlib.sha256(key.encode()).hexdigest()
    return key, f"{name} {digest}" + (" admin" if admin else "")
