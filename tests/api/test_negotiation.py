from __future__ import annotations

import pytest

from api.negotiation import preferred

JSON, NDJSON = "application/json", "application/x-ndjson"
OFFERS = (JSON, NDJSON)


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        pytest.param(None, JSON, id="no-header"),
        pytest.param("", JSON, id="empty"),
        pytest.param("*/*", JSON, id="anything"),
        pytest.param("application/*", JSON, id="any-application-type"),
        pytest.param(NDJSON, NDJSON, id="ndjson"),
        pytest.param("Application/X-NDJSON", NDJSON, id="case-insensitive"),
        pytest.param("application/x-ndjson; charset=utf-8", NDJSON, id="with-parameters"),
        pytest.param(f"{NDJSON}, {JSON}", JSON, id="equal-weights-go-to-the-default"),
        pytest.param(f"{NDJSON};q=0.9, {JSON}", JSON, id="json-weighted-higher"),
        pytest.param(f"{JSON};q=0.5, {NDJSON}", NDJSON, id="ndjson-weighted-higher"),
        pytest.param(f"{JSON}, {NDJSON};q=0", JSON, id="q0-refuses"),
        pytest.param(f"{JSON};q=0, */*", NDJSON, id="specific-q0-beats-wildcard"),
        pytest.param(f"{NDJSON}, */*;q=0.1", NDJSON, id="wildcard-fallback"),
        pytest.param("application/x-ndjson-seq", JSON, id="only-an-exact-type-matches"),
        pytest.param(f"{NDJSON};q=abc", JSON, id="malformed-weight-accepts-nothing"),
        pytest.param("text/html", JSON, id="nothing-acceptable-falls-back"),
        pytest.param("garbage, ;;, /", JSON, id="garbage"),
    ],
)
def test_preferred(accept: str | None, expected: str) -> None:
    assert preferred(accept, OFFERS) == expected
