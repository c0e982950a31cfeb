"""The web UI: the built bundle (``ui/dist``) served at ``/``, cached as a bundle should be.

``index.html`` is revalidated on every visit (``no-cache``), so a new build shows at once;
``/assets/*`` carry content hashes in their names and are cached for a year. Without a
build, ``/`` explains how to make one instead of failing.
"""

from __future__ import annotations

import os
from pathlib import Path

from starlette.exceptions import HTTPException
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

DEFAULT_DIST = Path(__file__).resolve().parents[1] / "ui" / "dist"
IMMUTABLE = "public, max-age=31536000, immutable"

NOT_BUILT = """<!doctype html>
<html lang="en"><meta charset="utf-8"><title>Taskwire</title>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 3rem auto">
<h1>Taskwire</h1>
<p>The web UI has not been built. <code>make run</code> builds it (it needs Node.js 20 or
later), or build it yourself with <code>cd ui &amp;&amp; npm ci &amp;&amp; npm run build</code>.</p>
<p>The API works without it: see <a href="/docs">/docs</a>.</p>
</body></html>
"""


class HashedAssets(StaticFiles):
    """Static files whose names change with their content, so they never need revalidating."""

    def file_response(
        self,
        full_path: str | os.PathLike[str],
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers["Cache-Control"] = IMMUTABLE
        return response

    async def get_response(self, path: str, scope: Scope) -> Response:
        # Starlette refuses other methods with a bare 405; an answer must say what is allowed.
        if scope["method"] not in ("GET", "HEAD"):
            raise HTTPException(405, headers={"Allow": "GET, HEAD"})
        return await super().get_response(path, scope)

    async def check_config(self) -> None:
        # Starlette fails every request while the directory is missing; the bundle may well be
        # built after the server has started, and until then an asset is simply not found.
        return None


def ui_routes(dist: Path) -> list[BaseRoute]:
    async def index(_: object) -> Response:
        page = dist / "index.html"
        if not page.is_file():
            return HTMLResponse(NOT_BUILT, headers={"Cache-Control": "no-store"})
        return FileResponse(page, headers={"Cache-Control": "no-cache"})

    return [
        Route("/", index, methods=["GET"], include_in_schema=False),
        Mount("/assets", HashedAssets(directory=dist / "assets", check_dir=False), name="assets"),
    ]
