"""Content negotiation: which of the offered media types a request's ``Accept`` prefers."""

from __future__ import annotations

from collections.abc import Sequence


def preferred(accept: str | None, offers: Sequence[str]) -> str:
    """The offer the ``Accept`` header rates highest (RFC 9110 §12.5.1).

    Each offer takes the quality of the most specific range that covers it (``type/subtype``
    over ``type/*`` over ``*/*``); ties go to the earlier offer. With no header, or none of
    the offers acceptable, the first offer is the answer: the RFC lets a server disregard
    ``Accept`` rather than refuse, and a list is more use to a client than a 406.
    """
    if not accept:
        return offers[0]
    ranges = _parse(accept)
    best, best_q = offers[0], 0.0
    for offer in offers:
        q = _quality(offer, ranges)
        if q > best_q:
            best, best_q = offer, q
    return best


def _parse(accept: str) -> dict[str, float]:
    ranges: dict[str, float] = {}
    for item in accept.split(","):
        media_range, *params = (part.strip() for part in item.split(";"))
        if "/" not in media_range:
            continue
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = min(max(float(value), 0.0), 1.0)
                except ValueError:
                    q = 0.0  # a range with a malformed weight accepts nothing
        ranges[media_range.lower()] = q
    return ranges


def _quality(offer: str, ranges: dict[str, float]) -> float:
    kind = offer.partition("/")[0]
    for media_range in (offer, f"{kind}/*", "*/*"):
        if media_range in ranges:
            return ranges[media_range]
    return 0.0
