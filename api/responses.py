"""Answers whose body is JSON already encoded: a task's, or an event's that a long-poll hands on.

Starlette's ``Response`` is general: it renders its content, encodes a header dict and scans
it for the two headers it adds. A task's JSON is bytes already, and its headers are always the
same two plus, for a new task, its ``Location``; built directly, they cost a request two
list items. A thousand long-polls woken at once each build one of these.
"""

from __future__ import annotations

from starlette.responses import Response

CONTENT_TYPE = (b"content-type", b"application/json")


class EncodedJSON(Response):
    """``body``, JSON already, answered with ``status_code`` and the headers it needs.

    Args:
        location: the path of what was created, for a ``Location`` header.
        headers: more headers, encoded (lower-case names).
    """

    media_type = "application/json"

    def __init__(
        self,
        body: bytes,
        status_code: int = 200,
        *,
        location: str | None = None,
        headers: tuple[tuple[bytes, bytes], ...] = (),
    ) -> None:
        self.status_code = status_code
        self.background = None
        self.body = body
        self.raw_headers = [(b"content-length", b"%d" % len(body)), CONTENT_TYPE, *headers]
        if location is not None:
            self.raw_headers.append((b"location", location.encode("latin-1")))
