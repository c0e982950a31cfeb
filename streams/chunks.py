"""Writes of bounded size: many small pieces joined, but never into one huge write.

A stream writes what it has in as few sends as it can (one per batch of events, one per
page of a list), but each send is at most about ``WRITE_BYTES``: the server waits for the
client to take a send before the next one, so a client that reads slowly, or not at all,
holds one such write in the server's memory rather than a whole replay or list.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

WRITE_BYTES = 64 * 1024
"""About the most bytes one send carries (a single larger piece goes alone)."""


def bounded(pieces: Iterable[bytes], limit: int = WRITE_BYTES) -> Iterator[bytes]:
    """``pieces`` joined into writes of at most ``limit`` bytes (or one piece, if larger)."""
    write: list[bytes] = []
    size = 0
    for piece in pieces:
        if write and size + len(piece) > limit:
            yield b"".join(write)
            write, size = [], 0
        write.append(piece)
        size += len(piece)
    if write:
        yield b"".join(write)
