"""``printable``: a value a client chose, made safe to log (one line, no terminal escapes)."""

from __future__ import annotations

import unicodedata

import pytest

from middleware.logsafe import printable


@pytest.mark.parametrize(
    ("value", "logged"),
    [
        pytest.param("/tasks/abc\n2026 INFO FORGED", "/tasks/abc\\x0a2026 INFO FORGED", id="LF"),
        pytest.param("a\rb", "a\\x0db", id="CR"),
        pytest.param("\x1b[31mred", "\\x1b[31mred", id="ESC"),
        pytest.param("\x00\t\x1f", "\\x00\\x09\\x1f", id="other-C0"),
        pytest.param("a\x7fb", "a\\x7fb", id="DEL"),
        pytest.param("\x9b31m", "\\x9b31m", id="C1-CSI"),
        pytest.param("\x85\x9f", "\\x85\\x9f", id="C1-NEL-and-last"),
        pytest.param("a\\x0ab", "a\\\\x0ab", id="backslash-so-an-escape-cannot-be-forged"),
        pytest.param("/tâches/é?q=ünï 😀", "/tâches/é?q=ünï 😀", id="plain-unicode-kept"),
        pytest.param(" !~\xa0ÿ", " !~\xa0ÿ", id="printable-edges-kept"),
        pytest.param("", "", id="empty"),
    ],
)
def test_control_characters_and_backslashes_are_escaped_the_rest_kept(
    value: str, logged: str
) -> None:
    assert printable(value) == logged


def test_every_control_character_is_escaped_and_nothing_else() -> None:
    every = "".join(map(chr, range(0x100)))
    escaped = printable(every)
    assert not [char for char in escaped if unicodedata.category(char) == "Cc"]
    controls = [*range(0x20), *range(0x7F, 0xA0)]
    assert all(f"\\x{code:02x}" in escaped for code in controls)
    kept = [chr(code) for code in range(0x100) if code not in controls and chr(code) != "\\"]
    assert all(char in escaped for char in kept)
