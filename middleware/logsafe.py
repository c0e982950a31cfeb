"""Values a client chose, made safe to log: one line, no terminal escapes.

A request for ``/tasks/abc%0A2026-12-01T00:00:00Z INFO taskwire.access FORGED`` would
otherwise write a second, forged log line, and ``%1b%5b31m`` a colour change into whoever
reads the log in a terminal. Every control character (C0, DEL, C1) is written as ``\\xNN``;
a backslash as ``\\\\``, so that an escape cannot be forged either.
"""

from __future__ import annotations

_CONTROLS = {code: f"\\x{code:02x}" for code in (*range(0x20), *range(0x7F, 0xA0))}
_ESCAPES = {**_CONTROLS, ord("\\"): "\\\\"}


def printable(value: str) -> str:
    """``value`` with its control characters (and backslashes) escaped."""
    return value.translate(_ESCAPES)


def one_line(value: str) -> str:
    """``value`` with its control characters escaped but backslashes kept: for a whole log
    message, whose client-chosen parts ``printable`` has escaped already."""
    return value.translate(_CONTROLS)
